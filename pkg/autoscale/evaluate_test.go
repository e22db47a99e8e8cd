package autoscale

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStatisticCombinesInstancesWithinAGrain(t *testing.T) {
	data := memReader{}.
		with("a", "cpu_percent", flat(t0, 10*time.Minute, 10*time.Second, 10)).
		with("b", "cpu_percent", flat(t0, 10*time.Minute, 10*time.Second, 20)).
		with("c", "cpu_percent", flat(t0, 10*time.Minute, 10*time.Second, 60))
	for _, tc := range []struct {
		stat string
		want float64
	}{
		{"", 30}, {StatAvg, 30}, {StatMin, 10}, {StatMax, 60}, {StatSum, 90},
	} {
		t.Run(tc.stat, func(t *testing.T) {
			r := up(">", 0, 1)
			r.Statistic = tc.stat
			d := Evaluate(settings(1, 10, r), input(3, data))
			res := d.Rules[0]
			if !near(res.Value, tc.want) || !res.HasData || !res.Fired || res.Grains != 5 || res.Instances != 3 {
				t.Fatalf("result = %+v, want value %v from 5 grains of 3 instances", res, tc.want)
			}
			stat := tc.stat
			if stat == "" {
				stat = "avg"
			}
			if want := "cpu_percent " + stat + " over 3 instances, avg of 5 1m grains > 0"; res.Text != want {
				t.Errorf("text = %q, want %q", res.Text, want)
			}
		})
	}
}

// In a grain an instance counts once, by the mean of its samples there;
// an instance without samples in a grain is left out of that grain.
func TestGrainValueIsOverInstanceMeans(t *testing.T) {
	data := memReader{}.
		with("a", "m", []Sample{{t0.Add(-90 * time.Second), 10}, {t0.Add(-50 * time.Second), 10}, {t0.Add(-20 * time.Second), 30}}).
		with("b", "m", []Sample{{t0.Add(-30 * time.Second), 50}})
	// grain 1 (older): a=10; grain 2: a=mean(10,30)=20, b=50.
	for _, tc := range []struct {
		stat, agg string
		want      float64
	}{
		{StatAvg, StatAvg, (10 + 35) / 2.0},
		{StatSum, AggLast, 70},
		{StatMax, StatMin, 10},
		{StatMin, StatMax, 20},
		{StatSum, StatSum, 80},
		{StatAvg, AggCount, 2},
	} {
		t.Run(tc.stat+"/"+tc.agg, func(t *testing.T) {
			r := Rule{Metric: "m", Statistic: tc.stat, TimeAggregation: tc.agg, TimeWindow: Duration(2 * time.Minute),
				Operator: ">", Threshold: 1000, Direction: Increase, Value: 1}
			d := Evaluate(settings(1, 10, r), Input{Now: t0, Capacity: 2, Instances: []string{"a", "b"}, Data: data})
			if res := d.Rules[0]; !near(res.Value, tc.want) || res.Grains != 2 || res.Instances != 2 {
				t.Fatalf("result = %+v, want value %v over 2 grains and 2 instances", res, tc.want)
			}
		})
	}
}

func TestAggregationCombinesGrains(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		agg    string
		grains []float64
		want   float64
	}{
		{"", []float64{10, 20, nan, 40, 50}, 30},
		{StatAvg, []float64{10, 20, nan, 40, 50}, 30},
		{StatMin, []float64{10, 20, nan, 40, 50}, 10},
		{StatMax, []float64{10, 20, nan, 40, 50}, 50},
		{StatSum, []float64{10, 20, nan, 40, 50}, 120},
		{AggLast, []float64{10, 20, nan, 40, 50}, 50},
		{AggLast, []float64{10, 20, 30, 40, nan}, 40},
		{AggCount, []float64{10, 20, nan, 40, 50}, 4},
	} {
		t.Run(tc.agg, func(t *testing.T) {
			r := up(">", 1000, 1)
			r.TimeAggregation = tc.agg
			data := memReader{}.with("a", "cpu_percent", grainsOf(t0, time.Minute, tc.grains...))
			d := Evaluate(settings(1, 10, r), Input{Now: t0, Capacity: 1, Instances: []string{"a"}, Data: data})
			res := d.Rules[0]
			if !near(res.Value, tc.want) || res.Grains != 4 || res.Fired {
				t.Fatalf("result = %+v, want value %v over 4 grains, not fired", res, tc.want)
			}
			mustContain(t, "text", res.Text, "4 of 5 1m grains > 1000", "over 1 instance,")
		})
	}
}

