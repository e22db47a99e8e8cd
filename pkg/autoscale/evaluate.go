package autoscale

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Reader gives the samples of one instance's metric in [from, to), in any
// order (Evaluate reads each metric once per instance, over the longest
// window of its rules). Evaluate does not modify the returned slice.
type Reader interface {
	Samples(instance, metric string, from, to time.Time) []Sample
}

// Sample is one value of a metric at a time. NaN and infinite values are
// ignored.
type Sample struct {
	At    time.Time `json:"at" yaml:"at"`
	Value float64   `json:"value" yaml:"value"`
}

// State is what autoscale remembers between evaluations; the caller
// persists Decision.State and passes it back in the next Input.
type State struct {
	// CooldownUntil: before it, Evaluate only clamps.
	CooldownUntil time.Time `json:"cooldown_until,omitzero" yaml:"cooldown_until,omitempty"`
	// LastAction and LastActionAt are the last action taken and when.
	LastAction   string    `json:"last_action,omitempty" yaml:"last_action,omitempty"`
	LastActionAt time.Time `json:"last_action_at,omitzero" yaml:"last_action_at,omitempty"`
}

// Input is what Evaluate decides on.
type Input struct {
	// Now ends every rule's time window and picks the active profile.
	Now time.Time
	// Capacity is the set's current (desired) capacity.
	Capacity int
	// Instances are the names whose metrics Data gives.
	Instances []string
	// Data gives the metrics; nil is no data at all.
	Data  Reader
	State State
}

// RuleResult is what one rule of the active profile saw.
type RuleResult struct {
	Profile string `json:"profile"`
	// Rule is the rule's number in its profile, from 1 (as in errors).
	Rule int `json:"rule"`
	// Text is the rule in words with its counts: "cpu_percent avg over 3
	// instances, avg of 5 1m grains > 70" ("4 of 5 1m grains" when some
	// grains had no data; "(no data)" when none had).
	Text string `json:"text"`
	// Value is the aggregate compared with the threshold (0 without data).
	Value float64 `json:"value"`
	// HasData: at least one grain of the window had data.
	HasData bool `json:"has_data"`
	// Fired: HasData and Value compares to the threshold.
	Fired bool `json:"fired"`
	// Grains is the number of grains with data; Instances the number of
	// instances with at least one sample in the window.
	Grains    int `json:"grains"`
	Instances int `json:"instances"`
}

// Decision is the outcome of one evaluation.
type Decision struct {
	// Profile is the active profile ("" when disabled or invalid);
	// ProfileReason says why it is active; Capacity is its range.
	Profile       string   `json:"profile"`
	ProfileReason string   `json:"profile_reason,omitempty"`
	Capacity      Capacity `json:"capacity"`
	// From is the input capacity, To the capacity to set (From when
	// Action is none).
	From int `json:"from"`
	To   int `json:"to"`
	// Action is ActionScaleOut, ActionScaleIn, ActionClamp or ActionNone.
	Action string `json:"action"`
	// Reason is one line with the numbers behind the action, or behind
	// doing nothing.
	Reason string `json:"reason"`
	// Rules has one result per rule of the active profile, in order.
	Rules []RuleResult `json:"rules,omitempty"`
	// State is the state to persist: the input's when Action is none;
	// otherwise LastAction and LastActionAt are the action and Now, and
	// CooldownUntil is Now plus the cooldown (see the package doc).
	State State `json:"state"`
}

// Evaluate decides what autoscale does now with s, as described in the
// package documentation. It never fails: disabled or invalid settings give
// Action none with the reason. It calls in.Data once per metric and
// instance; it is safe for concurrent use.
func Evaluate(s Settings, in Input) Decision {
	d := Decision{From: in.Capacity, To: in.Capacity, Action: ActionNone, State: in.State}
	if !s.Enabled {
		d.Reason = "autoscale is disabled"
		return d
	}
	if err := s.Validate(nil); err != nil {
		d.Reason = "invalid settings: " + err.Error()
		return d
	}
	pi, why, err := activeProfile(s, in.Now)
	if err != nil {
		d.Reason = "no active profile: " + err.Error()
		return d
	}
	p := s.Profiles[pi]
	d.Profile, d.ProfileReason, d.Capacity = p.Name, why, p.Capacity
	rules := make([]Rule, len(p.Rules))
	for i, r := range p.Rules {
		rules[i] = r.WithDefaults()
	}
	d.Rules = evalRules(p.Name, rules, in)
	e := evaluator{p: p, rules: rules, res: d.Rules, in: in}
	o := e.decide()
	d.Action, d.To, d.Reason = o.action, o.to, o.reason
	if o.action != ActionNone {
		until := in.Now.Add(o.cooldown)
		if in.State.CooldownUntil.After(until) {
			until = in.State.CooldownUntil
		}
		d.State = State{CooldownUntil: until, LastAction: o.action, LastActionAt: in.Now}
	}
	return d
}

