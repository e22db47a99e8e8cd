package scaleset

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/autoscale"
	"github.com/galevm/gale/pkg/probe"
	"github.com/galevm/gale/pkg/store"
	"github.com/galevm/gale/pkg/vm"
)

// Work a controller runs on an instance (member.Busy).
const (
	busyCreate = "create"
	busyDelete = "delete"
	busyRepair = "repair"
)

const phaseDeleting = store.PhaseDeleting

// controller drives one set towards its spec. Its loop (run) is the only
// writer of the set's decisions; the work it starts (creates, deletes,
// repairs) runs on goroutines that report back by waking it.
type controller struct {
	s      *Service
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{}
	work   sync.WaitGroup

	// passMu serialises passes with user actions that change capacity and
	// membership together (an instance delete), so a pass never sees one
	// change without the other.
	passMu sync.Mutex

	mu        sync.Mutex
	busy      map[string]string // instance -> busyCreate, busyDelete, busyRepair
	draining  map[string]bool   // left the load balancer, not deleted yet
	members   []member          // the last pass's view
	applied   string            // fingerprint of the last map applied
	applyErr  string            // the last failed apply's error (logged once)
	prober    *probe.Prober     // nil when the set has no probe
	probeSpec string            // the spec prober runs
	backoff   time.Time         // no new create before this (after failures)
	failures  int               // consecutive failed creates
	suspended bool              // repairs are suspended (logged once)
	refused   string            // the last refusal logged (not repeated)
	upgrade   *upgradeRun       // the rolling upgrade in progress, if any
	// lastDecision is the autoscaler's latest; lastNoneKind and lastNoneAt
	// keep decisions to do nothing from filling the activity log.
	lastDecision *autoscale.Decision
	lastNoneKind string
	lastNoneAt   time.Time
	// lastConnSample is when lb_connections was last sampled.
	lastConnSample time.Time
	unhealthy      map[string]time.Time // when an instance was last seen become unhealthy
}

func newController(s *Service, name string) *controller {
	ctx, cancel := context.WithCancel(context.Background())
	return &controller{s: s, name: name, ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1),
		busy: map[string]string{}, draining: map[string]bool{}, unhealthy: map[string]time.Time{}}
}

func (c *controller) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// stop cancels the controller's loop and its work and waits for them.
func (c *controller) stop() {
	c.cancel()
	c.wake()
}

// run is the controller's loop: a pass at once, then on every wake and
// every interval, until stopped or the set is gone.
func (c *controller) run() {
	defer func() {
		c.work.Wait()
		c.mu.Lock()
		if c.prober != nil {
			c.prober.Stop()
		}
		c.mu.Unlock()
	}()
	t := time.NewTicker(c.s.cfg.Interval)
	defer t.Stop()
	for {
		done, err := c.pass(c.ctx)
		if err != nil && c.ctx.Err() == nil {
			c.s.log.WithField("set", c.name).WithError(err).Warn("set controller pass")
		}
		if done {
			return
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
	}
}

// snapshot returns the last pass's members (nil before the first pass).
func (c *controller) snapshot() []member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

func (c *controller) upgrading() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upgrade != nil
}

func memberOf(r store.SetInstance) member {
	m := member{Name: r.Name, Ordinal: r.Ordinal, Version: r.Version, Phase: r.Phase, CreatedAt: r.CreatedAt, RepairedAt: r.RepairedAt}
	if r.Phase == store.PhaseCreating {
		m.Health = api.HealthCreating
	}
	if r.Protect != "" {
		m.Protect = strings.Split(r.Protect, ",")
	}
	return m
}

