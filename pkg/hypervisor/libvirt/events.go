package libvirt

import (
	"context"
	"fmt"
	"strconv"
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
	ch, cancel := d.events.Subscribe()
	go func() {
		select {
		case <-ctx.Done():
			cancel()
		case <-d.done:
		}
	}()
	return ch, nil
}

// newEventBroker returns the driver's broker; it logs events a slow
// subscriber loses.
func newEventBroker(size int, log logrus.FieldLogger) *hypervisor.Broker {
	b := hypervisor.NewBroker(size)
	b.OnDrop = func(id int, old hypervisor.Event) {
		log.WithFields(logrus.Fields{"subscriber": id, "vm": old.Domain, "event": old.Kind}).
			Warn("event subscriber is slow; dropped its oldest event")
	}
	return b
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
