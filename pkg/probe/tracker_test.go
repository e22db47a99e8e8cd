package probe

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	// Each step is one observation: '+' a success, '-' a failure.
	tests := []struct {
		name               string
		healthy, unhealthy int
		steps              string
		want               string // one letter per step: u(nknown), h(ealthy), x (unhealthy); upper case = changed
	}{
		{"default thresholds up", 0, 0, "++", "uH"},
		{"default thresholds down", 0, 0, "--", "uX"},
		{"threshold 1", 1, 1, "+-+-", "HXHX"},
		{"healthy needs 3 in a row", 3, 2, "++-+++", "uuuuuH"},
		{"unhealthy needs 3 in a row", 1, 3, "+--+---", "HhhhhhX"},
		{"stays healthy through a blip", 2, 2, "++-+-+-+", "uHhhhhhh"},
		{"flapping from unknown stays unknown", 2, 2, "+-+-+-", "uuuuuu"},
		{"recovers", 2, 2, "--++", "uXxH"},
		{"counts keep growing past the threshold", 1, 1, "+++", "Hhh"},
		{"unhealthy to healthy to unhealthy", 2, 3, "---++---", "uuXxHhhX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(Spec{Healthy: tt.healthy, Unhealthy: tt.unhealthy})
			if r := tr.Result(); r.Status != StatusUnknown || !r.Since.IsZero() || !r.LastCheck.IsZero() {
				t.Fatalf("new tracker: %+v", r)
			}
			t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			var since time.Time
			succ, fail := 0, 0
			for i, step := range tt.steps {
				at := t0.Add(time.Duration(i) * time.Second)
				var err error
				if step == '-' {
					err = fmt.Errorf("fail %d", i)
					fail, succ = fail+1, 0
				} else {
					succ, fail = succ+1, 0
				}
				changed := tr.Observe(err, at)
				want := tt.want[i]
				if wantChanged := want >= 'A' && want <= 'Z'; changed != wantChanged {
					t.Errorf("step %d (%c): changed = %v, want %v", i, step, changed, wantChanged)
				}
				if changed {
					since = at
				}
				r := tr.Result()
				if st := letter(r.Status); st != strings.ToLower(string(want)) {
					t.Errorf("step %d (%c): status %s, want %c", i, step, r.Status, want)
				}
				if r.Successes != succ || r.Failures != fail {
					t.Errorf("step %d: successes/failures = %d/%d, want %d/%d", i, r.Successes, r.Failures, succ, fail)
				}
				if !r.Since.Equal(since) || !r.LastCheck.Equal(at) {
					t.Errorf("step %d: since %v last check %v, want %v and %v", i, r.Since, r.LastCheck, since, at)
				}
			}
		})
	}
}

func letter(s Status) string {
	switch s {
	case StatusUnknown:
		return "u"
	case StatusHealthy:
		return "h"
	case StatusUnhealthy:
		return "x"
	}
	return "?"
}

// TestTrackerKeepsLastError: LastError is the latest failure's message and
// survives the successes after it.
func TestTrackerKeepsLastError(t *testing.T) {
	tr := NewTracker(Spec{Healthy: 1, Unhealthy: 1})
	at := time.Unix(100, 0)
	if tr.Observe(nil, at); tr.Result().LastError != "" {
		t.Fatalf("LastError after a success = %q", tr.Result().LastError)
	}
	tr.Observe(errors.New("connection refused"), at.Add(time.Second))
	tr.Observe(errors.New("status 503 Service Unavailable"), at.Add(2*time.Second))
	if got := tr.Result().LastError; got != "status 503 Service Unavailable" {
		t.Errorf("LastError = %q, want the latest failure", got)
	}
	tr.Observe(nil, at.Add(3*time.Second))
	r := tr.Result()
	if r.Status != StatusHealthy || r.LastError != "status 503 Service Unavailable" {
		t.Errorf("after recovery: %+v, want healthy keeping the last error", r)
	}
	if !r.Since.Equal(at.Add(3*time.Second)) || r.Addr.IsValid() {
		t.Errorf("after recovery: %+v", r)
	}
}

// TestTrackerThresholdBelowOne: thresholds below 1 count as 1, zero means
// the default 2.
func TestTrackerThresholdBelowOne(t *testing.T) {
	tr := NewTracker(Spec{Healthy: -5, Unhealthy: -1})
	if !tr.Observe(nil, time.Now()) {
		t.Error("healthy threshold -5: one success did not make the target healthy")
	}
	if !tr.Observe(errors.New("x"), time.Now()) {
		t.Error("unhealthy threshold -1: one failure did not make the target unhealthy")
	}
}
