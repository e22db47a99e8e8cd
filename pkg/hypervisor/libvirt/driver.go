package libvirt

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/hypervisor"
)

// Options configure a Driver. The zero value is usable.
type Options struct {
	// Accel is what AccelAuto in a DomainSpec resolves to: auto (default)
	// detects KVM on this host and falls back to TCG with a logged warning;
	// kvm fails New when the host cannot run ordinary KVM guests.
	Accel hypervisor.Accel
	// Log receives the driver's logs; logrus.StandardLogger() when nil.
	Log logrus.FieldLogger
	// KeepAliveInterval is the libvirt keepalive interval in seconds
	// (default 5; negative disables keepalive).
	KeepAliveInterval int
	// KeepAliveCount is how many keepalive probes may go unanswered before
	// the connection is closed (default 3).
	KeepAliveCount uint
	// ReconnectMin and ReconnectMax bound the reconnect backoff
	// (defaults 200ms and 30s).
	ReconnectMin, ReconnectMax time.Duration
	// EventBuffer is the capacity of each Events channel (default 128).
	// When a subscriber falls behind, its oldest event is dropped.
	EventBuffer int

	// probe replaces host detection in tests.
	probe func() hypervisor.HostProbe
}

func (o *Options) setDefaults() {
	if o.Accel == "" {
		o.Accel = hypervisor.AccelAuto
	}
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
	if o.KeepAliveInterval == 0 {
		o.KeepAliveInterval = 5
	}
	if o.KeepAliveCount == 0 {
		o.KeepAliveCount = 3
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 200 * time.Millisecond
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 30 * time.Second
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 128
	}
	if o.probe == nil {
		o.probe = hypervisor.ProbeHost
	}
}

// Driver is the libvirt implementation of hypervisor.Driver. It is safe for
// concurrent use.
type Driver struct {
	uri   string
	opts  Options
	log   logrus.FieldLogger
	accel hypervisor.Accel

	mu          sync.Mutex
	sess        *session // nil while disconnected
	gen         uint64   // generation of the newest session
	closed      bool
	backoff     time.Duration
	nextAttempt time.Time
	lastErr     error

	kick chan struct{} // wakes the reconnect loop; capacity 1
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	events *hypervisor.Broker
}

var _ hypervisor.Driver = (*Driver)(nil)

// New connects to the libvirt URI (e.g. "qemu:///system", "test:///default")
// and returns a Driver. It resolves opts.Accel on this host first: an
// explicit kvm on a host without usable KVM is an error wrapping
// hypervisor.ErrInvalidSpec. A connection failure is an error wrapping
// hypervisor.ErrUnavailable.
func New(uri string, opts Options) (*Driver, error) {
	opts.setDefaults()
	accel, reason, err := hypervisor.ResolveAccel(opts.Accel, opts.probe())
	if err != nil {
		return nil, fmt.Errorf("libvirt driver: %w", err)
	}
	log := opts.Log.WithField("uri", uri)
	if reason != "" {
		log.WithField("accel", accel).Warn(reason)
	}
	if err := startEventLoop(opts.Log); err != nil {
		return nil, fmt.Errorf("libvirt driver: %w: %w", hypervisor.ErrUnavailable, err)
	}
	d := &Driver{
		uri:     uri,
		opts:    opts,
		log:     log,
		accel:   accel,
		backoff: opts.ReconnectMin,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		events:  newEventBroker(opts.EventBuffer, log),
	}
	s, err := d.acquire(context.Background())
	if err != nil {
		return nil, err
	}
	s.users.Done()
	d.wg.Add(1)
	go d.reconnectLoop()
	return d, nil
}

// Accel returns the accelerator that AccelAuto resolves to.
func (d *Driver) Accel() hypervisor.Accel { return d.accel }

// Close unsubscribes every event channel, stops the reconnect loop and
// closes the connection. It is idempotent.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	s := d.sess
	d.sess = nil
	d.mu.Unlock()

	close(d.done)
	d.wg.Wait()
	d.events.Close()
	if s != nil {
		return s.retire(d.log, true)
	}
	return nil
}
