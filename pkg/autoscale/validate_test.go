package autoscale

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/errdefs"
)

// valid is a default, a recurring and a fixed-date profile, each valid.
func valid() Settings {
	return Settings{Enabled: true, Profiles: []Profile{
		{Name: "default", Capacity: Capacity{Min: 1, Max: 6, Default: 2}, Rules: []Rule{up(">", 70, 1), down("<", 30, 1)}},
		{Name: "business", Capacity: Capacity{Min: 2, Max: 10, Default: 3}, Rules: []Rule{up(">", 60, 2), down("<", 20, 1)},
			Recurrence: &Recurrence{Schedule: "0 9 * * 1-5", TimeZone: "Europe/Paris"}},
		{Name: "xmas", Capacity: Capacity{Min: 4, Max: 12, Default: 4},
			FixedDate: &FixedDate{Start: utc("2025-12-24T00:00:00Z"), End: utc("2025-12-27T00:00:00Z"), TimeZone: "Europe/Paris"}},
	}}
}

func known(m string) bool { return m == "cpu_percent" || m == "mem_percent" }

func TestValidateAccepts(t *testing.T) {
	for name, s := range map[string]Settings{
		"valid":                 valid(),
		"disabled and empty":    {},
		"one-liner":             OneLiner(70, 30, 1, 6, 5*time.Minute, 5*time.Minute),
		"scale to zero":         settings(0, 0),
		"exact within capacity": settings(1, 6, Rule{Metric: "cpu_percent", Operator: ">", Threshold: 90, Direction: Increase, ChangeType: ChangeExact, Value: 6}),
	} {
		if err := s.Validate(known); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	paris := time.FixedZone("", 2*3600)
	for _, tc := range []struct {
		name   string
		change func(s *Settings)
		want   string
	}{
		{"unknown metric", func(s *Settings) { s.Profiles[0].Rules[0].Metric = "disk_iops" }, `profile "default": rule 1: metric "disk_iops" is unknown`},
		{"empty metric", func(s *Settings) { s.Profiles[0].Rules[1].Metric = " " }, `profile "default": rule 2: metric is empty`},
		{"window shorter than grain", func(s *Settings) { s.Profiles[1].Rules[1].TimeWindow = Duration(30 * time.Second) },
			`profile "business": rule 2: time_window 30s is shorter than time_grain 1m`},
		{"window not a multiple of grain", func(s *Settings) { s.Profiles[0].Rules[0].TimeWindow = Duration(150 * time.Second) },
			`profile "default": rule 1: time_window 2m30s is not a multiple of time_grain 1m`},
		{"window too long", func(s *Settings) { s.Profiles[0].Rules[0].TimeWindow = Duration(25 * time.Hour) },
			`profile "default": rule 1: time_window 25h is longer than 24h`},
		{"negative window", func(s *Settings) { s.Profiles[0].Rules[0].TimeWindow = Duration(-time.Minute) },
			`profile "default": rule 1: time_window -1m is negative`},
		{"grain too short", func(s *Settings) { s.Profiles[0].Rules[0].TimeGrain = Duration(500 * time.Millisecond) },
			`profile "default": rule 1: time_grain 500ms is shorter than 1s`},
		{"negative grain", func(s *Settings) { s.Profiles[0].Rules[0].TimeGrain = Duration(-time.Minute) },
			`profile "default": rule 1: time_grain -1m is negative`},
		{"min above max", func(s *Settings) { s.Profiles[0].Capacity = Capacity{Min: 5, Max: 3, Default: 4} },
			`profile "default": capacity.min 5 is above capacity.max 3`},
		{"default outside", func(s *Settings) { s.Profiles[1].Capacity.Default = 11 },
			`profile "business": capacity.default 11 is outside [min 2, max 10]`},
		{"negative min", func(s *Settings) { s.Profiles[0].Capacity.Min = -1 }, `profile "default": capacity.min -1 is negative`},
		{"negative max", func(s *Settings) { s.Profiles[2].Capacity = Capacity{Max: -2} }, `profile "xmas": capacity.max -2 is negative`},
		{"percent above 100", func(s *Settings) {
			s.Profiles[0].Rules[0].ChangeType, s.Profiles[0].Rules[0].Value = ChangePercent, 150
		},
			`profile "default": rule 1: value 150: a percent change is between 1 and 100`},
		{"negative value", func(s *Settings) { s.Profiles[0].Rules[1].Value = -1 }, `profile "default": rule 2: value -1 is negative`},
		{"zero count", func(s *Settings) { s.Profiles[0].Rules[1].Value = 0 }, `profile "default": rule 2: value 0: a count change needs at least 1`},
		{"exact outside capacity", func(s *Settings) { s.Profiles[0].Rules[0].ChangeType, s.Profiles[0].Rules[0].Value = ChangeExact, 7 },
			`profile "default": rule 1: value 7: an exact change is outside the profile's capacity [min 1, max 6]`},
		{"bad operator", func(s *Settings) { s.Profiles[0].Rules[0].Operator = "=>" }, `profile "default": rule 1: operator "=>" is not one of > >= < <= == !=`},
		{"bad statistic", func(s *Settings) { s.Profiles[0].Rules[0].Statistic = "median" },
			`profile "default": rule 1: statistic "median" is not one of avg, min, max, sum`},
		{"bad aggregation", func(s *Settings) { s.Profiles[0].Rules[0].TimeAggregation = "p95" },
			`profile "default": rule 1: time_aggregation "p95" is not one of avg, min, max, sum, last, count`},
		{"bad direction", func(s *Settings) { s.Profiles[0].Rules[0].Direction = "up" }, `profile "default": rule 1: direction "up" is not one of increase, decrease`},
		{"bad change type", func(s *Settings) { s.Profiles[0].Rules[0].ChangeType = "delta" },
			`profile "default": rule 1: change_type "delta" is not one of count, percent, exact`},
		{"threshold not a number", func(s *Settings) { s.Profiles[0].Rules[0].Threshold = math.NaN() },
			`profile "default": rule 1: threshold NaN is not a finite number`},
		{"cooldown too short", func(s *Settings) { s.Profiles[0].Rules[0].Cooldown = Duration(10 * time.Millisecond) },
			`profile "default": rule 1: cooldown 10ms is shorter than 1s`},
		{"negative cooldown", func(s *Settings) { s.Profiles[0].Rules[0].Cooldown = Duration(-time.Minute) },
			`profile "default": rule 1: cooldown -1m is negative`},
		{"bad cron", func(s *Settings) { s.Profiles[1].Recurrence.Schedule = "0 9 * *" },
			`profile "business": recurrence.schedule "0 9 * *": expected exactly 5 fields, found 4`},
		{"cron out of range", func(s *Settings) { s.Profiles[1].Recurrence.Schedule = "0 25 * * *" },
			`profile "business": recurrence.schedule "0 25 * * *": end of range (25) above maximum (23)`},
		{"cron by day of month", func(s *Settings) { s.Profiles[1].Recurrence.Schedule = "0 9 1 * *" },
			`profile "business": recurrence.schedule "0 9 1 * *": day of month and month must be *`},
		{"cron with a zone", func(s *Settings) { s.Profiles[1].Recurrence.Schedule = "TZ=UTC" },
			`profile "business": recurrence.schedule "TZ=UTC": names a time zone: put it in recurrence.time_zone`},
		{"cron descriptor", func(s *Settings) { s.Profiles[1].Recurrence.Schedule = "@every 1h" },
			`profile "business": recurrence.schedule "@every 1h": descriptors are not accepted`},
		{"empty cron", func(s *Settings) { s.Profiles[1].Recurrence.Schedule = "" }, `profile "business": recurrence.schedule "": is empty`},
		{"bad time zone", func(s *Settings) { s.Profiles[1].Recurrence.TimeZone = "Europe/Pariss" },
			`profile "business": recurrence.time_zone "Europe/Pariss": unknown time zone`},
		{"host time zone", func(s *Settings) { s.Profiles[1].Recurrence.TimeZone = "Local" },
			`profile "business": recurrence.time_zone "Local": depends on the host`},
		{"bad fixed-date zone", func(s *Settings) { s.Profiles[2].FixedDate.TimeZone = "CEST" },
			`profile "xmas": fixed_date.time_zone "CEST": unknown time zone`},
		{"fixed date ends before it starts", func(s *Settings) { s.Profiles[2].FixedDate.End = utc("2025-12-23T00:00:00Z") },
			`profile "xmas": fixed_date.end 2025-12-23 00:00 CET is not after fixed_date.start 2025-12-24 00:00 CET`},
		{"fixed date without start", func(s *Settings) { s.Profiles[2].FixedDate.Start = time.Time{} }, `profile "xmas": fixed_date.start is missing`},
		{"fixed date offset against the zone", func(s *Settings) { s.Profiles[2].FixedDate.Start = time.Date(2025, 12, 24, 0, 0, 0, 0, paris) },
			`profile "xmas": fixed_date.start 2025-12-24T00:00:00+02:00 has offset +02:00 but Europe/Paris is +01:00 then: write it without an offset`},
		{"overlapping fixed dates", func(s *Settings) {
			p := s.Profiles[2]
			p.Name, p.FixedDate = "boxing", &FixedDate{Start: utc("2025-12-26T00:00:00Z"), End: utc("2025-12-28T00:00:00Z"), TimeZone: "Europe/London"}
			s.Profiles = append(s.Profiles, p)
		}, `profile "xmas" and profile "boxing": fixed dates overlap (2025-12-24 00:00 CET to 2025-12-27 00:00 CET and 2025-12-26 00:00 GMT to 2025-12-28 00:00 GMT)`},
		{"two default profiles", func(s *Settings) { s.Profiles[1].Recurrence = nil },
			`profiles: profile "default", profile "business" are all default (no recurrence or fixed_date); only one may be`},
		{"no default profile", func(s *Settings) { s.Profiles[0].Recurrence = &Recurrence{Schedule: "0 18 * * *"} },
			`profiles: no default profile (one without recurrence and fixed_date)`},
		{"duplicate names", func(s *Settings) { s.Profiles[2].Name = "default" }, `profiles 1 and 3: duplicate name "default"`},
		{"empty name", func(s *Settings) { s.Profiles[1].Name = "" }, `profile 2: name is empty`},
		{"two schedules", func(s *Settings) { s.Profiles[1].FixedDate = s.Profiles[2].FixedDate },
			`profile "business": has both recurrence and fixed_date; a profile has at most one schedule`},
		{"enabled without profiles", func(s *Settings) { s.Profiles = nil }, `profiles: none; autoscale needs a default profile`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.change(&s)
			err := s.Validate(known)
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v, want an *InvalidError", err)
			}
			if len(inv.Problems) != 1 {
				t.Errorf("problems %q, want 1", inv.Problems)
			}
			mustContain(t, "error", err.Error(), tc.want)
			if !errors.Is(err, ErrInvalid) || !errdefs.Is(err, errdefs.Invalid) {
				t.Errorf("%v does not match ErrInvalid and errdefs.Invalid", err)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	s := valid()
	s.Profiles[0].Rules[0].Operator = "~"
	s.Profiles[1].Capacity.Min = 20
	err := s.Validate(known)
	want := `profile "default": rule 1: operator "~" is not one of > >= < <= == !=; profile "business": capacity.min 20 is above capacity.max 10`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
}
