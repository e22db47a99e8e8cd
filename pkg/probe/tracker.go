package probe

import (
	"net/netip"
	"sync"
	"time"
)

// Status is a target's health as the probes see it.
type Status string

// The statuses.
const (
	// StatusUnknown: not enough probes yet to say (a new target).
	StatusUnknown Status = "unknown"
	// StatusHealthy: the last Spec.Healthy probes (at least) succeeded.
	StatusHealthy Status = "healthy"
	// StatusUnhealthy: the last Spec.Unhealthy probes (at least) failed.
	StatusUnhealthy Status = "unhealthy"
)

// Result is what a Tracker knows of its target.
type Result struct {
	Status Status `json:"status"`
	// Since is when Status last changed; zero while still Unknown.
	Since time.Time `json:"since,omitzero"`
	// Successes and Failures count the consecutive successful and failed
	// probes up to the last one; at most one of them is non-zero.
	Successes int `json:"successes"`
	Failures  int `json:"failures"`
	// LastError is the message of the most recent failed probe. It is kept
	// after later successes, to tell why a target was last unhealthy;
	// empty when no probe failed yet.
	LastError string `json:"last_error,omitempty"`
	// LastCheck is when the most recent probe was observed; zero before
	// the first.
	LastCheck time.Time `json:"last_check,omitzero"`
	// Addr is the probed address: set in the Results of a Prober, zero in
	// those of a bare Tracker.
	Addr netip.Addr `json:"addr,omitzero"`
}

// Tracker is the health state machine of one target. It starts Unknown;
// Spec.Healthy consecutive successes make it Healthy and Spec.Unhealthy
// consecutive failures make it Unhealthy, from either other status. Any
// other observation keeps the status, so a target flapping faster than
// the thresholds keeps the status it had. A Tracker is safe for
// concurrent use.
type Tracker struct {
	healthy, unhealthy int

	mu sync.Mutex
	r  Result
}

// NewTracker returns an Unknown tracker with the thresholds of
// s.WithDefaults(); a threshold below 1 counts as 1.
func NewTracker(s Spec) *Tracker {
	s = s.WithDefaults()
	return &Tracker{
		healthy:   max(s.Healthy, 1),
		unhealthy: max(s.Unhealthy, 1),
		r:         Result{Status: StatusUnknown},
	}
}

// Observe records the outcome of one probe made at time at: err nil for a
// success, the probe's error for a failure. It reports whether the Status
// changed, in which case Result().Since is at.
func (t *Tracker) Observe(err error, at time.Time) (changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &t.r
	r.LastCheck = at
	next := r.Status
	if err == nil {
		r.Successes++
		r.Failures = 0
		if r.Successes >= t.healthy {
			next = StatusHealthy
		}
	} else {
		r.Failures++
		r.Successes = 0
		r.LastError = err.Error()
		if r.Failures >= t.unhealthy {
			next = StatusUnhealthy
		}
	}
	if next == r.Status {
		return false
	}
	r.Status = next
	r.Since = at
	return true
}

// Result returns a copy of the tracker's current state.
func (t *Tracker) Result() Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.r
}