// pass is one reconcile of the set. done is true when the set is gone.
func (c *controller) pass(ctx context.Context) (done bool, err error) {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	row, sp, err := c.s.row(ctx, c.name)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	rows, err := c.s.cfg.Store.SetInstances(ctx, c.name)
	if err != nil {
		return false, err
	}
	vms, err := c.s.cfg.VMs.List(ctx)
	if err != nil {
		return false, err
	}
	byName := map[string]*api.VM{}
	for i := range vms {
		byName[vms[i].Name] = &vms[i]
	}
	c.cleanOrphans(ctx, rows, vms)
	c.ensureProber(sp.Probe)
	members := c.view(ctx, rows, byName, sp)
	c.mu.Lock()
	c.members = members
	c.mu.Unlock()
	c.applyLB(ctx, sp, members)
	c.recordConnections(sp, members)

	if row.Phase == store.PhaseDeleting {
		return c.teardown(ctx, members)
	}
	c.resume(ctx, members)
	if c.upgrading() {
		return false, nil // the upgrade makes and removes instances itself
	}
	c.autoscale(ctx, sp, members)
	c.converge(ctx, sp, members)
	c.repair(ctx, sp, members)
	c.dropUnusedModels(ctx, sp, members)
	return false, nil
}

// cleanOrphans deletes VMs the set owns that have no instance row (a crash
// between a row's removal and its VM's): the row is the claim.
func (c *controller) cleanOrphans(ctx context.Context, rows []store.SetInstance, vms []api.VM) {
	for _, v := range vms {
		if v.Set != c.name || slices.ContainsFunc(rows, func(r store.SetInstance) bool { return r.Name == v.Name }) {
			continue
		}
		if c.isBusy(v.Name) {
			continue
		}
		c.start(v.Name, busyDelete, func(ctx context.Context) {
			err := c.deleteVM(ctx, v.Name)
			c.report(ctx, api.Activity{Trigger: api.TriggerController, Action: "cleanup", Instance: v.Name,
				Reason: "VM of the set without an instance record (left by an interrupted operation)"}, time.Now(), err)
		})
	}
}

func (c *controller) isBusy(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy[name] != ""
}

// start runs fn on a goroutine as work of kind on instance name; it does
// nothing when the instance is busy already.
func (c *controller) start(name, kind string, fn func(ctx context.Context)) bool {
	if !c.reserve(name, kind) {
		return false
	}
	c.launch(name, fn)
	return true
}

// reserve marks instance name busy with kind, unless it is busy already.
func (c *controller) reserve(name, kind string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy[name] != "" {
		return false
	}
	c.busy[name] = kind
	return true
}

// launch runs fn on a goroutine for reserved instance name, which is idle
// again when fn returns.
func (c *controller) launch(name string, fn func(ctx context.Context)) {
	c.work.Add(1)
	go func() {
		defer c.work.Done()
		defer func() {
			c.mu.Lock()
			delete(c.busy, name)
			c.mu.Unlock()
			c.wake()
		}()
		fn(c.ctx)
	}()
}

// report records the outcome of work that began at start.
func (c *controller) report(ctx context.Context, a api.Activity, start time.Time, err error) {
	a.Duration = api.Duration(time.Since(start).Round(time.Millisecond))
	a.Result = api.ResultSucceeded
	if err != nil {
		a.Result = api.ResultFailed
		if ctx.Err() != nil {
			a.Result = api.ResultSkipped
			a.Reason += " (interrupted: galed is stopping)"
		}
		a.Reason += ": " + err.Error()
	}
	c.s.record(context.WithoutCancel(ctx), c.name, a)
}

// ensureProber runs a prober for the set's probe spec (none when empty).
func (c *controller) ensureProber(spec string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if spec == c.probeSpec && (c.prober != nil || spec == "") {
		return
	}
	if c.prober != nil {
		c.prober.Stop()
		c.prober = nil
	}
	c.probeSpec = spec
	if spec == "" {
		return
	}
	ps, err := probe.Parse(spec)
	if err != nil {
		c.s.log.WithField("set", c.name).WithError(err).Error("bad probe in store")
		return
	}
	opts := []probe.Option{}
	if c.s.cfg.Checker != nil {
		check := c.s.cfg.Checker
		opts = append(opts, probe.WithChecker(func(ctx context.Context, addr netip.Addr) error { return check(ctx, ps, addr) }))
	}
	c.prober = probe.NewProber(ps, func(string, probe.Result) { c.wake() }, opts...)
}

