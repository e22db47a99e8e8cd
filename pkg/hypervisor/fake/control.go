package fake

import (
	"context"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

// This file holds the knobs tests turn; none of it is part of hypervisor.Driver.

// FailNext makes the next call of method (a Driver method name such as
// "Define", "Start" or "CreateNetwork") return err without any effect.
// Several calls queue several failures, consumed in order.
func (d *Driver) FailNext(method string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failures[method] = append(d.failures[method], err)
}

// SetDown simulates the hypervisor being unreachable: while down, every
// call fails with ErrUnavailable. Event subscriptions stay open.
func (d *Driver) SetDown(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
}

// SetAccel sets what AccelAuto resolves to.
func (d *Driver) SetAccel(a hypervisor.Accel) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.accel = a
}

// Calls returns the Driver methods called so far, in order (failed calls
// included).
func (d *Driver) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// SetAgentPing scripts AgentPing for running domains with a guest agent.
// Without it, the agent of such a domain answers at once.
func (d *Driver) SetAgentPing(fn func(ctx context.Context, name string) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ping = fn
}

// SetAgentExec scripts AgentExec for running domains with a guest agent.
// Without it, every command exits 0 with no output.
func (d *Driver) SetAgentExec(fn func(ctx context.Context, name string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.exec = fn
}

// SetAgentConnected says whether the named domain's agent is connected
// (true by default). A disconnected agent gives ErrAgentUnavailable.
func (d *Driver) SetAgentConnected(name string, connected bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dom, ok := d.domains[name]; ok {
		dom.agentOff = !connected
	}
}

// SetAddresses scripts what Addresses returns for the named domain.
func (d *Driver) SetAddresses(name string, addrs []hypervisor.Address) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs[name] = append([]hypervisor.Address(nil), addrs...)
}

// IgnoreACPI makes the named guest ignore the power button, so Shutdown
// waits for its timeout and then destroys it.
func (d *Driver) IgnoreACPI(name string, ignore bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dom, ok := d.domains[name]; ok {
		dom.noACPI = ignore
	}
}

// Crash stops a running domain as a guest crash does (on_crash destroy)
// and emits a crashed event. Unknown or stopped domains are ignored.
func (d *Driver) Crash(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dom, ok := d.domains[name]; ok && dom.dom.State == hypervisor.StateRunning {
		dom.dom.State = hypervisor.StateShutoff
		d.emitLocked(name, hypervisor.EventCrashed, "crashed")
	}
}

// SetState forces the named domain's state without an event.
func (d *Driver) SetState(name string, st hypervisor.DomainState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dom, ok := d.domains[name]; ok {
		dom.dom.State = st
	}
}

// AddDomain stores a domain as found, e.g. one gale did not define
// (Metadata nil) or one left behind by a crash, without an event.
func (d *Driver) AddDomain(dom hypervisor.Domain) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dom.UUID == "" {
		dom.UUID = randomUUID()
	}
	if dom.State == "" {
		dom.State = hypervisor.StateShutoff
	}
	if _, ok := d.domains[dom.Name]; !ok {
		d.order = append(d.order, dom.Name)
	}
	d.domains[dom.Name] = &domain{spec: hypervisor.DomainSpec{Name: dom.Name}, dom: dom}
}

// Spec returns the spec the named domain was defined with (AccelAuto
// resolved, MACs filled in).
func (d *Driver) Spec(name string) (hypervisor.DomainSpec, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dom, ok := d.domains[name]
	if !ok {
		return hypervisor.DomainSpec{}, false
	}
	return dom.spec, true
}

// Emit sends ev to every subscriber (Time defaults to now).
func (d *Driver) Emit(ev hypervisor.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	d.events.Publish(ev)
}

// emitLocked publishes a lifecycle event. The broker never blocks, so
// holding d.mu is fine.
func (d *Driver) emitLocked(name string, kind hypervisor.EventKind, detail string) {
	d.events.Publish(hypervisor.Event{Domain: name, Kind: kind, Detail: detail, Time: time.Now()})
}

// SetNetworkActive marks network name active or not (as libvirtd started
// without network autostart leaves it); an unknown name is ignored.
func (d *Driver) SetNetworkActive(name string, active bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok := d.networks[name]; ok {
		n.Active = active
	}
}