func TestWindowIsHalfOpenAndEndsAtNow(t *testing.T) {
	data := memReader{}.with("a", "cpu_percent", []Sample{
		{t0.Add(-5*time.Minute - 1), 1000}, // before the window
		{t0.Add(-5 * time.Minute), 10},     // first instant of the first grain
		{t0.Add(-1), 20},                   // last instant of the last grain
		{t0, 1000},                         // now: after the window
	})
	d := Evaluate(settings(1, 10, up(">", 70, 1)), Input{Now: t0, Capacity: 1, Instances: []string{"a"}, Data: data})
	if res := d.Rules[0]; res.Value != 15 || res.Grains != 2 {
		t.Fatalf("result = %+v, want 15 over 2 grains", res)
	}
}

type readerFunc func(instance, metric string, from, to time.Time) []Sample

func (f readerFunc) Samples(instance, metric string, from, to time.Time) []Sample {
	return f(instance, metric, from, to)
}

// A reader may return samples in any order, and stray ones; Evaluate
// neither trusts nor modifies them, and reads each metric once per
// instance over the longest window.
func TestReaderInAnyOrderIsReadOncePerMetric(t *testing.T) {
	samples := []Sample{{t0.Add(-30 * time.Second), 50}, {t0.Add(-4 * time.Minute), 10}, {t0.Add(time.Hour), 1e9}, {t0.Add(-90 * time.Second), 30}}
	orig := slices.Clone(samples)
	var calls []time.Duration
	r := readerFunc(func(instance, metric string, from, to time.Time) []Sample {
		calls = append(calls, to.Sub(from))
		return samples
	})
	short := up(">", 70, 1)
	long := down("<", 10, 1)
	long.TimeWindow = Duration(10 * time.Minute)
	d := Evaluate(settings(1, 10, short, long), Input{Now: t0, Capacity: 1, Instances: []string{"a"}, Data: r})
	if res := d.Rules[0]; res.Value != 30 || res.Grains != 3 {
		t.Fatalf("result = %+v, want 30 over 3 grains", res)
	}
	if !slices.Equal(samples, orig) {
		t.Errorf("the reader's samples were modified: %v", samples)
	}
	if !slices.Equal(calls, []time.Duration{10 * time.Minute}) {
		t.Errorf("reads = %v, want one of 10m", calls)
	}
}

func TestOperators(t *testing.T) {
	for _, tc := range []struct {
		op    string
		thr   float64
		fired bool
	}{
		{">", 50, false}, {">", 49.9, true},
		{">=", 50, true}, {">=", 50.1, false},
		{"<", 50, false}, {"<", 50.1, true},
		{"<=", 50, true}, {"<=", 49.9, false},
		{"==", 50, true}, {"==", 49, false},
		{"!=", 50, false}, {"!=", 49, true},
	} {
		d := Evaluate(settings(1, 10, up(tc.op, tc.thr, 1)), input(3, cpu(50)))
		if d.Rules[0].Fired != tc.fired {
			t.Errorf("50 %s %v: fired = %v, want %v", tc.op, tc.thr, d.Rules[0].Fired, tc.fired)
		}
		if want := map[bool]string{true: ActionScaleOut, false: ActionNone}[tc.fired]; d.Action != want {
			t.Errorf("50 %s %v: action %s, want %s (%s)", tc.op, tc.thr, d.Action, want, d.Reason)
		}
	}
}