// outcome is a decision before it is applied.
type outcome struct {
	action   string
	to       int
	reason   string
	cooldown time.Duration
}

type evaluator struct {
	p     Profile
	rules []Rule // with defaults
	res   []RuleResult
	in    Input
}

func (e *evaluator) decide() outcome {
	c, cur := e.p.Capacity, e.in.Capacity
	switch {
	case cur < c.Min:
		return outcome{ActionClamp, c.Min, fmt.Sprintf("capacity %d is below min %d of profile %q -> %d", cur, c.Min, e.p.Name, c.Min), e.longestCooldown()}
	case cur > c.Max:
		return outcome{ActionClamp, c.Max, fmt.Sprintf("capacity %d is above max %d of profile %q -> %d", cur, c.Max, e.p.Name, c.Max), e.longestCooldown()}
	}
	if e.in.Now.Before(e.in.State.CooldownUntil) {
		reason := e.cooldownReason()
		if o := e.decideOnRules(); o.action != ActionNone {
			reason += "; then would " + o.action + ": " + o.reason
		} else {
			reason += "; " + o.reason
		}
		return e.none(reason)
	}
	return e.decideOnRules()
}

// decideOnRules decides within [min, max] and out of cooldown.
func (e *evaluator) decideOnRules() outcome {
	if len(e.rules) == 0 {
		c := e.p.Capacity
		return e.none(fmt.Sprintf("profile %q has no rules; capacity %d is within [min %d, max %d]", e.p.Name, e.in.Capacity, c.Min, c.Max))
	}
	if o, ok := e.scaleOut(); ok {
		return o
	}
	if o, ok := e.scaleIn(); ok {
		return o
	}
	if o, ok := e.noData(); ok {
		return o
	}
	return e.none(e.nothingFired())
}

func (e *evaluator) none(reason string) outcome {
	return outcome{action: ActionNone, to: e.in.Capacity, reason: reason}
}

// scaleOut decides when an increase rule fired.
func (e *evaluator) scaleOut() (outcome, bool) {
	c, cur := e.p.Capacity, e.in.Capacity
	best, bestTo := -1, 0
	var fired []int
	for i, r := range e.rules {
		if r.Direction != Increase || !e.res[i].Fired {
			continue
		}
		fired = append(fired, i)
		if to := min(target(r, cur), c.Max); best < 0 || to > bestTo {
			best, bestTo = i, to
		}
	}
	if best < 0 {
		return outcome{}, false
	}
	var b strings.Builder
	b.WriteString(e.sawChange(best))
	raw := target(e.rules[best], cur)
	switch {
	case bestTo > cur && raw > c.Max:
		fmt.Fprintf(&b, " (%d->%d, capped at max %d)", cur, bestTo, c.Max)
	case bestTo > cur:
		fmt.Fprintf(&b, " (%d->%d)", cur, bestTo)
	case raw > cur:
		fmt.Fprintf(&b, ", but capacity %d is at max %d", cur, c.Max)
	default:
		fmt.Fprintf(&b, ", but capacity %d is already at or above it", cur)
	}
	for _, i := range fired {
		if i != best {
			b.WriteString("; also fired: " + e.sawChange(i))
		}
	}
	if bestTo <= cur {
		return e.none(b.String()), true
	}
	return outcome{ActionScaleOut, bestTo, b.String(), e.rules[best].Cooldown.Std()}, true
}

