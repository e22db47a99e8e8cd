package autoscale

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/errdefs"
)

// ErrInvalid is what every Validate error matches with errors.Is (and so
// errdefs.Invalid).
var ErrInvalid = errdefs.New(errdefs.Invalid, "invalid autoscale settings")

// InvalidError is the error of Validate: every problem found, each naming
// its profile, rule and field the way the settings spell them
// (`profile "business": rule 2: time_window 30s is shorter than
// time_grain 1m`). Rules are numbered from 1.
type InvalidError struct {
	Problems []string
}

// Error joins the problems with "; ".
func (e *InvalidError) Error() string { return strings.Join(e.Problems, "; ") }

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Validate checks s and returns an *InvalidError listing every problem, or
// nil. Disabled settings without profiles are valid (autoscale is off);
// otherwise s needs exactly one default profile (no recurrence, no fixed
// date), unique non-empty profile names, capacities with 0 <= min <= max
// and default in [min, max], valid schedules and time zones, fixed dates
// with end after start that do not overlap, and valid rules: a metric that
// knownMetric accepts (nil accepts any non-empty name), a known statistic,
// aggregation, operator, direction and change type, a finite threshold,
// time_grain >= 1s, time_window a multiple of time_grain and at most 24h,
// cooldown >= 1s, and a value that is >= 1 for count, in 1..100 for
// percent, and in [min, max] for exact.
func (s Settings) Validate(knownMetric func(string) bool) error {
	if !s.Enabled && len(s.Profiles) == 0 {
		return nil
	}
	var v validator
	if len(s.Profiles) == 0 {
		v.add("profiles: none; autoscale needs a default profile (one without recurrence and fixed_date)")
	}
	type span struct {
		profile    int
		start, end time.Time
	}
	var spans []span
	var defaults []int
	for i, p := range s.Profiles {
		// The problems' texts are made only when there are problems.
		where := func() string { return profileWhere(i, p) }
		if p.Name == "" {
			v.add(where() + ": name is empty")
		}
		for j, o := range s.Profiles[:i] {
			if p.Name != "" && o.Name == p.Name {
				v.add(fmt.Sprintf("profiles %d and %d: duplicate name %q", j+1, i+1, p.Name))
				break
			}
		}
		c := p.Capacity
		switch {
		case c.Min < 0:
			v.add(fmt.Sprintf("%s: capacity.min %d is negative", where(), c.Min))
		case c.Max < 0:
			v.add(fmt.Sprintf("%s: capacity.max %d is negative", where(), c.Max))
		case c.Min > c.Max:
			v.add(fmt.Sprintf("%s: capacity.min %d is above capacity.max %d", where(), c.Min, c.Max))
		case c.Default < c.Min || c.Default > c.Max:
			v.add(fmt.Sprintf("%s: capacity.default %d is outside [min %d, max %d]", where(), c.Default, c.Min, c.Max))
		}
		switch {
		case p.Recurrence != nil && p.FixedDate != nil:
			v.add(where() + ": has both recurrence and fixed_date; a profile has at most one schedule")
		case p.Recurrence != nil:
			if _, _, err := recurrenceSchedule(*p.Recurrence); err != nil {
				v.add(fmt.Sprintf("%s: %v", where(), err))
			}
		case p.FixedDate != nil:
			start, end, err := fixedBounds(*p.FixedDate)
			if err != nil {
				v.add(fmt.Sprintf("%s: %v", where(), err))
				break
			}
			for _, o := range spans {
				if start.Before(o.end) && o.start.Before(end) {
					v.add(fmt.Sprintf("%s and %s: fixed dates overlap (%s to %s and %s to %s)", profileWhere(o.profile, s.Profiles[o.profile]), where(),
						o.start.Format(whenLayout), o.end.Format(whenLayout), start.Format(whenLayout), end.Format(whenLayout)))
				}
			}
			spans = append(spans, span{i, start, end})
		default:
			defaults = append(defaults, i)
		}
		for j, r := range p.Rules {
			validateRule(&v, func() string { return fmt.Sprintf("%s: rule %d", where(), j+1) }, r, c, knownMetric)
		}
	}
	switch {
	case len(s.Profiles) > 0 && len(defaults) == 0:
		v.add("profiles: no default profile (one without recurrence and fixed_date)")
	case len(defaults) > 1:
		names := make([]string, len(defaults))
		for k, i := range defaults {
			names[k] = profileWhere(i, s.Profiles[i])
		}
		v.add(fmt.Sprintf("profiles: %s are all default (no recurrence or fixed_date); only one may be", strings.Join(names, ", ")))
	}
	if len(v.problems) > 0 {
		return &InvalidError{Problems: v.problems}
	}
	return nil
}