// view builds this pass's members: rows joined with VMs and probe results.
// Probe targets are updated to the running instances with an address.
func (c *controller) view(ctx context.Context, rows []store.SetInstance, vms map[string]*api.VM, sp spec) []member {
	c.mu.Lock()
	prober := c.prober
	c.mu.Unlock()
	var results map[string]probe.Result
	if prober != nil {
		results = prober.Results()
	}
	targets := map[string]netip.Addr{}
	out := make([]member, 0, len(rows))
	now := time.Now()
	for _, r := range rows {
		m := memberOf(r)
		m.VM = vms[r.Name]
		c.mu.Lock()
		m.Busy = c.busy[r.Name]
		draining := c.draining[r.Name]
		c.mu.Unlock()
		if m.VM != nil && len(m.VM.Addresses) > 0 {
			m.Address = m.VM.Addresses[0]
		}
		switch {
		case r.Phase == store.PhaseCreating || m.Busy == busyCreate:
			m.Health = api.HealthCreating
		case draining || r.Phase == phaseDeleting:
			m.Health, m.Detail = api.HealthDraining, "leaving the set"
		case m.VM == nil:
			m.Health, m.Detail = api.HealthUnhealthy, "its VM is gone"
		case m.VM.State != api.StateRunning:
			m.Health, m.Detail = api.HealthUnhealthy, "its VM is "+m.VM.State
		case m.Busy == busyRepair:
			m.Health, m.Detail = api.HealthUnknown, "being repaired"
		case prober == nil:
			m.Health = api.HealthHealthy
		default:
			if a, err := netip.ParseAddr(m.Address); err == nil {
				targets[m.Name] = a
			}
			res, ok := results[m.Name]
			switch {
			case !ok || res.Status == probe.StatusUnknown || res.Addr.String() != m.Address:
				// A result for another address is of an earlier instance of the name.
				m.Health, m.Detail = api.HealthUnknown, "not probed enough yet"
			case res.Status == probe.StatusHealthy:
				m.Health = api.HealthHealthy
			default:
				m.Health, m.Detail = api.HealthUnhealthy, "probe: "+res.LastError
			}
		}
		c.trackHealth(ctx, m, now)
		out = append(out, m)
	}
	if prober != nil {
		prober.SetTargets(targets)
	}
	c.mu.Lock()
	for name := range c.unhealthy { // forget instances that are gone
		if !slices.ContainsFunc(out, func(m member) bool { return m.Name == name }) {
			delete(c.unhealthy, name)
		}
	}
	c.mu.Unlock()
	return out
}

// trackHealth records transitions to and from unhealthy in the activity log.
func (c *controller) trackHealth(ctx context.Context, m member, now time.Time) {
	c.mu.Lock()
	_, was := c.unhealthy[m.Name]
	is := m.Health == api.HealthUnhealthy
	if is && !was {
		c.unhealthy[m.Name] = now
	} else if !is && was && m.Health == api.HealthHealthy {
		delete(c.unhealthy, m.Name)
	}
	c.mu.Unlock()
	if is && !was {
		trigger := api.TriggerProbe
		if m.VM == nil || m.VM.State != api.StateRunning {
			trigger = api.TriggerEvent
		}
		c.s.record(ctx, c.name, api.Activity{Trigger: trigger, Action: "health", Instance: m.Name, Result: api.HealthUnhealthy, Reason: m.Detail})
	} else if !is && was && m.Health == api.HealthHealthy {
		c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerProbe, Action: "health", Instance: m.Name, Result: api.HealthHealthy, Reason: "healthy again"})
	}
}