// scaleIn decides when every decrease rule fired.
func (e *evaluator) scaleIn() (outcome, bool) {
	c, cur := e.p.Capacity, e.in.Capacity
	var dec []int
	for i, r := range e.rules {
		if r.Direction == Decrease {
			if !e.res[i].Fired {
				return outcome{}, false
			}
			dec = append(dec, i)
		}
	}
	if len(dec) == 0 {
		return outcome{}, false
	}
	best, bestTo := -1, 0
	for _, i := range dec {
		if to := max(target(e.rules[i], cur), c.Min); best < 0 || to > bestTo {
			best, bestTo = i, to
		}
	}
	var b strings.Builder
	if len(dec) > 1 {
		fmt.Fprintf(&b, "all %d decrease rules fired, the smallest decrease: ", len(dec))
	}
	b.WriteString(e.sawChange(best))
	raw := target(e.rules[best], cur)
	switch {
	case bestTo < cur && raw < c.Min:
		fmt.Fprintf(&b, " (%d->%d, floored at min %d)", cur, bestTo, c.Min)
	case bestTo < cur:
		fmt.Fprintf(&b, " (%d->%d)", cur, bestTo)
	case raw < cur:
		fmt.Fprintf(&b, ", but capacity %d is at min %d", cur, c.Min)
	default:
		fmt.Fprintf(&b, ", but capacity %d is already at or below it", cur)
	}
	for _, i := range dec {
		if i != best {
			b.WriteString("; " + e.sawChange(i))
		}
	}
	if bestTo >= cur {
		return e.none(b.String()), true
	}
	blocked, check := e.flapping(cur, bestTo)
	if blocked {
		return e.none("scale-in skipped: " + check + "; scale-in wanted by " + b.String()), true
	}
	if check != "" {
		b.WriteString("; flapping check: " + check)
	}
	return outcome{ActionScaleIn, bestTo, b.String(), e.rules[best].Cooldown.Std()}, true
}

// flapping estimates the increase rules at capacity to instead of cur: it
// reports whether one would fire, and the numbers.
func (e *evaluator) flapping(cur, to int) (bool, string) {
	if to == 0 {
		if d := e.p.Capacity.Default; d > 0 {
			return true, fmt.Sprintf("at 0 instances no rule would have data and capacity would go back to default %d", d)
		}
		return false, "at 0 instances no rule has data and default is 0"
	}
	var checks []string
	for i, r := range e.rules {
		if r.Direction != Increase {
			continue
		}
		res := e.res[i]
		if !res.HasData {
			checks = append(checks, fmt.Sprintf("%s has no data", ruleName(r)))
			continue
		}
		est, how := res.Value, "unchanged for "+r.Statistic
		if r.TimeAggregation == AggCount {
			how = "unchanged for count"
		} else if r.Statistic != StatSum {
			est = res.Value * float64(cur) / float64(to)
			how = fmt.Sprintf("%s x %d/%d", value(res.Value, r), cur, to)
		}
		if compare(r.Operator, est, r.Threshold) {
			return true, fmt.Sprintf("would reach %s %s %s after removing %d (%d->%d): rule %s saw %s over %s, estimated %s",
				value(est, r), r.Operator, threshold(r.Threshold), cur-to, cur, to, ruleName(r), value(res.Value, r), instances(res.Instances), how)
		}
		checks = append(checks, fmt.Sprintf("%s would see %s (%s)", ruleName(r), value(est, r), how))
	}
	return false, strings.Join(checks, ", ")
}

// noData decides when no rule has any data.
func (e *evaluator) noData() (outcome, bool) {
	for _, res := range e.res {
		if res.HasData {
			return outcome{}, false
		}
	}
	c, cur := e.p.Capacity, e.in.Capacity
	reason := e.missing()
	if cur < c.Default {
		return outcome{ActionScaleOut, c.Default, fmt.Sprintf("%s; capacity %d is below default %d -> %d", reason, cur, c.Default, c.Default), e.longestCooldown()}, true
	}
	return e.none(fmt.Sprintf("%s; capacity %d is not below default %d, kept", reason, cur, c.Default)), true
}

// missing lists the rules without data, one phrase per metric and window.
func (e *evaluator) missing() string {
	var parts []string
	for i, r := range e.rules {
		if !e.res[i].HasData {
			p := fmt.Sprintf("no data for %s in the last %s", r.Metric, r.TimeWindow)
			if !slices.Contains(parts, p) {
				parts = append(parts, p)
			}
		}
	}
	return strings.Join(parts, ", ")
}

// nothingFired explains why no rule acted: no increase rule fired and not
// every decrease rule did.
func (e *evaluator) nothingFired() string {
	ndec, nfired := 0, 0
	for i, r := range e.rules {
		if r.Direction == Decrease {
			ndec++
			if e.res[i].Fired {
				nfired++
			}
		}
	}
	var parts []string
	if nfired > 0 {
		parts = append(parts, fmt.Sprintf("scale-in needs all %d decrease rules, %d fired", ndec, nfired))
	} else {
		parts = append(parts, "no rule fired")
	}
	for i, r := range e.rules {
		res := e.res[i]
		switch {
		case !res.HasData:
			parts = append(parts, fmt.Sprintf("no data for %s in the last %s", r.Metric, r.TimeWindow))
		case res.Fired:
			parts = append(parts, e.saw(i)+" (fired)")
		default:
			parts = append(parts, e.saw(i))
		}
	}
	return parts[0] + ": " + strings.Join(parts[1:], "; ")
}

