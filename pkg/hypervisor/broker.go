package hypervisor

import "sync"

// Broker fans domain events out to subscribers without ever blocking the
// publisher (for libvirt, its event-loop thread). A subscriber whose buffer is
// full loses its oldest event to make room; OnDrop, when set, hears of it.
// Drivers embed one and hand its channels out from Events. Safe for
// concurrent use.
type Broker struct {
	// OnDrop is called (under the broker's lock: keep it short) with the
	// subscriber's id and the event it lost.
	OnDrop func(subscriber int, lost Event)

	mu     sync.Mutex
	subs   map[int]chan Event
	nextID int
	size   int
	closed bool
}

// NewBroker returns a Broker whose subscriber channels buffer size events.
func NewBroker(size int) *Broker {
	return &Broker{subs: map[int]chan Event{}, size: size}
}

// Subscribe adds a subscriber. cancel removes it and closes its channel; it is
// idempotent. After Close, Subscribe returns an already closed channel.
func (b *Broker) Subscribe() (events <-chan Event, cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan Event, b.size)
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	id := b.nextID
	b.nextID++
	b.subs[id] = ch
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if c, ok := b.subs[id]; ok {
			delete(b.subs, id)
			close(c)
		}
	}
}

// Publish delivers ev to every subscriber without blocking.
func (b *Broker) Publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, ch := range b.subs {
		select {
		case ch <- ev:
			continue
		default:
		}
		select {
		case old := <-ch:
			if b.OnDrop != nil {
				b.OnDrop(id, old)
			}
		default:
		}
		select {
		case ch <- ev:
		default:
		}
	}
}

// Close closes every subscriber's channel; later subscriptions get a closed channel.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for id, ch := range b.subs {
		delete(b.subs, id)
		close(ch)
	}
}