// applyLB puts the healthy members in the load balancer's map when it
// differs from the last one applied.
func (c *controller) applyLB(ctx context.Context, sp spec, members []member) {
	if len(sp.LB) == 0 || c.s.cfg.Balancer == nil {
		return
	}
	var bs []Backend
	var names []string
	for _, m := range backends(members) {
		a, err := netip.ParseAddr(m.Address)
		if err != nil {
			continue
		}
		bs = append(bs, Backend{Name: m.Name, Addr: a})
		names = append(names, m.Name+"="+m.Address)
	}
	models, _ := c.s.models(ctx, c.name)
	network := models[sp.Version].Network
	fp := network + "|" + string(mustJSON(sp.LB)) + "|" + strings.Join(names, ",")
	c.mu.Lock()
	same := fp == c.applied
	c.mu.Unlock()
	if same {
		return
	}
	start := time.Now()
	err := c.s.cfg.Balancer.Apply(ctx, c.name, network, sp.LB, bs)
	c.mu.Lock()
	repeated := err != nil && err.Error() == c.applyErr
	if err == nil {
		c.applied, c.applyErr = fp, ""
	} else {
		c.applyErr = err.Error()
	}
	c.mu.Unlock()
	if repeated {
		return // logged once; retried every pass
	}
	a := api.Activity{Trigger: api.TriggerController, Action: "lb-update",
		Reason: fmt.Sprintf("backends: %d healthy [%s]", len(bs), strings.Join(names, " ")),
		Values: map[string]string{"backends": strconv.Itoa(len(bs))}}
	c.report(ctx, a, start, err)
}

// resume finishes work an earlier galed left half done: instances whose
// create or delete was interrupted.
func (c *controller) resume(ctx context.Context, members []member) {
	for _, m := range members {
		if m.Busy != "" {
			continue
		}
		switch m.Phase {
		case store.PhaseCreating:
			m := m
			if m.VM != nil && m.VM.State == api.StateRunning && m.VM.Operation == "" && len(m.VM.Addresses) > 0 {
				c.start(m.Name, busyCreate, func(ctx context.Context) {
					err := c.finishCreate(ctx, m.Name, m.Version)
					c.report(ctx, api.Activity{Trigger: api.TriggerController, Action: "adopt", Instance: m.Name,
						Reason: "instance made before galed restarted"}, time.Now(), err)
				})
			} else if m.VM == nil || m.VM.State == api.StateFailed || m.VM.State == api.StateBroken || m.VM.State == api.StateStopped {
				c.start(m.Name, busyDelete, func(ctx context.Context) {
					err := c.removeInstance(ctx, m.Name, 0, 0)
					c.report(ctx, api.Activity{Trigger: api.TriggerController, Action: "undo-create", Instance: m.Name,
						Reason: "create interrupted (galed restarted or the VM failed)"}, time.Now(), err)
				})
			}
		case phaseDeleting:
			m := m
			c.start(m.Name, busyDelete, func(ctx context.Context) {
				err := c.removeInstance(ctx, m.Name, 0, 0)
				c.report(ctx, api.Activity{Trigger: api.TriggerController, Action: "delete", Instance: m.Name,
					Reason: "finishing a delete galed was interrupted in"}, time.Now(), err)
			})
		}
	}
}

// converge creates missing instances (bounded, backing off after failures)
// and removes extras by the scale-in policy.
func (c *controller) converge(ctx context.Context, sp spec, members []member) {
	active := 0
	creating := 0
	for _, m := range members {
		if m.active() {
			active++
		}
		if m.Health == api.HealthCreating {
			creating++
		}
	}
	switch {
	case active < sp.Capacity:
		c.mu.Lock()
		wait := time.Until(c.backoff)
		c.mu.Unlock()
		if wait > 0 {
			return
		}
		n := min(sp.Capacity-active, c.s.cfg.Parallelism-creating)
		if n <= 0 {
			return
		}
		reason := fmt.Sprintf("capacity %d, %d instances", sp.Capacity, active)
		for _, ord := range c.ordinals(ctx, members, n) {
			c.createInstance(ctx, ord, sp.Version, api.TriggerController, reason, nil)
		}
	case active > sp.Capacity:
		victims := scaleInVictims(members, active-sp.Capacity, sp.Policy.ScaleIn)
		if len(victims) < active-sp.Capacity {
			c.refuse(ctx, "scale-in", fmt.Sprintf("capacity %d, %d instances, but only %d may be removed (the rest are protected)", sp.Capacity, active, len(victims)))
		}
		for _, m := range victims {
			c.deleteInstance(ctx, m, sp, api.TriggerController,
				fmt.Sprintf("scale in (policy %s): capacity %d, %d instances", sp.Policy.ScaleIn, sp.Capacity, active))
		}
	}
}

