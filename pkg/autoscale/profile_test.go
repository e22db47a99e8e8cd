package autoscale

import (
	"testing"
	"time"
)

func profile(name string) Profile {
	return Profile{Name: name, Capacity: Capacity{Min: 1, Max: 4, Default: 1}}
}

func recurring(name, schedule, zone string) Profile {
	p := profile(name)
	p.Recurrence = &Recurrence{Schedule: schedule, TimeZone: zone}
	return p
}

func fixed(name string, start, end time.Time, zone string) Profile {
	p := profile(name)
	p.FixedDate = &FixedDate{Start: start, End: end, TimeZone: zone}
	return p
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestActiveProfilePrecedence(t *testing.T) {
	// Business hours in Paris, Monday to Friday; an off-hours profile from
	// 18:00; Christmas (wall clock in Paris) over both.
	s := Settings{Enabled: true, Profiles: []Profile{
		profile("default"),
		recurring("business", "0 9 * * 1-5", "Europe/Paris"),
		recurring("evening", "0 18 * * mon-fri", "Europe/Paris"),
		fixed("xmas", utc("2025-12-24T00:00:00Z"), utc("2025-12-27T00:00:00Z"), "Europe/Paris"),
	}}
	if err := s.Validate(nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now  string
		want string
		why  string
	}{
		{"2025-03-04T08:30:00Z", "business", `recurring "0 9 * * 1-5" in Europe/Paris, started Tue 2025-03-04 09:00 CET`},
		{"2025-03-04T08:00:00Z", "business", "started Tue 2025-03-04 09:00 CET"}, // at its start
		{"2025-03-04T07:59:59Z", "evening", "started Mon 2025-03-03 18:00 CET"},
		{"2025-03-08T12:00:00Z", "evening", "started Fri 2025-03-07 18:00 CET"}, // Saturday: until Monday 09:00
		{"2025-07-01T07:30:00Z", "business", "started Tue 2025-07-01 09:00 CEST"},
		{"2025-12-23T22:30:00Z", "evening", "started Tue 2025-12-23 18:00 CET"}, // 23:30 in Paris
		{"2025-12-23T23:00:00Z", "xmas", "fixed date 2025-12-24 00:00 CET to 2025-12-27 00:00 CET"},
		{"2025-12-26T22:59:59Z", "xmas", "fixed date"},
		{"2025-12-26T23:00:00Z", "evening", "started Fri 2025-12-26 18:00 CET"}, // the end is excluded
	} {
		now := utc(tc.now)
		p, err := ActiveProfile(s, now)
		if err != nil || p.Name != tc.want {
			t.Errorf("%s: profile %q, %v; want %q", tc.now, p.Name, err, tc.want)
			continue
		}
		d := Evaluate(s, Input{Now: now, Capacity: 2})
		if d.Profile != tc.want {
			t.Errorf("%s: decision profile %q, want %q", tc.now, d.Profile, tc.want)
		}
		mustContain(t, tc.now+" profile reason", d.ProfileReason, tc.why)
	}

	// Without a recurring profile, the default holds outside the fixed date.
	s.Profiles = []Profile{s.Profiles[3], s.Profiles[0]}
	for now, want := range map[string]string{"2025-06-01T12:00:00Z": "default", "2025-12-25T12:00:00Z": "xmas"} {
		d := Evaluate(s, Input{Now: utc(now), Capacity: 2})
		if d.Profile != want {
			t.Errorf("%s: profile %q (%s), want %q", now, d.Profile, d.ProfileReason, want)
		}
	}
	d := Evaluate(s, Input{Now: utc("2025-06-01T12:00:00Z"), Capacity: 2})
	if d.ProfileReason != "default: no fixed date holds now and no recurring profile started in the 8 days before" {
		t.Errorf("default reason %q", d.ProfileReason)
	}
}

func TestRecurringProfileOverMidnight(t *testing.T) {
	s := Settings{Enabled: true, Profiles: []Profile{
		recurring("day", "0 6 * * *", "America/New_York"),
		recurring("night", "0 22 * * *", "America/New_York"),
		profile("default"),
	}}
	for _, tc := range []struct{ now, want, started string }{
		{"2025-03-05T02:59:00Z", "day", "Tue 2025-03-04 06:00 EST"},   // 21:59 in New York
		{"2025-03-05T03:00:00Z", "night", "Tue 2025-03-04 22:00 EST"}, // 22:00
		{"2025-03-05T06:30:00Z", "night", "Tue 2025-03-04 22:00 EST"}, // 01:30, the next day
		{"2025-03-05T10:59:00Z", "night", "Tue 2025-03-04 22:00 EST"}, // 05:59
		{"2025-03-05T11:00:00Z", "day", "Wed 2025-03-05 06:00 EST"},
		{"2025-03-09T06:30:00Z", "night", "Sat 2025-03-08 22:00 EST"}, // 01:30 EST, before the DST change
		{"2025-03-09T10:00:00Z", "day", "Sun 2025-03-09 06:00 EDT"},   // 06:00 EDT
	} {
		d := Evaluate(s, Input{Now: utc(tc.now), Capacity: 2})
		if d.Profile != tc.want {
			t.Errorf("%s: profile %q (%s), want %q", tc.now, d.Profile, d.ProfileReason, tc.want)
		}
		mustContain(t, tc.now+" profile reason", d.ProfileReason, "started "+tc.started)
	}
}

// A weekly start moved by a daylight-saving change is 7 days and an hour
// after the one before; the recurring profile holds in between.
func TestWeeklyRecurrenceAcrossDaylightSaving(t *testing.T) {
	s := Settings{Enabled: true, Profiles: []Profile{profile("default"), recurring("monday", "0 9 * * 1", "Europe/Paris")}}
	for _, tc := range []struct{ now, started string }{
		{"2025-10-27T07:30:00Z", "Mon 2025-10-20 09:00 CEST"}, // 08:30 CET: 7d 0h30 after the last start
		{"2025-10-27T08:00:00Z", "Mon 2025-10-27 09:00 CET"},
		{"2025-03-31T06:30:00Z", "Mon 2025-03-24 09:00 CET"}, // 08:30 CEST: 6d 23h30 after
	} {
		d := Evaluate(s, Input{Now: utc(tc.now), Capacity: 2})
		if d.Profile != "monday" {
			t.Errorf("%s: profile %q (%s), want monday", tc.now, d.Profile, d.ProfileReason)
		}
		mustContain(t, tc.now+" profile reason", d.ProfileReason, "started "+tc.started)
	}
}

func TestFixedDateZones(t *testing.T) {
	paris := time.FixedZone("", 3600)
	for _, tc := range []struct {
		name       string
		fd         FixedDate
		start, end string // as instants
	}{
		{"wall clock in the zone", FixedDate{Start: utc("2025-01-10T09:00:00Z"), End: utc("2025-01-10T17:00:00Z"), TimeZone: "Asia/Tokyo"},
			"2025-01-10T00:00:00Z", "2025-01-10T08:00:00Z"},
		{"offset agreeing with the zone", FixedDate{Start: time.Date(2025, 1, 10, 9, 0, 0, 0, paris), End: time.Date(2025, 1, 10, 17, 0, 0, 0, paris), TimeZone: "Europe/Paris"},
			"2025-01-10T08:00:00Z", "2025-01-10T16:00:00Z"},
		{"instants without a zone", FixedDate{Start: time.Date(2025, 1, 10, 9, 0, 0, 0, paris), End: utc("2025-01-10T16:00:00Z")},
			"2025-01-10T08:00:00Z", "2025-01-10T16:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Settings{Enabled: true, Profiles: []Profile{profile("default"), fixed("f", tc.fd.Start, tc.fd.End, tc.fd.TimeZone)}}
			if err := s.Validate(nil); err != nil {
				t.Fatal(err)
			}
			start, end := utc(tc.start), utc(tc.end)
			for now, want := range map[time.Time]string{
				start.Add(-time.Second): "default", start: "f", end.Add(-time.Second): "f", end: "default",
			} {
				if p, err := ActiveProfile(s, now); err != nil || p.Name != want {
					t.Errorf("%s: %q, %v; want %q", now.Format(time.RFC3339), p.Name, err, want)
				}
			}
		})
	}
}

func TestActiveProfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		want string
	}{
		{"no default", Settings{Profiles: []Profile{fixed("f", utc("2025-01-01T00:00:00Z"), utc("2025-01-02T00:00:00Z"), "")}}, "no default profile"},
		{"bad zone", Settings{Profiles: []Profile{profile("d"), recurring("r", "0 9 * * *", "Mars/Olympus")}}, `profile "r": recurrence.time_zone "Mars/Olympus": unknown time zone`},
	} {
		if _, err := ActiveProfile(tc.s, t0); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else {
			mustContain(t, tc.name, err.Error(), tc.want)
		}
	}
}
