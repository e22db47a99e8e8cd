package libvirt

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/hypervisor"
)

// Events returns a channel of lifecycle events for all domains. The channel
// is closed when ctx ends or the driver is closed. Subscriptions live in the
// driver, not in a connection, so they keep receiving after reconnects.
// A subscriber that falls behind loses its oldest buffered events (logged).
func (d *Driver) Events(ctx context.Context) (<-chan hypervisor.Event, error) {
	// Fail fast when libvirt is unreachable, as every other method does.
	if err := d.with(ctx, func(*lv.Connect) error { return nil }); err != nil {
		return nil, fmt.Errorf("subscribe to events: %w", err)
	}
	ch, cancel := d.events.subscribe()
	go func() {
		select {
		case <-ctx.Done():
			cancel()
		case <-d.done:
		}
	}()
	return ch, nil
}

// broker fans events out to subscribers without ever blocking the
// publisher (libvirt's event loop thread).
type broker struct {
	mu     sync.Mutex
	subs   map[int]chan hypervisor.Event
	nextID int
	size   int
	closed bool
	log    logrus.FieldLogger
}

func newBroker(size int, log logrus.FieldLogger) *broker {
	return &broker{subs: map[int]chan hypervisor.Event{}, size: size, log: log}
}

// subscribe adds a subscriber. cancel removes it and closes its channel;
// cancel is idempotent.
func (b *broker) subscribe() (<-chan hypervisor.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan hypervisor.Event, b.size)
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

// publish delivers ev to every subscriber. A full channel loses its oldest
// event to make room.
func (b *broker) publish(ev hypervisor.Event) {
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
			b.log.WithFields(logrus.Fields{"subscriber": id, "vm": old.Domain, "event": old.Kind}).
				Warn("event subscriber is slow; dropped its oldest event")
		default:
		}
		select {
		case ch <- ev:
		default:
		}
	}
}

// closeAll closes every subscriber's channel; later subscriptions get a
// closed channel.
func (b *broker) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for id, ch := range b.subs {
		delete(b.subs, id)
		close(ch)
	}
}

// lifecycleEvent converts a libvirt lifecycle event.
func lifecycleEvent(dom *lv.Domain, ev *lv.DomainEventLifecycle) hypervisor.Event {
	name, _ := dom.GetName() // local: no RPC
	kind, detail := eventKind(ev.Event, ev.Detail)
	return hypervisor.Event{Domain: name, Kind: kind, Detail: detail, Time: time.Now()}
}

// eventKind maps a libvirt lifecycle event and its detail code.
func eventKind(t lv.DomainEventType, detail int) (hypervisor.EventKind, string) {
	switch t {
	case lv.DOMAIN_EVENT_DEFINED:
		return hypervisor.EventDefined, pick(detail, "added", "updated", "renamed", "from-snapshot")
	case lv.DOMAIN_EVENT_UNDEFINED:
		return hypervisor.EventUndefined, pick(detail, "removed", "renamed")
	case lv.DOMAIN_EVENT_STARTED:
		return hypervisor.EventStarted, pick(detail, "booted", "migrated", "restored", "from-snapshot", "wakeup")
	case lv.DOMAIN_EVENT_SUSPENDED:
		return hypervisor.EventSuspended, pick(detail, "paused", "migrated", "ioerror", "watchdog", "restored",
			"from-snapshot", "api-error", "postcopy", "postcopy-failed")
	case lv.DOMAIN_EVENT_RESUMED:
		return hypervisor.EventResumed, pick(detail, "unpaused", "migrated", "from-snapshot", "postcopy", "postcopy-failed")
	case lv.DOMAIN_EVENT_STOPPED:
		if lv.DomainEventStoppedDetailType(detail) == lv.DOMAIN_EVENT_STOPPED_CRASHED {
			return hypervisor.EventCrashed, "crashed"
		}
		return hypervisor.EventStopped, pick(detail, "shutdown", "destroyed", "crashed", "migrated", "saved",
			"failed", "from-snapshot")
	case lv.DOMAIN_EVENT_CRASHED:
		return hypervisor.EventCrashed, pick(detail, "panicked", "crashloaded")
	case lv.DOMAIN_EVENT_SHUTDOWN:
		return hypervisor.EventOther, "shutdown-" + pick(detail, "finished", "guest", "host")
	case lv.DOMAIN_EVENT_PMSUSPENDED:
		return hypervisor.EventSuspended, "pm-" + pick(detail, "memory", "disk")
	}
	return hypervisor.EventOther, fmt.Sprintf("event-%d-detail-%d", t, detail)
}

// pick returns names[i], or the number when it is out of range.
func pick(i int, names ...string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return strconv.Itoa(i)
}