func TestChangeTypes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dir        string
		change     string
		value      int
		capacity   int
		min, max   int
		to         int
		wantReason string
	}{
		{"count out", Increase, ChangeCount, 2, 3, 1, 10, 5, "rule cpu_percent>70 avg 5m saw 90.0 over 3 instances -> +2 (3->5)"},
		{"count out capped", Increase, "", 5, 8, 1, 10, 10, "-> +5 (8->10, capped at max 10)"},
		{"count out at max", Increase, ChangeCount, 1, 10, 1, 10, 10, "-> +1, but capacity 10 is at max 10"},
		{"percent out rounds up", Increase, ChangePercent, 50, 5, 1, 10, 8, "-> +50% of 5 = +3 (5->8)"},
		{"percent out at least 1", Increase, ChangePercent, 10, 3, 1, 10, 4, "-> +10% of 3 = +1 (3->4)"},
		{"percent out 100", Increase, ChangePercent, 100, 4, 1, 10, 8, "-> +100% of 4 = +4 (4->8)"},
		{"exact out", Increase, ChangeExact, 7, 3, 1, 10, 7, "-> exactly 7 (3->7)"},
		{"exact out below", Increase, ChangeExact, 2, 3, 1, 10, 3, "-> exactly 2, but capacity 3 is already at or above it"},
		{"count in", Decrease, ChangeCount, 1, 3, 1, 10, 2, "rule cpu_percent<30 avg 5m saw 10.0 over 3 instances -> -1 (3->2)"},
		{"count in floored", Decrease, ChangeCount, 3, 3, 1, 10, 1, "-> -3 (3->1, floored at min 1)"},
		{"count in at min", Decrease, ChangeCount, 1, 1, 1, 10, 1, "-> -1, but capacity 1 is at min 1"},
		{"percent in rounds up", Decrease, ChangePercent, 50, 5, 1, 10, 2, "-> -50% of 5 = -3 (5->2)"},
		{"percent in at least 1", Decrease, ChangePercent, 10, 3, 1, 10, 2, "-> -10% of 3 = -1 (3->2)"},
		{"exact in", Decrease, ChangeExact, 2, 5, 1, 10, 2, "-> exactly 2 (5->2)"},
		{"exact in above", Decrease, ChangeExact, 6, 5, 1, 10, 5, "-> exactly 6, but capacity 5 is already at or below it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, data := up(">", 70, tc.value), cpu(90)
			if tc.dir == Decrease {
				r, data = down("<", 30, tc.value), cpu(10)
			}
			r.ChangeType = tc.change
			r.Cooldown = Duration(3 * time.Minute)
			d := Evaluate(settings(tc.min, tc.max, r), input(tc.capacity, data))
			action := ActionNone
			switch {
			case tc.to > tc.capacity:
				action = ActionScaleOut
			case tc.to < tc.capacity:
				action = ActionScaleIn
			}
			if d.Action != action || d.From != tc.capacity || d.To != tc.to {
				t.Fatalf("decision %s %d->%d (%s), want %s %d->%d", d.Action, d.From, d.To, d.Reason, action, tc.capacity, tc.to)
			}
			mustContain(t, "reason", d.Reason, tc.wantReason)
			want := State{}
			if action != ActionNone {
				want = State{CooldownUntil: t0.Add(3 * time.Minute), LastAction: action, LastActionAt: t0}
			}
			if d.State != want {
				t.Errorf("state = %+v, want %+v", d.State, want)
			}
		})
	}
}

func TestAnyRuleScalesOutAllRulesScaleIn(t *testing.T) {
	mem := func(op string, thr float64, dir string, value int) Rule {
		return Rule{Metric: "mem_percent", Operator: op, Threshold: thr, Direction: dir, Value: value}
	}
	for _, tc := range []struct {
		name     string
		rules    []Rule
		cpu, mem float64
		capacity int
		action   string
		to       int
		reason   string
	}{
		{"one of two increase rules", []Rule{up(">", 70, 1), mem(">", 80, Increase, 2)}, 90, 50, 3, ActionScaleOut, 4,
			"rule cpu_percent>70 avg 5m saw 90.0 over 3 instances -> +1 (3->4)"},
		{"the largest increase", []Rule{up(">", 70, 1), mem(">", 80, Increase, 2)}, 90, 90, 3, ActionScaleOut, 5,
			"rule mem_percent>80 avg 5m saw 90.0 over 3 instances -> +2 (3->5); also fired: rule cpu_percent>70 avg 5m saw 90.0 over 3 instances -> +1"},
		{"one of two decrease rules", []Rule{down("<", 30, 1), mem("<", 20, Decrease, 2)}, 10, 50, 5, ActionNone, 5,
			"scale-in needs all 2 decrease rules, 1 fired: rule cpu_percent<30 avg 5m saw 10.0 over 3 instances (fired); rule mem_percent<20 avg 5m saw 50.0 over 3 instances"},
		{"all decrease rules, the smallest decrease", []Rule{mem("<", 20, Decrease, 2), down("<", 30, 1)}, 10, 10, 5, ActionScaleIn, 4,
			"all 2 decrease rules fired, the smallest decrease: rule cpu_percent<30 avg 5m saw 10.0 over 3 instances -> -1 (5->4); rule mem_percent<20 avg 5m saw 10.0 over 3 instances -> -2"},
		{"scale-out wins", []Rule{up(">", 70, 1), mem("<", 20, Decrease, 1)}, 90, 10, 3, ActionScaleOut, 4,
			"rule cpu_percent>70 avg 5m saw 90.0 over 3 instances -> +1 (3->4)"},
		{"nothing fired", []Rule{up(">", 70, 1), down("<", 30, 1)}, 50, 50, 3, ActionNone, 3,
			"no rule fired: rule cpu_percent>70 avg 5m saw 50.0 over 3 instances; rule cpu_percent<30 avg 5m saw 50.0 over 3 instances"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := same(cpu(tc.cpu), "mem_percent", tc.mem)
			d := Evaluate(settings(1, 10, tc.rules...), input(tc.capacity, data))
			if d.Action != tc.action || d.To != tc.to || d.Reason != tc.reason {
				t.Fatalf("decision %s ->%d %q\nwant     %s ->%d %q", d.Action, d.To, d.Reason, tc.action, tc.to, tc.reason)
			}
		})
	}
}