// refuse records a refusal once until a different one happens.
func (c *controller) refuse(ctx context.Context, action, reason string) {
	c.mu.Lock()
	same := c.refused == action+reason
	c.refused = action + reason
	c.mu.Unlock()
	if !same {
		c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerController, Action: action, Result: api.ResultRefused, Reason: reason})
	}
}

// ordinals returns n free ordinals whose instance names no other VM, and
// no instance recorded since members were read, uses.
func (c *controller) ordinals(ctx context.Context, members []member, n int) []int {
	reserved := map[int]bool{}
	if rows, err := c.s.cfg.Store.SetInstances(ctx, c.name); err == nil {
		for _, r := range rows {
			reserved[r.Ordinal] = true
		}
	}
	if vms, err := c.s.cfg.VMs.List(ctx); err == nil {
		for _, v := range vms {
			if rest, ok := strings.CutPrefix(v.Name, c.name+"-"); ok {
				if i, err := strconv.Atoi(rest); err == nil {
					reserved[i] = true
				}
			}
		}
	}
	return freeOrdinals(members, reserved, n)
}

// createInstance records the instance's row, then provisions its VM on a
// goroutine; done, when not nil, gets the outcome.
func (c *controller) createInstance(ctx context.Context, ordinal, version int, trigger, reason string, done chan<- error) {
	name := instanceName(c.name, ordinal)
	// Busy before the row exists: a pass never takes the new row for a
	// create that galed's restart interrupted.
	if !c.reserve(name, busyCreate) {
		if done != nil {
			done <- fmt.Errorf("instance %s is busy", name)
		}
		return
	}
	row := store.SetInstance{Name: name, Set: c.name, Ordinal: ordinal, Version: version, Phase: store.PhaseCreating, CreatedAt: time.Now().UTC()}
	if err := c.s.cfg.Store.InsertSetInstance(ctx, row); err != nil {
		c.mu.Lock()
		delete(c.busy, name)
		c.mu.Unlock()
		c.s.log.WithField("set", c.name).WithError(err).Warn("record instance")
		if done != nil {
			done <- err
		}
		return
	}
	c.launch(name, func(ctx context.Context) {
		start := time.Now()
		err := c.provision(ctx, name, version)
		c.mu.Lock()
		if err != nil {
			c.failures++
			c.backoff = time.Now().Add(min(time.Duration(1<<min(c.failures, 6))*5*time.Second, 2*time.Minute))
		} else {
			c.failures, c.backoff = 0, time.Time{}
		}
		c.mu.Unlock()
		c.report(ctx, api.Activity{Trigger: trigger, Action: "create", Instance: name, Reason: reason,
			Values: map[string]string{"version": strconv.Itoa(version)}}, start, err)
		if done != nil {
			done <- err
		}
	})
}

// provision makes instance name's VM from model version and finishes the
// instance; on failure it removes the VM and the row.
func (c *controller) provision(ctx context.Context, name string, version int) error {
	models, err := c.s.models(ctx, c.name)
	if err != nil {
		return err
	}
	m, ok := models[version]
	if !ok {
		return fmt.Errorf("model version %d is gone", version)
	}
	if _, err := c.s.cfg.VMs.Provision(ctx, vmRequest(name, m), vm.OwnerSet(c.name)); err != nil {
		if rerr := c.removeInstance(context.WithoutCancel(ctx), name, 0, 0); rerr != nil {
			c.s.log.WithField("instance", name).WithError(rerr).Warn("remove failed instance")
		}
		return err
	}
	return c.finishCreate(ctx, name, version)
}

