package autoscale_test

import (
	"fmt"
	"time"

	"github.com/galevm/gale/pkg/autoscale"
)

// samples is an in-memory Reader: every instance at one cpu_percent.
type samples float64

func (v samples) Samples(instance, metric string, from, to time.Time) []autoscale.Sample {
	var s []autoscale.Sample
	for t := from; t.Before(to); t = t.Add(10 * time.Second) {
		s = append(s, autoscale.Sample{At: t, Value: float64(v)})
	}
	return s
}

func ExampleEvaluate() {
	s := autoscale.OneLiner(70, 30, 1, 6, 5*time.Minute, 5*time.Minute)
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	in := autoscale.Input{Now: now, Capacity: 3, Instances: []string{"web-0", "web-1", "web-2"}, Data: samples(83.2)}

	d := autoscale.Evaluate(s, in)
	fmt.Println(d.Action, d.From, "->", d.To)
	fmt.Println(d.Reason)
	for _, r := range d.Rules {
		fmt.Printf("rule %d: %s: %.1f fired=%v\n", r.Rule, r.Text, r.Value, r.Fired)
	}

	in.Now, in.Capacity, in.State, in.Data = now.Add(time.Minute), d.To, d.State, samples(50)
	fmt.Println(autoscale.Evaluate(s, in).Reason)

	in.Now, in.Data = now.Add(10*time.Minute), samples(45)
	fmt.Println(autoscale.Evaluate(s, in).Reason)
	// Output:
	// scale-out 3 -> 4
	// rule cpu_percent>70 avg 5m saw 83.2 over 3 instances -> +1 (3->4)
	// rule 1: cpu_percent avg over 3 instances, avg of 5 1m grains > 70: 83.2 fired=true
	// rule 2: cpu_percent avg over 3 instances, avg of 5 1m grains < 30: 83.2 fired=false
	// cooldown until 12:05:00 (4m left) after scale-out at 12:00:00; no rule fired: rule cpu_percent>70 avg 5m saw 50.0 over 3 instances; rule cpu_percent<30 avg 5m saw 50.0 over 3 instances
	// no rule fired: rule cpu_percent>70 avg 5m saw 45.0 over 3 instances; rule cpu_percent<30 avg 5m saw 45.0 over 3 instances
}