func (e *evaluator) cooldownReason() string {
	now, st := e.in.Now, e.in.State
	loc := now.Location()
	left := st.CooldownUntil.Sub(now)
	left = (left + time.Second - 1).Truncate(time.Second)
	s := fmt.Sprintf("cooldown until %s (%s left)", clock(st.CooldownUntil.In(loc), now), Duration(left))
	if st.LastAction != "" && !st.LastActionAt.IsZero() {
		s += fmt.Sprintf(" after %s at %s", st.LastAction, clock(st.LastActionAt.In(loc), now))
	}
	return s
}

// clock formats t as 15:04:05, with its date when it is not now's day.
func clock(t, now time.Time) string {
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

func (e *evaluator) longestCooldown() time.Duration {
	var d time.Duration
	for _, r := range e.rules {
		d = max(d, r.Cooldown.Std())
	}
	return d
}

// saw is "rule cpu_percent>70 avg 5m saw 83.2 over 3 instances".
func (e *evaluator) saw(i int) string {
	r, res := e.rules[i], e.res[i]
	return fmt.Sprintf("rule %s saw %s over %s", ruleName(r), value(res.Value, r), instances(res.Instances))
}

// sawChange is saw with the change the rule asks for: "... -> +1".
func (e *evaluator) sawChange(i int) string {
	return e.saw(i) + " -> " + changeText(e.rules[i], e.in.Capacity)
}

// ruleName is "cpu_percent>70 avg 5m".
func ruleName(r Rule) string {
	return r.Metric + r.Operator + threshold(r.Threshold) + " " + r.TimeAggregation + " " + r.TimeWindow.String()
}

func instances(n int) string {
	if n == 1 {
		return "1 instance"
	}
	return strconv.Itoa(n) + " instances"
}

// target is the capacity r asks for from cur, before min and max.
func target(r Rule, cur int) int {
	n := r.Value
	switch r.ChangeType {
	case ChangeExact:
		return r.Value
	case ChangePercent:
		n = percentOf(cur, r.Value)
	}
	if r.Direction == Decrease {
		return cur - n
	}
	return cur + n
}

// percentOf is pct percent of capacity, rounded up, at least 1.
func percentOf(capacity, pct int) int {
	return max(1, (max(capacity, 0)*pct+99)/100)
}

// changeText is "+1", "-2", "+50% of 4 = +2", "exactly 5".
func changeText(r Rule, cur int) string {
	sign := "+"
	if r.Direction == Decrease {
		sign = "-"
	}
	switch r.ChangeType {
	case ChangeExact:
		return fmt.Sprintf("exactly %d", r.Value)
	case ChangePercent:
		return fmt.Sprintf("%s%d%% of %d = %s%d", sign, r.Value, cur, sign, percentOf(cur, r.Value))
	}
	return fmt.Sprintf("%s%d", sign, r.Value)
}

// compare applies op; an unknown op is false.
func compare(op string, v, t float64) bool {
	switch op {
	case ">":
		return v > t
	case ">=":
		return v >= t
	case "<":
		return v < t
	case "<=":
		return v <= t
	case "==":
		return v == t
	case "!=":
		return v != t
	}
	return false
}

// threshold formats a threshold as written: 70, 0.5, 1000000.
func threshold(t float64) string { return strconv.FormatFloat(t, 'f', -1, 64) }

// value formats a rule's value with one decimal (three significant digits
// below 0.1), or with as many more digits as it takes for the text to
// compare to the threshold as the value does: 69.96 is "70.0" with one
// decimal, which reads as not below 70, so it is written "69.96".
func value(v float64, r Rule) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if v != 0 && math.Abs(v) < 0.1 {
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	want := compare(r.Operator, v, r.Threshold)
	for prec := 4; ; prec++ {
		back, err := strconv.ParseFloat(s, 64)
		if err == nil && compare(r.Operator, back, r.Threshold) == want {
			return s
		}
		if prec > 17 {
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
		s = strconv.FormatFloat(v, 'g', prec, 64)
	}
}