// profileWhere names the i-th profile in problems: by its name, or by its
// number when it has none.
func profileWhere(i int, p Profile) string {
	if p.Name == "" {
		return fmt.Sprintf("profile %d", i+1)
	}
	return fmt.Sprintf("profile %q", p.Name)
}

type validator struct{ problems []string }

func (v *validator) add(p string) { v.problems = append(v.problems, p) }

var (
	statistics   = []string{StatAvg, StatMin, StatMax, StatSum}
	aggregations = []string{StatAvg, StatMin, StatMax, StatSum, AggLast, AggCount}
	operators    = []string{">", ">=", "<", "<=", "==", "!="}
	directions   = []string{Increase, Decrease}
	changeTypes  = []string{ChangeCount, ChangePercent, ChangeExact}
)

func oneOf(v string, words []string) bool {
	for _, w := range words {
		if v == w {
			return true
		}
	}
	return false
}

func validateRule(v *validator, where func() string, r Rule, c Capacity, known func(string) bool) {
	r = r.WithDefaults()
	bad := func(format string, args ...any) { v.add(where() + ": " + fmt.Sprintf(format, args...)) }
	switch {
	case strings.TrimSpace(r.Metric) == "":
		bad("metric is empty")
	case known != nil && !known(r.Metric):
		bad("metric %q is unknown", r.Metric)
	}
	if !oneOf(r.Statistic, statistics) {
		bad("statistic %q is not one of %s", r.Statistic, strings.Join(statistics, ", "))
	}
	if !oneOf(r.TimeAggregation, aggregations) {
		bad("time_aggregation %q is not one of %s", r.TimeAggregation, strings.Join(aggregations, ", "))
	}
	grain, window := r.TimeGrain.Std(), r.TimeWindow.Std()
	switch {
	case grain < 0:
		bad("time_grain %s is negative", r.TimeGrain)
	case grain < MinTimeGrain:
		bad("time_grain %s is shorter than %s", r.TimeGrain, Duration(MinTimeGrain))
	case window < 0:
		bad("time_window %s is negative", r.TimeWindow)
	case window < grain:
		bad("time_window %s is shorter than time_grain %s", r.TimeWindow, r.TimeGrain)
	case window%grain != 0:
		bad("time_window %s is not a multiple of time_grain %s", r.TimeWindow, r.TimeGrain)
	case window > MaxTimeWindow:
		bad("time_window %s is longer than %s", r.TimeWindow, Duration(MaxTimeWindow))
	}
	if !oneOf(r.Operator, operators) {
		bad("operator %q is not one of %s", r.Operator, strings.Join(operators, " "))
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		bad("threshold %v is not a finite number", r.Threshold)
	}
	if !oneOf(r.Direction, directions) {
		bad("direction %q is not one of %s", r.Direction, strings.Join(directions, ", "))
	}
	switch {
	case !oneOf(r.ChangeType, changeTypes):
		bad("change_type %q is not one of %s", r.ChangeType, strings.Join(changeTypes, ", "))
	case r.Value < 0:
		bad("value %d is negative", r.Value)
	case r.ChangeType == ChangeCount && r.Value == 0:
		bad("value 0: a count change needs at least 1")
	case r.ChangeType == ChangePercent && (r.Value == 0 || r.Value > 100):
		bad("value %d: a percent change is between 1 and 100", r.Value)
	case r.ChangeType == ChangeExact && (r.Value < c.Min || r.Value > c.Max):
		bad("value %d: an exact change is outside the profile's capacity [min %d, max %d]", r.Value, c.Min, c.Max)
	}
	switch cd := r.Cooldown.Std(); {
	case cd < 0:
		bad("cooldown %s is negative", r.Cooldown)
	case cd < MinCooldown:
		bad("cooldown %s is shorter than %s", r.Cooldown, Duration(MinCooldown))
	}
}
