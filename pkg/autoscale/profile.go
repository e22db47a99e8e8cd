package autoscale

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// recurringLookback is how far back ActiveProfile looks for a recurring
// profile's most recent start: a week and a day, so that a weekly start
// moved by a daylight-saving change (7 days and 1 hour apart) is still
// found.
const recurringLookback = 8 * 24 * time.Hour

// ActiveProfile returns the profile of s active at now: a fixed-date
// profile whose [start, end) holds now (the first such in the list); else
// the recurring profile whose most recent start at or before now is the
// latest (the first in the list on a tie); else the default. It fails
// when a schedule or time zone it needs is invalid or there is no
// default; it does not check the rest of s (see Validate).
func ActiveProfile(s Settings, now time.Time) (Profile, error) {
	i, _, err := activeProfile(s, now)
	if err != nil {
		return Profile{}, err
	}
	return s.Profiles[i], nil
}

// activeProfile is ActiveProfile returning the profile's index and why it
// is active, in words.
func activeProfile(s Settings, now time.Time) (int, string, error) {
	def, recurring := -1, -1
	var recStart time.Time
	var recWhy string
	for i, p := range s.Profiles {
		switch {
		case p.FixedDate != nil:
			start, end, err := fixedBounds(*p.FixedDate)
			if err != nil {
				return -1, "", fmt.Errorf("profile %q: %w", p.Name, err)
			}
			if !now.Before(start) && now.Before(end) {
				return i, fmt.Sprintf("fixed date %s to %s", start.Format(whenLayout), end.Format(whenLayout)), nil
			}
		case p.Recurrence != nil:
			sched, loc, err := recurrenceSchedule(*p.Recurrence)
			if err != nil {
				return -1, "", fmt.Errorf("profile %q: %w", p.Name, err)
			}
			start, ok := lastStart(sched, now.In(loc))
			if ok && (recurring < 0 || start.After(recStart)) {
				recurring, recStart = i, start
				recWhy = fmt.Sprintf("recurring %q in %s, started %s", p.Recurrence.Schedule, loc, start.Format("Mon "+whenLayout))
			}
		default:
			if def < 0 {
				def = i
			}
		}
	}
	if recurring >= 0 {
		return recurring, recWhy, nil
	}
	if def < 0 {
		return -1, "", errors.New("profiles: no default profile (one without recurrence and fixed_date)")
	}
	return def, "default: no fixed date holds now and no recurring profile started in the 8 days before", nil
}

// whenLayout formats the times of profile reasons.
const whenLayout = "2006-01-02 15:04 MST"

// lastStart returns the latest start of sched at or before now, when one
// lies within recurringLookback; sched is read in now's location. It uses
// only sched.Next: a bisection for the latest t whose Next is still at or
// before now (about 20 calls), since starts are at least a minute apart.
func lastStart(sched cron.Schedule, now time.Time) (time.Time, bool) {
	lo, hi := now.Add(-recurringLookback), now
	if n := sched.Next(lo); n.IsZero() || n.After(now) {
		return time.Time{}, false
	}
	// Invariant: Next(lo) <= now < Next(hi).
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if n := sched.Next(mid); !n.IsZero() && !n.After(now) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return sched.Next(lo), true
}

// cronParser reads standard 5-field cron expressions, without descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Bits of every day of month (1..31) and every month (1..12) in a
// cron.SpecSchedule.
const (
	allDaysOfMonth = uint64(1<<32-1) &^ 1
	allMonths      = uint64(1<<13-1) &^ 1
)

// schedules caches parsed schedules by expression (at most maxCached).
var schedules = struct {
	sync.Mutex
	m map[string]*cron.SpecSchedule
}{m: map[string]*cron.SpecSchedule{}}

const maxCached = 1024

// recurrenceSchedule parses r's schedule and loads its zone; errors name
// the field.
func recurrenceSchedule(r Recurrence) (*cron.SpecSchedule, *time.Location, error) {
	loc, err := loadZone(r.TimeZone)
	if err != nil {
		return nil, nil, fmt.Errorf("recurrence.time_zone %q: %w", r.TimeZone, err)
	}
	sched, err := parseSchedule(r.Schedule)
	if err != nil {
		return nil, nil, fmt.Errorf("recurrence.schedule %q: %w", r.Schedule, err)
	}
	return sched, loc, nil
}

func parseSchedule(expr string) (*cron.SpecSchedule, error) {
	schedules.Lock()
	s, ok := schedules.m[expr]
	schedules.Unlock()
	if ok {
		return s, nil
	}
	trimmed := strings.TrimSpace(expr)
	switch {
	case trimmed == "":
		return nil, errors.New("is empty")
	case strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ="):
		return nil, errors.New("names a time zone: put it in recurrence.time_zone")
	case strings.HasPrefix(trimmed, "@"):
		return nil, errors.New("descriptors are not accepted: write the 5 fields (minute hour day-of-month month day-of-week)")
	}
	parsed, err := safeParse(trimmed)
	if err != nil {
		return nil, err
	}
	s, ok = parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("is not a cron schedule")
	}
	if s.Dom&allDaysOfMonth != allDaysOfMonth || s.Month&allMonths != allMonths {
		return nil, errors.New("day of month and month must be *: recurring profiles repeat every week (use fixed_date for dates)")
	}
	schedules.Lock()
	if len(schedules.m) < maxCached {
		schedules.m[expr] = s
	}
	schedules.Unlock()
	return s, nil
}

// safeParse parses a cron expression, turning a panic of the parser into
// an error.
func safeParse(expr string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("cannot be parsed: %v", r)
		}
	}()
	return cronParser.Parse(expr)
}

// zones caches loaded time zones by name.
var zones sync.Map

// loadZone loads an IANA zone; "" and "UTC" are UTC; "Local" is refused,
// since it would depend on the host.
func loadZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, errors.New("depends on the host: name an IANA zone such as Europe/Paris")
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, errors.New("unknown time zone")
	}
	zones.Store(name, loc)
	return loc, nil
}

// fixedBounds returns the instants of f's [start, end); errors name the
// field.
func fixedBounds(f FixedDate) (time.Time, time.Time, error) {
	loc, err := loadZone(f.TimeZone)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("fixed_date.time_zone %q: %w", f.TimeZone, err)
	}
	start, err := inZone(f.Start, loc, f.TimeZone != "", "fixed_date.start")
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	end, err := inZone(f.End, loc, f.TimeZone != "", "fixed_date.end")
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if !end.After(start) {
		return time.Time{}, time.Time{}, fmt.Errorf("fixed_date.end %s is not after fixed_date.start %s", end.Format(whenLayout), start.Format(whenLayout))
	}
	return start, end, nil
}

// inZone reads t in loc: with a zone, a t without offset is a wall clock
// there and a t with an offset must agree with the zone; without one, t is
// the instant as written.
func inZone(t time.Time, loc *time.Location, zoned bool, field string) (time.Time, error) {
	if t.IsZero() {
		return time.Time{}, fmt.Errorf("%s is missing", field)
	}
	_, off := t.Zone()
	if !zoned {
		return t.In(loc), nil
	}
	w := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
	if off == 0 {
		return w, nil
	}
	if _, zoff := w.Zone(); zoff != off {
		return time.Time{}, fmt.Errorf("%s %s has offset %s but %s is %s then: write it without an offset",
			field, t.Format(time.RFC3339), t.Format("-07:00"), loc, w.Format("-07:00"))
	}
	return w, nil
}
