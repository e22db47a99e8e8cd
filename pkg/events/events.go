// Package events is galed's one event stream: services publish what
// happens (set activity, ...) and API clients follow it (GET /v1/events).
// Delivery is best effort: a subscriber that does not keep up loses the
// events its buffer cannot hold, never blocks a publisher, and is told how
// many it lost.
package events

import (
	"slices"
	"sync"

	"github.com/galevm/gale/pkg/api"
)

// Hub fans events out to subscribers. The zero value is ready to use.
type Hub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Subscription receives the events of the kinds it asked for on C until
// Close.
type Subscription struct {
	C     chan api.BusEvent
	kinds []string
	hub   *Hub
	mu    sync.Mutex
	lost  int
}

// Buffer is how many events a subscriber may fall behind before it loses some.
const Buffer = 256

// Subscribe returns a subscription to events of kinds (all kinds when none).
func (h *Hub) Subscribe(kinds ...string) *Subscription {
	s := &Subscription{C: make(chan api.BusEvent, Buffer), kinds: kinds, hub: h}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*Subscription]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Publish sends ev to every subscriber that wants its kind. It never blocks.
func (h *Hub) Publish(ev api.BusEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if len(s.kinds) > 0 && !slices.Contains(s.kinds, ev.Kind) {
			continue
		}
		select {
		case s.C <- ev:
		default:
			s.mu.Lock()
			s.lost++
			s.mu.Unlock()
		}
	}
}

// Lost returns how many events were dropped because C was full.
func (s *Subscription) Lost() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

// Close ends the subscription; C receives nothing more.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	delete(s.hub.subs, s)
	s.hub.mu.Unlock()
}
