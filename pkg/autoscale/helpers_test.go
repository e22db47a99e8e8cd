package autoscale

import (
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	_ "time/tzdata" // the tests do not depend on the host's zone database
)

// t0 is a Tuesday noon, UTC.
var t0 = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

var abc = []string{"a", "b", "c"}

// memReader holds samples by instance and metric, each in time order.
type memReader map[string]map[string][]Sample

func (m memReader) Samples(instance, metric string, from, to time.Time) []Sample {
	s := m[instance][metric]
	lo := sort.Search(len(s), func(i int) bool { return !s[i].At.Before(from) })
	hi := sort.Search(len(s), func(i int) bool { return !s[i].At.Before(to) })
	return s[lo:hi]
}

// with adds an instance's samples of a metric.
func (m memReader) with(instance, metric string, s []Sample) memReader {
	if m[instance] == nil {
		m[instance] = map[string][]Sample{}
	}
	m[instance][metric] = s
	return m
}

// flat is one sample every step over [now-span, now), all v.
func flat(now time.Time, span, step time.Duration, v float64) []Sample {
	var s []Sample
	for t := now.Add(-span); t.Before(now); t = t.Add(step) {
		s = append(s, Sample{At: t, Value: v})
	}
	return s
}

// grainsOf is one sample in the middle of each grain of the window of
// len(vs) grains ending at now, oldest first; NaN leaves a grain empty.
func grainsOf(now time.Time, grain time.Duration, vs ...float64) []Sample {
	var s []Sample
	from := now.Add(-time.Duration(len(vs)) * grain)
	for i, v := range vs {
		if !math.IsNaN(v) {
			s = append(s, Sample{At: from.Add(time.Duration(i)*grain + grain/2), Value: v})
		}
	}
	return s
}

// same gives every instance of abc a flat 10m of metric at v.
func same(m memReader, metric string, v float64) memReader {
	for _, i := range abc {
		m.with(i, metric, flat(t0, 10*time.Minute, 10*time.Second, v))
	}
	return m
}

// cpu is 3 instances at cpu_percent v.
func cpu(v float64) memReader { return same(memReader{}, "cpu_percent", v) }

// settings is one enabled default profile of [min, max] (default min).
func settings(min, max int, rules ...Rule) Settings {
	return Settings{Enabled: true, Profiles: []Profile{{
		Name: "default", Capacity: Capacity{Min: min, Max: max, Default: min}, Rules: rules,
	}}}
}

func up(op string, thr float64, value int) Rule {
	return Rule{Metric: "cpu_percent", Operator: op, Threshold: thr, Direction: Increase, Value: value}
}

func down(op string, thr float64, value int) Rule {
	return Rule{Metric: "cpu_percent", Operator: op, Threshold: thr, Direction: Decrease, Value: value}
}

func input(capacity int, data Reader) Input {
	return Input{Now: t0, Capacity: capacity, Instances: abc, Data: data}
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s = %q\n  want it to contain %q", what, got, w)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
