package fake

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

// Define validates and stores spec (AccelAuto resolved, MACs generated).
func (d *Driver) Define(ctx context.Context, spec hypervisor.DomainSpec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "Define"); err != nil {
		return err
	}
	op := fmt.Sprintf("define domain %q", spec.Name)
	if err := hypervisor.ValidateDomainSpec(spec); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, ok := d.domains[spec.Name]; ok {
		return fmt.Errorf("%s: %w", op, hypervisor.ErrExists)
	}
	if spec.Accel == "" || spec.Accel == hypervisor.AccelAuto {
		spec.Accel = d.accel
	}
	if spec.UUID == "" {
		spec.UUID = randomUUID()
	}
	spec.NICs = append([]hypervisor.NIC(nil), spec.NICs...)
	spec.Disks = append([]hypervisor.Disk(nil), spec.Disks...)
	macs := make([]string, len(spec.NICs))
	for i := range spec.NICs {
		if spec.NICs[i].MAC == "" {
			spec.NICs[i].MAC = randomMAC()
		}
		hw, _ := net.ParseMAC(spec.NICs[i].MAC) // validated above
		spec.NICs[i].MAC = hw.String()
		macs[i] = spec.NICs[i].MAC
	}
	meta := spec.Metadata
	d.domains[spec.Name] = &domain{spec: spec, dom: hypervisor.Domain{
		Name: spec.Name, UUID: spec.UUID, State: hypervisor.StateShutoff,
		VCPUs: spec.VCPUs, MemoryMiB: spec.MemoryMiB, Metadata: &meta, MACs: macs,
	}}
	d.order = append(d.order, spec.Name)
	d.emitLocked(spec.Name, hypervisor.EventDefined, "added")
	return nil
}

// Start runs a defined domain; a running one is left as is.
func (d *Driver) Start(ctx context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "Start"); err != nil {
		return err
	}
	dom, err := d.lookup("start", name)
	if err != nil {
		return err
	}
	if dom.dom.State == hypervisor.StateRunning || dom.dom.State == hypervisor.StatePaused {
		return nil
	}
	// As libvirt does: a NIC on a known but inactive network fails the start.
	for _, nic := range dom.spec.NICs {
		if n, ok := d.networks[nic.Network]; ok && !n.Active {
			return fmt.Errorf("start %q: network %q is not active", name, nic.Network)
		}
	}
	dom.dom.State = hypervisor.StateRunning
	d.emitLocked(name, hypervisor.EventStarted, "booted")
	return nil
}

// Shutdown powers a running domain off at once, unless IgnoreACPI is set:
// then it waits for timeout (or ctx) and destroys it.
func (d *Driver) Shutdown(ctx context.Context, name string, timeout time.Duration) error {
	d.mu.Lock()
	if err := d.enter(ctx, "Shutdown"); err != nil {
		d.mu.Unlock()
		return err
	}
	dom, err := d.lookup("shut down", name)
	if err != nil || dom.dom.State == hypervisor.StateShutoff {
		d.mu.Unlock()
		return err
	}
	if !dom.noACPI {
		dom.dom.State = hypervisor.StateShutoff
		d.emitLocked(name, hypervisor.EventStopped, "shutdown")
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()

	select {
	case <-ctx.Done():
		return fmt.Errorf("shut down domain %q: %w", name, ctx.Err())
	case <-time.After(timeout):
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if dom, ok := d.domains[name]; ok && dom.dom.State != hypervisor.StateShutoff {
		dom.dom.State = hypervisor.StateShutoff
		d.emitLocked(name, hypervisor.EventStopped, "destroyed")
	}
	return nil
}

// Destroy powers a domain off at once; a stopped one is left as is.
func (d *Driver) Destroy(ctx context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "Destroy"); err != nil {
		return err
	}
	dom, err := d.lookup("destroy", name)
	if err != nil || dom.dom.State == hypervisor.StateShutoff {
		return err
	}
	dom.dom.State = hypervisor.StateShutoff
	d.emitLocked(name, hypervisor.EventStopped, "destroyed")
	return nil
}

// Undefine removes a stopped domain; a running one gives ErrDomainRunning.
func (d *Driver) Undefine(ctx context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "Undefine"); err != nil {
		return err
	}
	dom, err := d.lookup("undefine", name)
	if err != nil {
		return err
	}
	if dom.dom.State != hypervisor.StateShutoff && dom.dom.State != hypervisor.StateCrashed {
		return fmt.Errorf("undefine domain %q: %w; stop it first", name, hypervisor.ErrDomainRunning)
	}
	delete(d.domains, name)
	delete(d.addrs, name)
	for i, n := range d.order {
		if n == name {
			d.order = append(d.order[:i], d.order[i+1:]...)
			break
		}
	}
	d.emitLocked(name, hypervisor.EventUndefined, "removed")
	return nil
}