// MetadataPath is where an instance finds its set, name and model version
// (JSON) inside the guest.
const MetadataPath = "/var/lib/gale/instance.json"

// TerminateHook is the guest program a set with a terminate notice runs
// before an instance is deleted.
const TerminateHook = "/var/lib/gale/hooks/terminate"

// finishCreate writes the instance's metadata into the guest and marks the
// instance made.
func (c *controller) finishCreate(ctx context.Context, name string, version int) error {
	meta := mustJSON(map[string]any{"set": c.name, "instance": name, "version": version})
	res, err := c.s.cfg.VMs.Exec(ctx, name, api.ExecRequest{
		Command: []string{"/bin/sh", "-c", "mkdir -p /var/lib/gale && cat > " + MetadataPath + ".tmp && mv " + MetadataPath + ".tmp " + MetadataPath},
		Stdin:   meta, Timeout: api.Duration(30 * time.Second),
	})
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	if err != nil {
		c.s.log.WithField("instance", name).WithError(err).Warn("write instance metadata")
	}
	rows, err := c.s.cfg.Store.SetInstances(ctx, c.name)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if r.Name == name {
			r.Phase = store.PhaseNone
			return c.s.cfg.Store.PutSetInstance(ctx, r)
		}
	}
	return fmt.Errorf("instance %s: record gone", name)
}

// deleteInstance takes m out of the load balancer at once and deletes it
// after the drain period (and the terminate notice) on a goroutine.
func (c *controller) deleteInstance(ctx context.Context, m member, sp spec, trigger, reason string) {
	if !c.reserve(m.Name, busyDelete) {
		return
	}
	c.mu.Lock()
	c.draining[m.Name] = true
	c.mu.Unlock()
	drain := time.Duration(sp.Policy.Drain)
	if m.Health != api.HealthHealthy || len(sp.LB) == 0 || c.s.cfg.Balancer == nil {
		drain = 0 // it carried no traffic
	}
	c.markPhase(ctx, m.Name, phaseDeleting)
	c.applyLB(ctx, sp, c.withDraining(m.Name))
	c.launch(m.Name, func(ctx context.Context) {
		start := time.Now()
		waited := c.drain(ctx, m, sp, drain)
		err := c.removeInstance(ctx, m.Name, 0, time.Duration(sp.Policy.TerminateNotice))
		c.report(ctx, api.Activity{Trigger: trigger, Action: "delete", Instance: m.Name, Reason: reason,
			Values: map[string]string{"drain": waited.Round(time.Millisecond).String(), "drain_timeout": drain.String()}}, start, err)
	})
}

