package scaleset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/store"
)

// Update makes a new model version from the latest one with req's changes,
// after proving it: the new model's parent is built (so a model whose
// cloud-init fails is refused here, not during an upgrade). A set whose
// policy is automatic or rolling then starts upgrading. progress gets the
// parent build's stages.
func (s *Service) Update(ctx context.Context, name string, req api.UpdateSetRequest, progress func(string)) (api.ScaleSet, error) {
	sp, models, err := s.live(ctx, name)
	if err != nil {
		return api.ScaleSet{}, err
	}
	m := models[sp.Version]
	changed := false
	if req.Image != "" && req.Image != m.Image {
		m.Image, changed = req.Image, true
	}
	if req.CPUs != 0 && req.CPUs != m.CPUs {
		m.CPUs, changed = req.CPUs, true
	}
	if req.MemoryMiB != 0 && req.MemoryMiB != m.MemoryMiB {
		m.MemoryMiB, changed = req.MemoryMiB, true
	}
	if req.UserData != nil && string(req.UserData) != string(m.UserData) {
		m.UserData, changed = req.UserData, true
	}
	var pol *api.SetPolicy
	if req.Policy != nil {
		p, err := checkPolicy(*req.Policy)
		if err != nil {
			return api.ScaleSet{}, err
		}
		pol = &p
	}
	if !changed && pol == nil {
		return api.ScaleSet{}, fmt.Errorf("%w: nothing to change: give --image, --cpus, --memory, --cloud-init or a policy", ErrInvalid)
	}
	if changed {
		if m, err = s.checkModel(ctx, name, m); err != nil {
			return api.ScaleSet{}, err
		}
		start := time.Now()
		check := vmRequest(name+"-model-check", m)
		if err := s.cfg.VMs.PrepareModel(ctx, check, progress); err != nil {
			s.record(ctx, name, api.Activity{Trigger: api.TriggerUser, Action: "update", Result: api.ResultRefused,
				Duration: api.Duration(time.Since(start).Round(time.Millisecond)), Reason: "the new model does not come up: " + err.Error()})
			return api.ScaleSet{}, fmt.Errorf("%w: the new model does not come up, nothing changed: %w", ErrInvalid, err)
		}
	}
	version := sp.Version
	if _, err := s.cfg.Store.UpdateSet(ctx, name, func(r *store.Set) (*store.SetModel, error) {
		cur, err := decodeSpec(*r)
		if err != nil {
			return nil, err
		}
		if pol != nil {
			cur.Policy = *pol
		}
		var model *store.SetModel
		if changed {
			cur.Version++
			version = cur.Version
			model = &store.SetModel{Set: name, Version: cur.Version, Model: mustJSON(m), CreatedAt: time.Now().UTC()}
		}
		r.Spec = mustJSON(cur)
		return model, nil
	}); err != nil {
		return api.ScaleSet{}, err
	}
	s.record(ctx, name, api.Activity{Trigger: api.TriggerUser, Action: "update", Result: api.ResultSucceeded,
		Reason: fmt.Sprintf("model version %d", version), Values: map[string]string{"version": strconv.Itoa(version)}})
	_, sp, err = s.row(ctx, name)
	if err != nil {
		return api.ScaleSet{}, err
	}
	if changed && sp.Policy.Upgrade.Mode != api.UpgradeManual {
		if _, err := s.Upgrade(ctx, name, api.UpgradeRequest{}); err != nil {
			return api.ScaleSet{}, err
		}
	}
	return s.Get(ctx, name)
}

// upgradeRun is a rolling upgrade in progress.
type upgradeRun struct {
	policy    api.UpgradePolicy
	to        int
	cancelled chan struct{}
}

func (c *controller) cancelUpgrade() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.upgrade != nil {
		select {
		case <-c.upgrade.cancelled:
		default:
			close(c.upgrade.cancelled)
		}
	}
}

