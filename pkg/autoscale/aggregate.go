package autoscale

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// series is one metric of every instance over the longest window of the
// rules that read it, each instance's samples in time order.
type series struct {
	metric string
	window time.Duration
	byInst [][]Sample
}

// grain accumulates one grain over the instances.
type grainAcc struct {
	sum, min, max float64
	n             int
}

// instAcc accumulates one instance's samples in one grain.
type instAcc struct {
	sum float64
	n   int
}

// evalRules evaluates rules (with defaults) on in's data.
func evalRules(profile string, rules []Rule, in Input) []RuleResult {
	var ss []series
	find := func(metric string) int {
		for i := range ss {
			if ss[i].metric == metric {
				return i
			}
		}
		return -1
	}
	maxGrains := 0
	for _, r := range rules {
		w := r.TimeWindow.Std()
		if i := find(r.Metric); i < 0 {
			ss = append(ss, series{metric: r.Metric, window: w})
		} else {
			ss[i].window = max(ss[i].window, w)
		}
		maxGrains = max(maxGrains, int(w/r.TimeGrain.Std()))
	}
	for i := range ss {
		s := &ss[i]
		s.byInst = make([][]Sample, len(in.Instances))
		if in.Data == nil {
			continue
		}
		from := in.Now.Add(-s.window)
		for j, inst := range in.Instances {
			samples := in.Data.Samples(inst, s.metric, from, in.Now)
			if !inTimeOrder(samples) {
				samples = slices.Clone(samples)
				slices.SortStableFunc(samples, bySampleTime)
			}
			s.byInst[j] = samples
		}
	}
	grains := make([]grainAcc, maxGrains)
	inst := make([]instAcc, maxGrains)
	out := make([]RuleResult, len(rules))
	for i, r := range rules {
		out[i] = evalRule(r, ss[find(r.Metric)].byInst, in.Now, grains, inst)
		out[i].Profile, out[i].Rule = profile, i+1
	}
	return out
}

func bySampleTime(a, b Sample) int { return a.At.Compare(b.At) }

// firstAtOrAfter is the index of the first of samples (in time order) at
// or after t, len(samples) if none.
func firstAtOrAfter(samples []Sample, t time.Time) int {
	lo, hi := 0, len(samples)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if samples[mid].At.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func inTimeOrder(samples []Sample) bool {
	for i := 1; i < len(samples); i++ {
		if samples[i].At.Before(samples[i-1].At) {
			return false
		}
	}
	return true
}

// evalRule evaluates one rule over samples in time order; grains and inst
// are scratch space of at least window/grain entries.
func evalRule(r Rule, byInst [][]Sample, now time.Time, grains []grainAcc, inst []instAcc) RuleResult {
	grain, window := r.TimeGrain.Std(), r.TimeWindow.Std()
	k := int(window / grain)
	from := now.Add(-window)
	fromSec, fromNsec := from.Unix(), int64(from.Nanosecond())
	grains, inst = grains[:k], inst[:k]
	clear(grains)
	instancesWithData := 0
	for _, samples := range byInst {
		lo, hi := firstAtOrAfter(samples, from), firstAtOrAfter(samples, now)
		clear(inst)
		seen := false
		for _, s := range samples[lo:max(lo, hi)] {
			if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
				continue
			}
			// s.At is in [from, now): the offset is in [0, window).
			off := (s.At.Unix()-fromSec)*int64(time.Second) + int64(s.At.Nanosecond()) - fromNsec
			g := &inst[off/int64(grain)]
			g.sum += s.Value
			g.n++
			seen = true
		}
		if !seen {
			continue
		}
		instancesWithData++
		for j := range inst {
			if inst[j].n == 0 {
				continue
			}
			m := inst[j].sum / float64(inst[j].n)
			g := &grains[j]
			if g.n == 0 || m < g.min {
				g.min = m
			}
			if g.n == 0 || m > g.max {
				g.max = m
			}
			g.sum += m
			g.n++
		}
	}
	n, agg := 0, 0.0
	for _, g := range grains {
		if g.n == 0 {
			continue
		}
		var v float64
		switch r.Statistic {
		case StatMin:
			v = g.min
		case StatMax:
			v = g.max
		case StatSum:
			v = g.sum
		default:
			v = g.sum / float64(g.n)
		}
		switch r.TimeAggregation {
		case StatMin:
			if n == 0 || v < agg {
				agg = v
			}
		case StatMax:
			if n == 0 || v > agg {
				agg = v
			}
		case AggLast:
			agg = v
		case AggCount:
		default: // avg, sum
			agg += v
		}
		n++
	}
	switch r.TimeAggregation {
	case StatAvg:
		if n > 0 {
			agg /= float64(n)
		}
	case AggCount:
		agg = float64(n)
	}
	res := RuleResult{Value: agg, HasData: n > 0, Grains: n, Instances: instancesWithData}
	res.Fired = res.HasData && compare(r.Operator, agg, r.Threshold)
	res.Text = ruleText(r, instancesWithData, n, k)
	return res
}

// ruleText is "cpu_percent avg over 3 instances, avg of 5 1m grains > 70",
// with "4 of 5" when grains lacked data and " (no data)" when all did.
func ruleText(r Rule, instancesWithData, n, k int) string {
	var b strings.Builder
	b.Grow(80)
	b.WriteString(r.Metric)
	b.WriteByte(' ')
	b.WriteString(r.Statistic)
	b.WriteString(" over ")
	b.WriteString(instances(instancesWithData))
	b.WriteString(", ")
	b.WriteString(r.TimeAggregation)
	b.WriteString(" of ")
	if n < k {
		b.WriteString(strconv.Itoa(n))
		b.WriteString(" of ")
	}
	b.WriteString(strconv.Itoa(k))
	b.WriteByte(' ')
	b.WriteString(r.TimeGrain.String())
	if k == 1 {
		b.WriteString(" grain ")
	} else {
		b.WriteString(" grains ")
	}
	b.WriteString(r.Operator)
	b.WriteByte(' ')
	b.WriteString(threshold(r.Threshold))
	if n == 0 {
		b.WriteString(" (no data)")
	}
	return b.String()
}