// drain waits until the load balancer has no open connection to m on any
// rule's backend port, or timeout passes, and returns how long it waited.
func (c *controller) drain(ctx context.Context, m member, sp spec, timeout time.Duration) time.Duration {
	start := time.Now()
	if timeout <= 0 {
		return 0
	}
	addr, err := netip.ParseAddr(m.Address)
	if err != nil {
		return 0
	}
	deadline := start.Add(timeout)
	for {
		open := 0
		for _, r := range sp.LB {
			n, err := c.s.cfg.Balancer.Connections(addr, r.BackPort)
			if err != nil {
				n = 1 // unknown: wait for the timeout
			}
			open += n
		}
		if open == 0 || time.Now().After(deadline) {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-time.After(min(500*time.Millisecond, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// withDraining returns the last members with name marked draining.
func (c *controller) withDraining(name string) []member {
	ms := c.snapshot()
	for i := range ms {
		if ms[i].Name == name {
			ms[i].Health = api.HealthDraining
		}
	}
	return ms
}

func (c *controller) markPhase(ctx context.Context, name, phase string) {
	rows, err := c.s.cfg.Store.SetInstances(ctx, c.name)
	if err != nil {
		return
	}
	for _, r := range rows {
		if r.Name == name {
			r.Phase = phase
			if err := c.s.cfg.Store.PutSetInstance(ctx, r); err != nil {
				c.s.log.WithField("instance", name).WithError(err).Warn("mark instance")
			}
		}
	}
}

// removeInstance waits drain, runs the terminate hook for at most notice,
// deletes the VM and then the instance's row.
func (c *controller) removeInstance(ctx context.Context, name string, drain, notice time.Duration) error {
	defer func() {
		c.mu.Lock()
		delete(c.draining, name)
		c.mu.Unlock()
	}()
	if drain > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(drain):
		}
	}
	if notice > 0 {
		c.terminateNotice(ctx, name, notice)
	}
	if err := c.deleteVM(ctx, name); err != nil {
		return err
	}
	return c.s.cfg.Store.DeleteSetInstance(ctx, name)
}

// terminateNotice runs the guest's terminate hook, if it has one, for at
// most notice.
func (c *controller) terminateNotice(ctx context.Context, name string, notice time.Duration) {
	script := "if [ -x " + TerminateHook + " ]; then exec " + TerminateHook + "; fi"
	res, err := c.s.cfg.VMs.Exec(ctx, name, api.ExecRequest{Command: []string{"/bin/sh", "-c", script}, Timeout: api.Duration(notice)})
	detail := "hook ran"
	if err != nil {
		detail = "hook: " + err.Error()
	} else if res.ExitCode != 0 {
		detail = fmt.Sprintf("hook exited %d", res.ExitCode)
	}
	c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerPolicy, Action: "terminate-notice", Instance: name,
		Result: api.ResultSucceeded, Reason: detail, Values: map[string]string{"notice": notice.String()}})
}

// deleteVM deletes the instance's VM and waits for it; a VM already gone
// is not an error.
func (c *controller) deleteVM(ctx context.Context, name string) error {
	op, err := c.s.cfg.VMs.Delete(ctx, name, vm.DeleteOptions{Owner: vm.OwnerSet(c.name)})
	if errors.Is(err, vm.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return c.wait(ctx, op.ID)
}

// wait follows operation id to its end and returns its error.
func (c *controller) wait(ctx context.Context, id string) error {
	if err := c.s.cfg.VMs.FollowOperation(ctx, id, func(api.Event) error { return nil }); err != nil {
		return err
	}
	op, err := c.s.cfg.VMs.Operation(ctx, id)
	if err != nil {
		return err
	}
	if op.Status != api.OpSucceeded {
		return fmt.Errorf("operation %s %s: %s", op.Kind, op.Status, op.Error)
	}
	return nil
}

// repair starts repairs of unhealthy instances past their grace period, a
// bounded share at a time, unless most of the set is unhealthy.
func (c *controller) repair(ctx context.Context, sp spec, members []member) {
	if sp.Policy.Repair == api.RepairNone || sp.Policy.Repair == "" {
		return
	}
	running := 0
	for _, m := range members {
		if m.Busy == busyRepair {
			running++
		}
	}
	todo, suspended := repairPlan(members, time.Now(), time.Duration(sp.Policy.Grace), running, maxRepairs(sp.Capacity))
	c.mu.Lock()
	was := c.suspended
	c.suspended = suspended
	c.mu.Unlock()
	if suspended && !was {
		c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerPolicy, Action: "repair", Result: api.ResultSkipped,
			Reason: "repairs suspended: most of the set is unhealthy at once (an outage is not fixed by replacing everything)"})
	} else if !suspended && was {
		c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerPolicy, Action: "repair", Result: api.ResultSucceeded, Reason: "repairs resumed"})
	}
	for _, m := range todo {
		c.repairInstance(ctx, m, sp, sp.Policy.Repair, api.TriggerPolicy, "unhealthy past the grace period: "+m.Detail)
	}
}

