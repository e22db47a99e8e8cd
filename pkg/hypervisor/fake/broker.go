package fake

import (
	"sync"

	"github.com/galevm/gale/pkg/hypervisor"
)

// broker fans events out without blocking; a full channel loses its
// oldest event.
type broker struct {
	mu     sync.Mutex
	subs   map[int]chan hypervisor.Event
	next   int
	size   int
	closed bool
}

func newBroker(size int) *broker {
	return &broker{subs: map[int]chan hypervisor.Event{}, size: size}
}

func (b *broker) subscribe() (<-chan hypervisor.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan hypervisor.Event, b.size)
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	id := b.next
	b.next++
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

func (b *broker) publish(ev hypervisor.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs {
		select {
		case ch <- ev:
			continue
		default:
		}
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- ev:
		default:
		}
	}
}

func (b *broker) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for id, ch := range b.subs {
		delete(b.subs, id)
		close(ch)
	}
}
