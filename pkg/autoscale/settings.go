package autoscale

import (
	"time"
)

// Settings are a scale set's autoscale settings. The zero Settings are
// disabled and valid.
type Settings struct {
	// Enabled turns autoscale on; disabled settings are kept but Evaluate
	// decides nothing.
	Enabled bool `json:"enabled" yaml:"enabled"`
	// Profiles: exactly one has neither a recurrence nor a fixed date, the
	// default; the names are unique.
	Profiles []Profile `json:"profiles" yaml:"profiles"`
}

// Capacity bounds a set's capacity while a profile is active: autoscale
// keeps it in [Min, Max]; Default, in [Min, Max], is the capacity to come
// back to when no rule has data (see Evaluate).
type Capacity struct {
	Min     int `json:"min" yaml:"min"`
	Max     int `json:"max" yaml:"max"`
	Default int `json:"default" yaml:"default"`
}

// Profile is a capacity range with its rules, active on its schedule: a
// Recurrence, a FixedDate, or neither (the default profile).
type Profile struct {
	Name     string   `json:"name" yaml:"name"`
	Capacity Capacity `json:"capacity" yaml:"capacity"`
	Rules    []Rule   `json:"rules,omitempty" yaml:"rules,omitempty"`
	// Recurrence makes the profile active from each of its starts until
	// another recurring profile starts.
	Recurrence *Recurrence `json:"recurrence,omitempty" yaml:"recurrence,omitempty"`
	// FixedDate makes the profile active in [Start, End), over any
	// recurring profile.
	FixedDate *FixedDate `json:"fixed_date,omitempty" yaml:"fixed_date,omitempty"`
}

// Recurrence is the weekly start of a recurring profile.
type Recurrence struct {
	// Schedule is a standard 5-field cron expression (minute hour
	// day-of-month month day-of-week) whose day of month and month are
	// "*": "0 9 * * 1-5" starts the profile at 09:00 Monday to Friday.
	Schedule string `json:"schedule" yaml:"schedule"`
	// TimeZone is the IANA zone the schedule is read in ("Europe/Paris");
	// empty is UTC.
	TimeZone string `json:"time_zone,omitempty" yaml:"time_zone,omitempty"`
}

// FixedDate is the span of a fixed-date profile, [Start, End).
//
// With a TimeZone, Start and End are wall-clock times in that zone: write
// them without an offset (or with "Z"); an offset other than the zone's at
// that time is refused. Without a TimeZone they are instants as written
// (UTC when they carry no offset). YAML takes 2025-12-24, 2025-12-24
// 09:00:00 (unquoted) or RFC 3339; JSON takes RFC 3339 ("...Z").
type FixedDate struct {
	Start    time.Time `json:"start" yaml:"start"`
	End      time.Time `json:"end" yaml:"end"`
	TimeZone string    `json:"time_zone,omitempty" yaml:"time_zone,omitempty"`
}

// Rule is one scaling rule: when the metric, combined over the instances by
// Statistic in each TimeGrain and over the TimeWindow ending now by
// TimeAggregation, compares to Threshold by Operator, it fires and asks
// for a change of capacity in its Direction. Empty fields take the defaults
// that WithDefaults fills in.
type Rule struct {
	// Metric names the metric read from every instance (cpu_percent, or
	// any name the caller's Validate says is known).
	Metric string `json:"metric" yaml:"metric"`
	// Statistic combines the instances' values within a grain: avg
	// (default), min, max, sum.
	Statistic string `json:"statistic,omitempty" yaml:"statistic,omitempty"`
	// TimeGrain is the length of a grain: default 1m, at least 1s.
	TimeGrain Duration `json:"time_grain,omitempty" yaml:"time_grain,omitempty"`
	// TimeWindow is how far back from now the rule looks: default 5m, a
	// multiple of TimeGrain, at most MaxTimeWindow.
	TimeWindow Duration `json:"time_window,omitempty" yaml:"time_window,omitempty"`
	// TimeAggregation combines the grains that have data: avg (default),
	// min, max, sum, last (the newest grain), count (how many grains).
	TimeAggregation string `json:"time_aggregation,omitempty" yaml:"time_aggregation,omitempty"`
	// Operator compares the aggregate with Threshold: > >= < <= == !=.
	Operator  string  `json:"operator" yaml:"operator"`
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// Direction is increase (scale out) or decrease (scale in).
	Direction string `json:"direction" yaml:"direction"`
	// ChangeType says what Value is: count (default) of instances to add
	// or remove, percent (1..100) of the current capacity (rounded up, at
	// least 1), or exact, the capacity to reach (within the profile's
	// [min, max]; an increase to no more than the current capacity, or a
	// decrease to no less, does nothing).
	ChangeType string `json:"change_type,omitempty" yaml:"change_type,omitempty"`
	Value      int    `json:"value" yaml:"value"`
	// Cooldown is how long autoscale waits after this rule acted: default
	// 5m, at least 1s.
	Cooldown Duration `json:"cooldown,omitempty" yaml:"cooldown,omitempty"`
}