// repairInstance restarts, reimages or replaces m.
func (c *controller) repairInstance(ctx context.Context, m member, sp spec, mode, trigger, reason string) {
	if mode == api.RepairReplace {
		c.deleteInstance(ctx, m, sp, trigger, "replace: "+reason)
		return // converge makes the replacement
	}
	c.start(m.Name, busyRepair, func(ctx context.Context) {
		start := time.Now()
		var err error
		switch mode {
		case api.RepairRestart:
			err = c.restart(ctx, m.Name)
		case api.RepairReimage:
			err = c.reimage(ctx, m.Name, m.Version)
		}
		c.touchRepaired(ctx, m.Name)
		c.report(ctx, api.Activity{Trigger: trigger, Action: mode, Instance: m.Name, Reason: reason}, start, err)
	})
}

func (c *controller) restart(ctx context.Context, name string) error {
	op, err := c.s.cfg.VMs.Restart(ctx, name, api.StopVMRequest{Force: true})
	if err != nil {
		return err
	}
	return c.wait(ctx, op.ID)
}

// reimage makes the instance anew from model version under its own name.
func (c *controller) reimage(ctx context.Context, name string, version int) error {
	c.markPhase(ctx, name, store.PhaseCreating)
	if err := c.deleteVM(ctx, name); err != nil {
		return err
	}
	models, err := c.s.models(ctx, c.name)
	if err != nil {
		return err
	}
	if _, err := c.s.cfg.VMs.Provision(ctx, vmRequest(name, models[version]), vm.OwnerSet(c.name)); err != nil {
		return err
	}
	return c.finishCreate(ctx, name, version)
}

func (c *controller) touchRepaired(ctx context.Context, name string) {
	rows, err := c.s.cfg.Store.SetInstances(ctx, c.name)
	if err != nil {
		return
	}
	for _, r := range rows {
		if r.Name == name {
			r.RepairedAt = time.Now().UTC()
			_ = c.s.cfg.Store.PutSetInstance(ctx, r)
		}
	}
}

// teardown deletes every instance of a set being deleted, then its load
// balancer and rows.
func (c *controller) teardown(ctx context.Context, members []member) (bool, error) {
	c.cancelUpgrade()
	left := 0
	for _, m := range members {
		left++
		if m.Busy == "" {
			m := m
			c.mu.Lock()
			c.draining[m.Name] = true
			c.mu.Unlock()
			c.start(m.Name, busyDelete, func(ctx context.Context) {
				start := time.Now()
				err := c.removeInstance(ctx, m.Name, 0, 0)
				c.report(ctx, api.Activity{Trigger: api.TriggerUser, Action: "delete", Instance: m.Name, Reason: "set delete"}, start, err)
			})
		}
	}
	vms, err := c.s.cfg.VMs.List(ctx)
	if err != nil {
		return false, err
	}
	for _, v := range vms {
		if v.Set == c.name {
			left++
		}
	}
	if left > 0 {
		return false, nil
	}
	c.work.Wait()
	if c.s.cfg.Balancer != nil {
		if err := c.s.cfg.Balancer.Delete(c.name); err != nil {
			return false, fmt.Errorf("remove load balancer: %w", err)
		}
	}
	if err := c.s.cfg.Store.DeleteSet(ctx, c.name); err != nil {
		return false, err
	}
	c.s.cfg.Events.Publish(api.BusEvent{Kind: "set", Name: c.name, At: time.Now().UTC(),
		Activity: &api.Activity{ID: 1 << 62, Set: c.name, At: time.Now().UTC(), Trigger: api.TriggerUser, Action: "delete", Result: api.ResultSucceeded, Reason: "set deleted"}})
	c.s.log.WithField("set", c.name).Info("set deleted")
	return true, nil
}

// dropUnusedModels removes model versions older than the latest that no
// instance uses any more.
func (c *controller) dropUnusedModels(ctx context.Context, sp spec, members []member) {
	models, err := c.s.cfg.Store.SetModels(ctx, c.name)
	if err != nil {
		return
	}
	for _, m := range models {
		if m.Version >= sp.Version || slices.ContainsFunc(members, func(x member) bool { return x.Version == m.Version }) {
			continue
		}
		if err := c.s.cfg.Store.DeleteSetModel(ctx, c.name, m.Version); err != nil {
			c.s.log.WithField("set", c.name).WithError(err).Warn("drop unused model")
		}
	}
}
