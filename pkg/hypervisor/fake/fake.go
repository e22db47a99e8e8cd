// Package fake is an in-memory hypervisor.Driver for unit tests of
// controllers. Domains and networks live in maps; state changes emit the
// same lifecycle events the libvirt driver reports. Tests script the guest
// agent and addresses, inject failures (FailNext) to simulate crashes
// between steps, and take the "hypervisor" down (SetDown).
//
// It validates specs with the same rules as the libvirt driver
// (hypervisor.ValidateDomainSpec, ValidateNetworkSpec) and honours ctx.
package fake

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/galevm/gale/pkg/hypervisor"
)

// domain is one stored domain.
type domain struct {
	spec     hypervisor.DomainSpec
	dom      hypervisor.Domain
	noACPI   bool // the guest ignores the ACPI power button
	agentOff bool
}

// Driver is the fake. The zero value is not usable; call New. It is safe for
// concurrent use.
type Driver struct {
	mu       sync.Mutex
	accel    hypervisor.Accel
	domains  map[string]*domain
	order    []string // domain names in definition order
	networks map[string]*hypervisor.Network
	failures map[string][]error
	addrs    map[string][]hypervisor.Address
	ping     func(ctx context.Context, name string) error
	exec     func(ctx context.Context, name string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error)
	calls    []string
	stats    map[string]hypervisor.DomainStats // scripted by SetStats
	down     bool
	closed   bool
	events   *hypervisor.Broker
}

var _ hypervisor.Driver = (*Driver)(nil)

// New returns an empty fake whose AccelAuto resolves to TCG.
func New() *Driver {
	return &Driver{
		accel:    hypervisor.AccelTCG,
		domains:  map[string]*domain{},
		networks: map[string]*hypervisor.Network{},
		failures: map[string][]error{},
		addrs:    map[string][]hypervisor.Address{},
		events:   hypervisor.NewBroker(128),
	}
}

// enter records a call of method and returns the error the call must fail
// with before any effect: ctx's, a closed or down driver, or an injected
// failure. d.mu must be held.
func (d *Driver) enter(ctx context.Context, method string) error {
	d.calls = append(d.calls, method)
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.closed {
		return fmt.Errorf("fake: %s: driver closed: %w", method, hypervisor.ErrUnavailable)
	}
	if d.down {
		return fmt.Errorf("fake: %s: %w", method, hypervisor.ErrUnavailable)
	}
	if q := d.failures[method]; len(q) > 0 {
		err := q[0]
		d.failures[method] = q[1:]
		return err
	}
	return nil
}

// lookup returns the named domain or a wrapped ErrNotFound. d.mu must be held.
func (d *Driver) lookup(op, name string) (*domain, error) {
	dom, ok := d.domains[name]
	if !ok {
		return nil, fmt.Errorf("%s %q: domain %w", op, name, hypervisor.ErrNotFound)
	}
	return dom, nil
}

// Accel returns the accelerator AccelAuto resolves to (tcg unless SetAccel).
func (d *Driver) Accel() hypervisor.Accel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accel
}

// Close makes every later call fail with ErrUnavailable and closes all
// event channels.
func (d *Driver) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.events.Close()
	return nil
}

func randomMAC() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