func TestClampIgnoresCooldown(t *testing.T) {
	cooling := State{CooldownUntil: t0.Add(time.Hour), LastAction: ActionScaleOut, LastActionAt: t0.Add(-time.Minute)}
	for _, tc := range []struct {
		name     string
		s        Settings
		capacity int
		state    State
		to       int
		reason   string
		until    time.Time
	}{
		{"below min", settings(2, 6, up(">", 70, 1)), 0, State{}, 2, `capacity 0 is below min 2 of profile "default" -> 2`, t0.Add(5 * time.Minute)},
		{"above max in cooldown", settings(2, 6, up(">", 70, 1)), 9, cooling, 6, `capacity 9 is above max 6 of profile "default" -> 6`, t0.Add(time.Hour)},
		{"no rules", settings(2, 2), 5, State{}, 2, `capacity 5 is above max 2 of profile "default" -> 2`, t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tc.capacity, cpu(50))
			in.State = tc.state
			d := Evaluate(tc.s, in)
			if d.Action != ActionClamp || d.To != tc.to || d.Reason != tc.reason {
				t.Fatalf("decision %s ->%d %q, want clamp ->%d %q", d.Action, d.To, d.Reason, tc.to, tc.reason)
			}
			if want := (State{CooldownUntil: tc.until, LastAction: ActionClamp, LastActionAt: t0}); d.State != want {
				t.Errorf("state = %+v, want %+v", d.State, want)
			}
		})
	}
}

func TestCooldown(t *testing.T) {
	r := up(">", 70, 1)
	r.Cooldown = Duration(7 * time.Minute)
	s := settings(1, 10, r)
	state := State{CooldownUntil: t0.Add(2*time.Minute + 10*time.Second), LastAction: ActionScaleOut, LastActionAt: t0.Add(-170 * time.Second)}

	in := input(3, cpu(90))
	in.State = state
	d := Evaluate(s, in)
	want := "cooldown until 12:02:10 (2m10s left) after scale-out at 11:57:10; then would scale-out: rule cpu_percent>70 avg 5m saw 90.0 over 3 instances -> +1 (3->4)"
	if d.Action != ActionNone || d.To != 3 || d.Reason != want || d.State != state {
		t.Fatalf("in cooldown: %s ->%d %q %+v\nwant none ->3 %q, state kept", d.Action, d.To, d.Reason, d.State, want)
	}

	in = input(3, cpu(50))
	in.State = state
	in.State.CooldownUntil = t0.Add(12*time.Hour + 10*time.Minute)
	d = Evaluate(s, in)
	mustContain(t, "reason", d.Reason, "cooldown until 2025-03-05 00:10:00 (12h10m left) after scale-out at 11:57:10; no rule fired: rule cpu_percent>70 avg 5m saw 50.0")

	// The cooldown ends at CooldownUntil; the next cooldown is the rule's.
	in = input(3, cpu(90))
	in.State = state
	in.Now = state.CooldownUntil
	d = Evaluate(s, in)
	if d.Action != ActionScaleOut || d.To != 4 {
		t.Fatalf("after cooldown: %s ->%d %q, want scale-out ->4", d.Action, d.To, d.Reason)
	}
	if want := (State{CooldownUntil: in.Now.Add(7 * time.Minute), LastAction: ActionScaleOut, LastActionAt: in.Now}); d.State != want {
		t.Errorf("state = %+v, want %+v", d.State, want)
	}
}