// The words of a rule.
const (
	StatAvg = "avg"
	StatMin = "min"
	StatMax = "max"
	StatSum = "sum"
	// AggLast and AggCount are time aggregations only; avg, min, max and
	// sum are both statistics and aggregations.
	AggLast  = "last"
	AggCount = "count"

	Increase = "increase"
	Decrease = "decrease"

	ChangeCount   = "count"
	ChangePercent = "percent"
	ChangeExact   = "exact"
)

// The actions of a Decision.
const (
	ActionScaleOut = "scale-out"
	ActionScaleIn  = "scale-in"
	ActionClamp    = "clamp"
	ActionNone     = "none"
)

// The defaults and limits of a rule.
const (
	DefaultTimeGrain  = time.Minute
	DefaultTimeWindow = 5 * time.Minute
	DefaultCooldown   = 5 * time.Minute
	// MinTimeGrain and MinCooldown are the shortest a rule may say.
	MinTimeGrain = time.Second
	MinCooldown  = time.Second
	// MaxTimeWindow is the longest time window (it bounds the samples read).
	MaxTimeWindow = 24 * time.Hour
)

// WithDefaults returns r with its empty Statistic, TimeGrain, TimeWindow,
// TimeAggregation, ChangeType and Cooldown set to their defaults (avg, 1m,
// 5m, avg, count, 5m). It does not validate.
func (r Rule) WithDefaults() Rule {
	if r.Statistic == "" {
		r.Statistic = StatAvg
	}
	if r.TimeGrain == 0 {
		r.TimeGrain = Duration(DefaultTimeGrain)
	}
	if r.TimeWindow == 0 {
		r.TimeWindow = Duration(DefaultTimeWindow)
	}
	if r.TimeAggregation == "" {
		r.TimeAggregation = StatAvg
	}
	if r.ChangeType == "" {
		r.ChangeType = ChangeCount
	}
	if r.Cooldown == 0 {
		r.Cooldown = Duration(DefaultCooldown)
	}
	return r
}

// OneLinerMetric is the metric OneLiner's rules read.
const OneLinerMetric = "cpu_percent"

// OneLiner returns the settings of the common command line "--cpu-out 70
// --cpu-in 30 --min 1 --max 6 --window 5m --cooldown 5m": enabled, one
// default profile named "default" with capacity [min, max] (default min),
// one rule adding 1 instance when cpu_percent averaged over the instances
// and the window is > cpuOut, and one removing 1 when it is < cpuIn. The
// grain is 1m, or the largest whole-second divisor of 60s that divides the
// window when 1m does not ("90s" gets 30s grains); a zero window or
// cooldown is the default (5m). OneLiner does not validate: call Validate.
func OneLiner(cpuOut, cpuIn float64, min, max int, window, cooldown time.Duration) Settings {
	grain := time.Duration(0)
	if window > 0 && window%time.Minute != 0 && window%time.Second == 0 {
		grain = time.Duration(gcd(int64(window/time.Second), 60)) * time.Second
	}
	rule := func(op string, threshold float64, dir string) Rule {
		return Rule{
			Metric:     OneLinerMetric,
			TimeGrain:  Duration(grain),
			TimeWindow: Duration(window),
			Operator:   op,
			Threshold:  threshold,
			Direction:  dir,
			Value:      1,
			Cooldown:   Duration(cooldown),
		}
	}
	return Settings{
		Enabled: true,
		Profiles: []Profile{{
			Name:     "default",
			Capacity: Capacity{Min: min, Max: max, Default: min},
			Rules: []Rule{
				rule(">", cpuOut, Increase),
				rule("<", cpuIn, Decrease),
			},
		}},
	}
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