// Upgrade starts moving the set's instances to the latest model version by
// req's policy (zero fields: the set's), or with req.Cancel stops the
// upgrade in progress after its current batch.
func (s *Service) Upgrade(ctx context.Context, name string, req api.UpgradeRequest) (api.ScaleSet, error) {
	r, sp, err := s.row(ctx, name)
	if err != nil {
		return api.ScaleSet{}, err
	}
	c := s.controllerFor(name)
	if c == nil {
		return api.ScaleSet{}, fmt.Errorf("%w: galed is stopping", ErrConflict)
	}
	if req.Cancel {
		if !c.upgrading() {
			return api.ScaleSet{}, fmt.Errorf("%w: set %q has no upgrade in progress", ErrConflict, name)
		}
		c.cancelUpgrade()
		s.record(ctx, name, api.Activity{Trigger: api.TriggerUser, Action: "upgrade", Result: api.ResultStarted, Reason: "cancel asked: stopping after the current batch"})
		return s.Get(ctx, name)
	}
	if r.Phase == store.PhaseDeleting {
		return api.ScaleSet{}, fmt.Errorf("%w: set %q is being deleted", ErrConflict, name)
	}
	pol := sp.Policy.Upgrade
	if req.Policy.Batch != "" {
		pol.Batch = req.Policy.Batch
	}
	if req.Policy.MaxUnhealthy != 0 {
		pol.MaxUnhealthy = req.Policy.MaxUnhealthy
	}
	if req.Policy.MaxUnhealthyUpgraded != 0 {
		pol.MaxUnhealthyUpgraded = req.Policy.MaxUnhealthyUpgraded
	}
	if req.Policy.Pause != 0 {
		pol.Pause = req.Policy.Pause
	}
	if req.Policy.Surge != 0 {
		pol.Surge = req.Policy.Surge
	}
	if pol.Mode == api.UpgradeAutomatic {
		pol.Batch = "100%"
	}
	if pol, err = checkUpgrade(pol); err != nil {
		return api.ScaleSet{}, err
	}
	run := &upgradeRun{policy: pol, to: sp.Version, cancelled: make(chan struct{})}
	c.mu.Lock()
	if c.upgrade != nil {
		c.mu.Unlock()
		return api.ScaleSet{}, fmt.Errorf("%w: set %q is upgrading already (cancel it with `gale set upgrade %s --cancel`)", ErrConflict, name, name)
	}
	c.upgrade = run
	c.mu.Unlock()
	c.work.Add(1)
	go func() {
		defer c.work.Done()
		c.runUpgrade(c.ctx, run)
		c.mu.Lock()
		c.upgrade = nil
		c.mu.Unlock()
		c.wake()
	}()
	return s.Get(ctx, name)
}

// saveUpgrade records the upgrade's progress in the set's spec.
func (c *controller) saveUpgrade(ctx context.Context, st api.UpgradeStatus) {
	_, err := c.s.cfg.Store.UpdateSet(context.WithoutCancel(ctx), c.name, func(r *store.Set) (*store.SetModel, error) {
		cur, err := decodeSpec(*r)
		if err != nil {
			return nil, err
		}
		cur.Upgrade = &st
		r.Spec = mustJSON(cur)
		return nil, nil
	})
	if err != nil {
		c.s.log.WithField("set", c.name).WithError(err).Warn("record upgrade progress")
	}
}

// runUpgrade replaces outdated instances batch by batch: each batch's new
// instances are made (before the old ones go when the policy allows a
// surge), must all become healthy, and only then do the old ones drain
// and go. A batch whose new instances do not become healthy (beyond the
// policy's share) is rolled back and the upgrade stops; the set keeps
// serving from the instances it had.
func (c *controller) runUpgrade(ctx context.Context, run *upgradeRun) {
	st := api.UpgradeStatus{To: run.to, State: "running", StartedAt: time.Now().UTC()}
	begin := time.Now()
	c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerUser, Action: "upgrade", Result: api.ResultStarted,
		Reason: fmt.Sprintf("to version %d, batch %s, surge %d, pause %s", run.to, run.policy.Batch, run.policy.Surge, time.Duration(run.policy.Pause))})
	finish := func(state, errText string) {
		st.State, st.Error = state, errText
		c.saveUpgrade(ctx, st)
		result := api.ResultSucceeded
		if state != "done" {
			result = api.ResultFailed
			if state == "cancelled" {
				result = api.ResultSkipped
			}
		}
		c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerUser, Action: "upgrade", Result: result,
			Duration: api.Duration(time.Since(begin).Round(time.Millisecond)),
			Reason:   strings.TrimSpace(fmt.Sprintf("%s after %d batches, %d instances upgraded %s", state, st.Batch, st.Done, errText))})
	}
	for {
		select {
		case <-run.cancelled:
			finish("cancelled", "")
			return
		case <-ctx.Done():
			return
		default:
		}
		_, sp, err := c.s.row(ctx, c.name)
		if err != nil {
			finish("failed", err.Error())
			return
		}
		members := c.snapshot()
		todo := outdated(members, run.to)
		st.Remaining = len(todo)
		c.saveUpgrade(ctx, st)
		if len(todo) == 0 {
			finish("done", "")
			return
		}
		if err := c.waitHealthyShare(ctx, run, sp); err != nil {
			finish("failed", err.Error())
			return
		}
		size, _ := batchSize(run.policy.Batch, sp.Capacity)
		if run.policy.Surge > 0 {
			size = min(size, run.policy.Surge)
		}
		batch := todo[:min(size, len(todo))]
		if err := c.upgradeBatch(ctx, run, sp, batch); err != nil {
			finish("failed", err.Error())
			return
		}
		st.Batch++
		st.Done += len(batch)
		if run.policy.Pause > 0 {
			select {
			case <-time.After(time.Duration(run.policy.Pause)):
			case <-ctx.Done():
				return
			case <-run.cancelled:
			}
		}
	}
}

