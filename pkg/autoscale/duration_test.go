package autoscale

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s",
		90 * time.Second: "1m30s", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s", -time.Minute: "-1m",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
		back, err := ParseDuration(want)
		if err != nil || back != Duration(d) {
			t.Errorf("%q: %v, %v; want %v", want, back, err, d)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var r Rule
	if err := json.Unmarshal([]byte(`{"time_grain":"30s","time_window":"","cooldown":null}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.TimeGrain != Duration(30*time.Second) || r.TimeWindow != 0 || r.Cooldown != 0 {
		t.Errorf("rule %+v", r)
	}
	for in, want := range map[string]string{
		`{"cooldown":300}`:   `duration 300: want a string like "5m" or "30s"`,
		`{"cooldown":"5 m"}`: `duration "5 m": want a number with a unit`,
		`{"cooldown":"300"}`: `duration "300": want a number with a unit`,
	} {
		if err := json.Unmarshal([]byte(in), &r); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	b, err := json.Marshal(Rule{Metric: "cpu_percent", TimeWindow: Duration(10 * time.Minute), Operator: ">", Threshold: 70, Direction: Increase, Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"metric":"cpu_percent","time_window":"10m","operator":"\u003e","threshold":70,"direction":"increase","value":1}`; string(b) != want {
		t.Errorf("json %s\nwant %s", b, want)
	}
}

const settingsYAML = `
enabled: true
profiles:
  - name: default
    capacity: {min: 1, max: 6, default: 2}
    rules:
      - metric: cpu_percent
        time_window: 10m
        operator: ">"
        threshold: 70
        direction: increase
        value: 1
        cooldown: 3m
      - metric: cpu_percent
        statistic: max
        time_grain: 30s
        time_aggregation: last
        operator: "<"
        threshold: 30
        direction: decrease
        change_type: percent
        value: 25
  - name: business
    capacity: {min: 2, max: 10, default: 3}
    recurrence: {schedule: "0 9 * * 1-5", time_zone: Europe/Paris}
  - name: xmas
    capacity: {min: 4, max: 12, default: 4}
    fixed_date: {start: 2025-12-24 00:00:00, end: 2025-12-27, time_zone: Europe/Paris}
`

func TestSettingsYAMLAndJSON(t *testing.T) {
	var s Settings
	if err := yaml.Unmarshal([]byte(settingsYAML), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(known); err != nil {
		t.Fatal(err)
	}
	r := s.Profiles[0].Rules
	if r[0].TimeWindow != Duration(10*time.Minute) || r[0].Cooldown != Duration(3*time.Minute) || r[1].TimeGrain != Duration(30*time.Second) || r[1].TimeWindow != 0 {
		t.Errorf("rules %+v", r)
	}
	if p, err := ActiveProfile(s, utc("2025-12-23T23:00:00Z")); err != nil || p.Name != "xmas" {
		t.Errorf("profile %q, %v; want xmas", p.Name, err)
	}

	y, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "yaml", string(y), "time_window: 10m\n", "cooldown: 3m\n", "time_grain: 30s\n", "schedule: 0 9 * * 1-5\n")
	var back Settings
	if err := yaml.Unmarshal(y, &back); err != nil || back.Profiles[0].Rules[0].Cooldown != Duration(3*time.Minute) {
		t.Errorf("yaml round trip: %v %+v", err, back)
	}

	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "json", string(j), `"time_window":"10m"`, `"cooldown":"3m"`, `"fixed_date":{"start":"2025-12-24T00:00:00Z"`, `"time_zone":"Europe/Paris"`)
	back = Settings{}
	if err := json.Unmarshal(j, &back); err != nil || back.Validate(known) != nil || back.Profiles[0].Rules[1].TimeGrain != Duration(30*time.Second) {
		t.Errorf("json round trip: %v %+v", err, back)
	}

	for in, want := range map[string]string{
		"cooldown: 300":     `line 1: duration "300": want a number with a unit`,
		"cooldown: [5m]":    `line 1: duration: want a string`,
		"time_grain: fast":  `line 1: duration "fast"`,
		"time_window: 0":    ``,
		"time_window: null": ``,
	} {
		var r Rule
		err := yaml.Unmarshal([]byte(in), &r)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