func TestFlappingProtection(t *testing.T) {
	requests := Rule{Metric: "requests", Statistic: StatSum, Operator: ">", Threshold: 100, Direction: Increase, Value: 1}
	pct := down("<", 60, 50)
	pct.ChangeType = ChangePercent
	toZero := settings(0, 5, down("<", 30, 1))
	toZero.Profiles[0].Capacity.Default = 1
	for _, tc := range []struct {
		name     string
		s        Settings
		data     memReader
		capacity int
		action   string
		to       int
		reason   string
	}{
		{"avg would fire", settings(1, 10, up(">", 70, 1), down("<", 60, 1)), cpu(50), 3, ActionNone, 3,
			"scale-in skipped: would reach 75.0 > 70 after removing 1 (3->2): rule cpu_percent>70 avg 5m saw 50.0 over 3 instances, estimated 50.0 x 3/2; " +
				"scale-in wanted by rule cpu_percent<60 avg 5m saw 50.0 over 3 instances -> -1 (3->2)"},
		{"avg would not fire", settings(1, 10, up(">", 70, 1), down("<", 60, 1)), cpu(40), 3, ActionScaleIn, 2,
			"rule cpu_percent<60 avg 5m saw 40.0 over 3 instances -> -1 (3->2); flapping check: cpu_percent>70 avg 5m would see 60.0 (40.0 x 3/2)"},
		{"percent would fire", settings(1, 10, up(">", 70, 1), pct), cpu(40), 4, ActionNone, 4,
			"scale-in skipped: would reach 80.0 > 70 after removing 2 (4->2)"},
		{"sum stays", settings(1, 10, requests, down("<", 60, 1)), same(cpu(40), "requests", 30), 3, ActionScaleIn, 2,
			"flapping check: requests>100 avg 5m would see 90.0 (unchanged for sum)"},
		{"to zero with a default", toZero, cpu(10), 1, ActionNone, 1,
			"scale-in skipped: at 0 instances no rule would have data and capacity would go back to default 1"},
		{"to zero without", settings(0, 5, down("<", 30, 1)), cpu(10), 1, ActionScaleIn, 0,
			"-> -1 (1->0); flapping check: at 0 instances no rule has data and default is 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(tc.s, input(tc.capacity, tc.data))
			if d.Action != tc.action || d.To != tc.to {
				t.Fatalf("decision %s ->%d %q, want %s ->%d", d.Action, d.To, d.Reason, tc.action, tc.to)
			}
			mustContain(t, "reason", d.Reason, tc.reason)
		})
	}
}

func TestNoData(t *testing.T) {
	mem := Rule{Metric: "mem_percent", TimeWindow: Duration(10 * time.Minute), Operator: ">", Threshold: 80, Direction: Increase, Value: 1}
	withDefault := settings(1, 10, up(">", 70, 1), down("<", 30, 1))
	withDefault.Profiles[0].Capacity.Default = 3
	old := memReader{}.with("a", "cpu_percent", flat(t0.Add(-10*time.Minute), 10*time.Minute, time.Second, 99))
	for _, tc := range []struct {
		name     string
		s        Settings
		data     Reader
		capacity int
		action   string
		to       int
		reason   string
	}{
		{"no reader", settings(1, 10, up(">", 70, 1), down("<", 30, 1)), nil, 2, ActionNone, 2,
			"no data for cpu_percent in the last 5m; capacity 2 is not below default 1, kept"},
		{"only old samples", settings(1, 10, up(">", 70, 1)), old, 2, ActionNone, 2,
			"no data for cpu_percent in the last 5m; capacity 2 is not below default 1, kept"},
		{"below the default", withDefault, memReader{}, 1, ActionScaleOut, 3,
			"no data for cpu_percent in the last 5m; capacity 1 is below default 3 -> 3"},
		{"one metric missing", settings(1, 10, up(">", 70, 1), mem), cpu(50), 2, ActionNone, 2,
			"no rule fired: rule cpu_percent>70 avg 5m saw 50.0 over 3 instances; no data for mem_percent in the last 10m"},
		{"no data does not fire a decrease rule", settings(1, 10, down("<", 30, 1), Rule{Metric: "mem_percent", Operator: "<", Threshold: 20, Direction: Decrease, Value: 1}), cpu(10), 3, ActionNone, 3,
			"scale-in needs all 2 decrease rules, 1 fired: rule cpu_percent<30 avg 5m saw 10.0 over 3 instances (fired); no data for mem_percent in the last 5m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(tc.s, input(tc.capacity, tc.data))
			if d.Action != tc.action || d.To != tc.to || d.Reason != tc.reason {
				t.Fatalf("decision %s ->%d %q\nwant     %s ->%d %q", d.Action, d.To, d.Reason, tc.action, tc.to, tc.reason)
			}
			for _, res := range d.Rules {
				if !res.HasData && (res.Fired || res.Value != 0 || res.Grains != 0 || !strings.HasSuffix(res.Text, "(no data)")) {
					t.Errorf("rule without data: %+v", res)
				}
			}
		})
	}
}