// waitHealthyShare waits (up to the healthy timeout) until the set's
// unhealthy share is within the policy's maximum before a batch.
func (c *controller) waitHealthyShare(ctx context.Context, run *upgradeRun, sp spec) error {
	deadline := time.Now().Add(c.s.cfg.HealthyTimeout)
	for {
		members := c.snapshot()
		active, bad := 0, 0
		for _, m := range members {
			if m.active() {
				active++
				if m.Health != api.HealthHealthy {
					bad++
				}
			}
		}
		if active == 0 || bad*100 <= run.policy.MaxUnhealthy*active {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d instances unhealthy, over the policy's %d%%", bad, active, run.policy.MaxUnhealthy)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// upgradeBatch replaces batch with instances of run.to. With a surge, the
// new ones come first and the old ones go after the new are healthy;
// without, the old ones go first. On a breach the new instances are
// removed (and, without a surge, the old version is made again).
func (c *controller) upgradeBatch(ctx context.Context, run *upgradeRun, sp spec, batch []member) error {
	names := make([]string, len(batch))
	for i, m := range batch {
		names[i] = m.Name
	}
	surge := run.policy.Surge > 0
	reason := fmt.Sprintf("upgrade batch: %s to version %d", strings.Join(names, " "), run.to)
	if !surge {
		if err := c.removeAll(ctx, sp, batch, reason); err != nil {
			return err
		}
	}
	made, err := c.makeAll(ctx, len(batch), run.to, reason)
	if err == nil {
		err = c.waitHealthy(ctx, made, run.policy.MaxUnhealthyUpgraded, healthyWait(sp, c.s.cfg.HealthyTimeout))
	}
	if err != nil {
		c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerPolicy, Action: "rollback", Result: api.ResultStarted,
			Reason: fmt.Sprintf("batch breached the policy (%v): removing %s", err, strings.Join(made, " "))})
		var ms []member
		for _, m := range c.snapshot() {
			if slices.Contains(made, m.Name) {
				ms = append(ms, m)
			}
		}
		rerr := c.removeAll(ctx, sp, ms, "rollback of "+reason)
		if !surge {
			old, merr := c.makeAll(ctx, len(batch), batch[0].Version, "rollback: the previous version again")
			rerr = errors.Join(rerr, merr)
			_ = old
		}
		c.s.record(ctx, c.name, api.Activity{Trigger: api.TriggerPolicy, Action: "rollback", Result: resultOf(rerr), Reason: "batch rolled back"})
		return fmt.Errorf("batch rolled back: %w", err)
	}
	if surge {
		return c.removeAll(ctx, sp, batch, reason)
	}
	return nil
}

func resultOf(err error) string {
	if err != nil {
		return api.ResultFailed
	}
	return api.ResultSucceeded
}

// makeAll creates n instances of version and waits for their creates.
func (c *controller) makeAll(ctx context.Context, n, version int, reason string) ([]string, error) {
	ords := c.ordinals(ctx, c.snapshot(), n)
	done := make(chan error, n)
	var names []string
	for _, o := range ords {
		names = append(names, instanceName(c.name, o))
		c.createInstance(ctx, o, version, api.TriggerPolicy, reason, done)
	}
	var errs []error
	for range ords {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	c.wake()
	return names, errors.Join(errs...)
}

// removeAll drains and deletes members and waits until they are gone.
func (c *controller) removeAll(ctx context.Context, sp spec, ms []member, reason string) error {
	for _, m := range ms {
		c.deleteInstance(ctx, m, sp, api.TriggerPolicy, reason)
	}
	for {
		rows, err := c.s.cfg.Store.SetInstances(ctx, c.name)
		if err != nil {
			return err
		}
		left := 0
		for _, m := range ms {
			if slices.ContainsFunc(rows, func(r store.SetInstance) bool { return r.Name == m.Name }) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// healthyWait is how long a new instance of an upgrade has to become
// healthy once it is made (and ready): the set's grace period, or def.
func healthyWait(sp spec, def time.Duration) time.Duration {
	if sp.Policy.Grace > 0 {
		return time.Duration(sp.Policy.Grace)
	}
	return def
}

// waitHealthy waits until names are healthy; it fails when more than
// maxBad% of them are not healthy after wait.
func (c *controller) waitHealthy(ctx context.Context, names []string, maxBad int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		c.wake()
		bad, detail := 0, ""
		snap := c.snapshot()
		for _, n := range names {
			i := slices.IndexFunc(snap, func(m member) bool { return m.Name == n })
			if i < 0 { // not seen by a pass yet
				bad++
				detail = n + ": not seen yet"
			} else if m := snap[i]; m.Health != api.HealthHealthy {
				bad++
				detail = m.Name + ": " + m.Health + " " + m.Detail
			}
		}
		if bad == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if bad*100 <= maxBad*len(names) {
				return nil
			}
			return fmt.Errorf("%d of %d new instances not healthy %s after they were made (%s)", bad, len(names), wait, strings.TrimSpace(detail))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// InstanceAction runs a user's action on one instance: restart, reimage,
// delete (the capacity drops by one, as Azure's delete does), protect or
// unprotect.
func (s *Service) InstanceAction(ctx context.Context, set, instance, action string, prot api.ProtectRequest) error {
	_, sp, err := s.row(ctx, set)
	if err != nil {
		return err
	}
	rows, err := s.cfg.Store.SetInstances(ctx, set)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(rows, func(r store.SetInstance) bool { return r.Name == instance })
	if i < 0 {
		return fmt.Errorf("%w: set %q has no instance %q", ErrNotFound, set, instance)
	}
	row := rows[i]
	c := s.controllerFor(set)
	if c == nil {
		return fmt.Errorf("%w: galed is stopping", ErrConflict)
	}
	var m member
	for _, x := range c.snapshot() {
		if x.Name == instance {
			m = x
		}
	}
	if m.Name == "" {
		m = memberOf(row)
	}
	switch action {
	case "protect", "unprotect":
		var ps []string
		if prot.ScaleIn {
			ps = append(ps, api.ProtectScaleIn)
		}
		if prot.SetActions {
			ps = append(ps, api.ProtectSetActions)
		}
		if len(ps) == 0 {
			ps = []string{api.ProtectScaleIn}
		}
		cur := []string{}
		if row.Protect != "" {
			cur = strings.Split(row.Protect, ",")
		}
		for _, p := range ps {
			if action == "protect" && !slices.Contains(cur, p) {
				cur = append(cur, p)
			} else if action == "unprotect" {
				cur = slices.DeleteFunc(cur, func(x string) bool { return x == p })
			}
		}
		slices.Sort(cur)
		row.Protect = strings.Join(cur, ",")
		if err := s.cfg.Store.PutSetInstance(ctx, row); err != nil {
			return err
		}
		s.record(ctx, set, api.Activity{Trigger: api.TriggerUser, Action: action, Instance: instance, Result: api.ResultSucceeded,
			Reason: "protection now: " + strings.Join(cur, ",")})
	case "restart", "reimage":
		if c.isBusy(instance) {
			return fmt.Errorf("%w: instance %q is busy", ErrConflict, instance)
		}
		c.repairInstance(ctx, m, sp, action, api.TriggerUser, action+" asked")
	case "delete":
		c.passMu.Lock()
		defer c.passMu.Unlock()
		if c.isBusy(instance) {
			return fmt.Errorf("%w: instance %q is busy", ErrConflict, instance)
		}
		if _, err := s.cfg.Store.UpdateSet(ctx, set, func(r *store.Set) (*store.SetModel, error) {
			cur, err := decodeSpec(*r)
			if err != nil {
				return nil, err
			}
			cur.Capacity = max(0, cur.Capacity-1)
			sp.Capacity = cur.Capacity
			r.Spec = mustJSON(cur)
			return nil, nil
		}); err != nil {
			return err
		}
		c.deleteInstance(ctx, m, sp, api.TriggerUser, fmt.Sprintf("instance delete asked; capacity now %d", sp.Capacity))
	default:
		return fmt.Errorf("%w: action %q: use restart, reimage, delete, protect or unprotect", ErrInvalid, action)
	}
	c.wake()
	return nil
}