// List returns all domains in definition order.
func (d *Driver) List(ctx context.Context) ([]hypervisor.Domain, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "List"); err != nil {
		return nil, err
	}
	out := make([]hypervisor.Domain, 0, len(d.order))
	for _, n := range d.order {
		out = append(out, copyDomain(d.domains[n].dom))
	}
	return out, nil
}

// States returns every domain's state by name.
func (d *Driver) States(ctx context.Context) (map[string]hypervisor.DomainState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "States"); err != nil {
		return nil, err
	}
	out := make(map[string]hypervisor.DomainState, len(d.order))
	for _, n := range d.order {
		out[n] = d.domains[n].dom.State
	}
	return out, nil
}

// Get returns one domain.
func (d *Driver) Get(ctx context.Context, name string) (hypervisor.Domain, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "Get"); err != nil {
		return hypervisor.Domain{}, err
	}
	dom, err := d.lookup("get", name)
	if err != nil {
		return hypervisor.Domain{}, err
	}
	return copyDomain(dom.dom), nil
}

// copyDomain returns a deep copy, so callers cannot change stored state.
func copyDomain(in hypervisor.Domain) hypervisor.Domain {
	out := in
	out.MACs = append([]string(nil), in.MACs...)
	if in.Metadata != nil {
		m := *in.Metadata
		out.Metadata = &m
	}
	return out
}

// Events streams lifecycle events until ctx ends (or Close). A slow
// subscriber loses its oldest events.
func (d *Driver) Events(ctx context.Context) (<-chan hypervisor.Event, error) {
	d.mu.Lock()
	err := d.enter(ctx, "Events")
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ch, cancel := d.events.Subscribe()
	go func() {
		<-ctx.Done()
		cancel()
	}()
	return ch, nil
}

// agentReady returns nil when the named domain's agent can answer.
// d.mu must be held.
func (d *Driver) agentReady(op, name string) error {
	dom, err := d.lookup(op, name)
	if err != nil {
		return err
	}
	switch {
	case dom.dom.State != hypervisor.StateRunning:
		return fmt.Errorf("%s %q: domain is not running: %w", op, name, hypervisor.ErrAgentUnavailable)
	case !dom.spec.GuestAgent:
		return fmt.Errorf("%s %q: guest agent is not configured: %w", op, name, hypervisor.ErrAgentUnavailable)
	case dom.agentOff:
		return fmt.Errorf("%s %q: guest agent is not connected: %w", op, name, hypervisor.ErrAgentUnavailable)
	}
	return nil
}

// AgentPing answers for running domains with a connected agent, through
// the SetAgentPing hook when set.
func (d *Driver) AgentPing(ctx context.Context, name string) error {
	d.mu.Lock()
	err := d.enter(ctx, "AgentPing")
	if err == nil {
		err = d.agentReady("ping guest agent of", name)
	}
	hook := d.ping
	d.mu.Unlock()
	if err != nil || hook == nil {
		return err
	}
	return hook(ctx, name)
}

// AgentExec runs req through the SetAgentExec hook (exit 0 without one).
func (d *Driver) AgentExec(ctx context.Context, name string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error) {
	d.mu.Lock()
	err := d.enter(ctx, "AgentExec")
	if err == nil {
		err = d.agentReady("exec in guest", name)
	}
	if err == nil && !strings.HasPrefix(req.Path, "/") {
		err = fmt.Errorf("exec in guest %q: path %q is not absolute: %w", name, req.Path, hypervisor.ErrInvalidSpec)
	}
	hook := d.exec
	d.mu.Unlock()
	if err != nil {
		return hypervisor.ExecResult{}, err
	}
	if hook == nil {
		return hypervisor.ExecResult{}, nil
	}
	return hook(ctx, name, req)
}

// Addresses returns what SetAddresses scripted (empty, not nil, otherwise).
func (d *Driver) Addresses(ctx context.Context, name string) ([]hypervisor.Address, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "Addresses"); err != nil {
		return nil, err
	}
	if _, err := d.lookup("addresses of", name); err != nil {
		return nil, err
	}
	return append([]hypervisor.Address{}, d.addrs[name]...), nil
}

// ReleaseLeases forgets the lease addresses scripted with SetAddresses for
// the domain (agent addresses stay, as a real guest's would until it stops).
func (d *Driver) ReleaseLeases(ctx context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "ReleaseLeases"); err != nil {
		return err
	}
	if _, err := d.lookup("release leases of", name); err != nil {
		return err
	}
	kept := d.addrs[name][:0]
	for _, a := range d.addrs[name] {
		if a.Source != hypervisor.SourceLease {
			kept = append(kept, a)
		}
	}
	d.addrs[name] = kept
	return nil
}
