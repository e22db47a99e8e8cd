package autoscale

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// benchReader is an in-memory Reader: instance "setN-i" reads series i.
type benchReader map[string][3][]Sample

func (r benchReader) Samples(instance, metric string, from, to time.Time) []Sample {
	s := r[metric][instance[len(instance)-1]-'0']
	return s[firstAtOrAfter(s, from):firstAtOrAfter(s, to)]
}

// benchSets is n sets of a default and a recurring profile, each of 5
// rules over 3 metrics with windows from 5m to 1h, and 1h of 1s samples
// of the 3 metrics for 3 instances.
func benchSets(n int) ([]Settings, []Input) {
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	data := benchReader{}
	for m, metric := range []string{"cpu_percent", "mem_percent", "requests"} {
		var series [3][]Sample
		for i := range series {
			s := make([]Sample, 0, 3600)
			for k := 3600; k > 0; k-- {
				at := now.Add(-time.Duration(k) * time.Second)
				s = append(s, Sample{At: at, Value: 50 + 40*math.Sin(float64(k)/300+float64(i+m))})
			}
			series[i] = s
		}
		data[metric] = series
	}
	rules := func(shift float64) []Rule {
		return []Rule{
			{Metric: "cpu_percent", Operator: ">", Threshold: 70 + shift, Direction: Increase, Value: 1},
			{Metric: "cpu_percent", TimeWindow: Duration(10 * time.Minute), Operator: "<", Threshold: 30 + shift, Direction: Decrease, Value: 1},
			{Metric: "mem_percent", Statistic: StatMax, TimeAggregation: StatMax, TimeWindow: Duration(15 * time.Minute), Operator: ">", Threshold: 95 + shift, Direction: Increase, ChangeType: ChangePercent, Value: 20},
			{Metric: "mem_percent", TimeWindow: Duration(time.Hour), Operator: "<", Threshold: 40 + shift, Direction: Decrease, Value: 1},
			{Metric: "requests", Statistic: StatSum, TimeGrain: Duration(30 * time.Second), TimeWindow: Duration(30 * time.Minute), Operator: ">", Threshold: 250 + 10*shift, Direction: Increase, ChangeType: ChangeExact, Value: 8},
		}
	}
	var sets []Settings
	var inputs []Input
	for i := range n {
		shift := float64(i%20) - 10
		sets = append(sets, Settings{Enabled: true, Profiles: []Profile{
			{Name: "default", Capacity: Capacity{Min: 1, Max: 10, Default: 2}, Rules: rules(shift)},
			{Name: "business", Capacity: Capacity{Min: 2, Max: 10, Default: 3}, Rules: rules(shift),
				Recurrence: &Recurrence{Schedule: "0 9 * * 1-5", TimeZone: "Europe/Paris"}},
		}})
		name := fmt.Sprintf("set%d-", i)
		inputs = append(inputs, Input{Now: now, Capacity: 3 + i%5, Instances: []string{name + "0", name + "1", name + "2"}, Data: data})
	}
	return sets, inputs
}

func TestBenchSetsDecide(t *testing.T) {
	sets, inputs := benchSets(100)
	actions := map[string]int{}
	for i := range sets {
		d := Evaluate(sets[i], inputs[i])
		if strings.HasPrefix(d.Reason, "invalid") || d.Profile != "business" || len(d.Rules) != 5 {
			t.Fatalf("set %d: %+v", i, d)
		}
		for _, r := range d.Rules {
			if !r.HasData {
				t.Fatalf("set %d: %+v", i, r)
			}
		}
		actions[d.Action]++
	}
	t.Logf("actions over 100 sets: %v", actions)
}

// BenchmarkEvaluate100Sets evaluates 100 sets of 5 rules over 1h of 1s
// samples of 3 instances per op.
func BenchmarkEvaluate100Sets(b *testing.B) {
	sets, inputs := benchSets(100)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range sets {
			Evaluate(sets[i], inputs[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/set")
}