func TestDisabledInvalidAndRuleless(t *testing.T) {
	s := settings(1, 10, up(">", 70, 1))
	s.Enabled = false
	if d := Evaluate(s, input(20, cpu(90))); d.Action != ActionNone || d.To != 20 || d.Reason != "autoscale is disabled" || d.Rules != nil {
		t.Errorf("disabled: %+v", d)
	}
	s = settings(5, 1, up(">", 70, 1))
	d := Evaluate(s, input(3, cpu(90)))
	if d.Action != ActionNone || d.To != 3 {
		t.Errorf("invalid: %+v", d)
	}
	mustContain(t, "reason", d.Reason, `invalid settings: profile "default": capacity.min 5 is above capacity.max 1`)
	d = Evaluate(settings(1, 5), input(3, cpu(90)))
	if d.Action != ActionNone || d.Reason != `profile "default" has no rules; capacity 3 is within [min 1, max 5]` {
		t.Errorf("no rules: %+v", d)
	}
}

// A value is written with the digits it takes to show which side of the
// threshold it is on.
func TestReasonDigitsShowTheComparison(t *testing.T) {
	d := Evaluate(settings(1, 10, up(">=", 70, 1)), input(3, cpu(69.96)))
	mustContain(t, "reason", d.Reason, "saw 69.96 over 3 instances")
	d = Evaluate(settings(1, 10, up(">", 70, 1)), input(3, cpu(83.24)))
	mustContain(t, "reason", d.Reason, "saw 83.2 over 3 instances")
	d = Evaluate(settings(1, 10, up(">", 0.5, 1)), input(3, cpu(0.0123)))
	mustContain(t, "reason", d.Reason, "cpu_percent>0.5 avg 5m saw 0.0123 over 3 instances")
}

func TestOneLiner(t *testing.T) {
	s := OneLiner(70, 30, 1, 6, 5*time.Minute, 5*time.Minute)
	if err := s.Validate(func(m string) bool { return m == "cpu_percent" }); err != nil {
		t.Fatal(err)
	}
	d := Evaluate(s, input(3, cpu(83.2)))
	if want := "rule cpu_percent>70 avg 5m saw 83.2 over 3 instances -> +1 (3->4)"; d.Action != ActionScaleOut || d.To != 4 || d.Reason != want {
		t.Fatalf("high cpu: %s ->%d %q, want scale-out ->4 %q", d.Action, d.To, d.Reason, want)
	}
	if d.Rules[0].Text != "cpu_percent avg over 3 instances, avg of 5 1m grains > 70" || d.Rules[1].Text != "cpu_percent avg over 3 instances, avg of 5 1m grains < 30" {
		t.Errorf("texts: %q, %q", d.Rules[0].Text, d.Rules[1].Text)
	}
	if d.State.CooldownUntil != t0.Add(5*time.Minute) || d.Profile != "default" {
		t.Errorf("decision: %+v", d)
	}
	d = Evaluate(s, input(3, cpu(20)))
	if want := "rule cpu_percent<30 avg 5m saw 20.0 over 3 instances -> -1 (3->2); flapping check: cpu_percent>70 avg 5m would see 30.0 (20.0 x 3/2)"; d.Action != ActionScaleIn || d.Reason != want {
		t.Fatalf("low cpu: %s %q, want scale-in %q", d.Action, d.Reason, want)
	}

	odd := OneLiner(80, 20, 2, 4, 90*time.Second, 0)
	if err := odd.Validate(nil); err != nil {
		t.Fatal(err)
	}
	if r := odd.Profiles[0].Rules[0].WithDefaults(); r.TimeGrain != Duration(30*time.Second) || r.Cooldown != Duration(5*time.Minute) || r.TimeWindow != Duration(90*time.Second) {
		t.Errorf("90s one-liner rule: %+v", r)
	}
	if err := OneLiner(80, 20, 2, 4, 0, 0).Validate(nil); err != nil {
		t.Error(err)
	}
}
