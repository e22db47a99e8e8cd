package vm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/store"
)

// ReconcileOptions tune Reconcile.
type ReconcileOptions struct {
	// StartStopped starts VMs whose desired state is running but whose domain
	// is shut off (with bounded retries). Set it at daemon start; a periodic
	// resync leaves it off so a guest that powered itself off stays off.
	StartStopped bool
}

// ReconcileReport says what Reconcile did, by VM name.
type ReconcileReport struct {
	Adopted    []string // gale domains without a row: row added
	RolledBack []string // half-done creates undone
	Deleted    []string // half-done deletes finished
	Started    []string // should run, was shut off: started
	Resumed    []string // create interrupted after boot: waiting for ready again
	Broken     []string // row without a domain: marked broken
	Updated    []string // recorded state refreshed
	Failed     []string // an action failed (logged); retried next time
}

// Reconcile brings the store and the hypervisor into agreement after a
// restart (or a reconnect to libvirtd), idempotently, with one driver List
// call and one store query:
//   - a gale domain (it carries gale metadata) without a row is adopted;
//   - a row in phase creating is undone (domain and files removed, row
//     removed) so nothing leaks and the name is reusable;
//   - a row in phase deleting is deleted to the end;
//   - a row without a domain, not mid-create, is marked broken: its files are
//     kept, user data is never deleted here;
//   - with StartStopped, a row whose desired state is running and whose
//     domain is shut off is started (bounded retries);
//   - a row still in state creating whose domain runs (galed stopped after
//     the boot, before ready) gets a new create operation that waits for
//     ready again, so the create finishes instead of being left half-known.
//
// VMs with an operation in progress are skipped. Domains without gale
// metadata are ignored.
func (s *Service) Reconcile(ctx context.Context, opts ReconcileOptions) (ReconcileReport, error) {
	var rep ReconcileReport
	doms, err := s.drv.List(ctx)
	if err != nil {
		return rep, fmt.Errorf("reconcile: list domains: %w", err)
	}
	rows, err := s.cfg.Store.ListVMs(ctx)
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	byName := make(map[string]*hypervisor.Domain, len(doms))
	for i := range doms {
		byName[doms[i].Name] = &doms[i]
	}
	known := make(map[string]bool, len(rows))
	for _, r := range rows {
		known[r.Name] = true
	}
	for _, d := range doms {
		if d.Metadata == nil || known[d.Name] || IsParentName(d.Name) {
			continue // parents' domains are the parent manager's
		}
		s.act(ctx, d.Name, &rep.Adopted, &rep.Failed, func(ctx context.Context) error {
			return s.cfg.Store.InsertVM(ctx, adoptedRow(d))
		})
	}
	for _, r := range rows {
		s.reconcileRow(ctx, r, byName[r.Name], opts, &rep)
	}
	return rep, nil
}

// reconcileRow brings one VM's row and domain (nil: none) into agreement
// (see Reconcile) and reports what it did in rep.
func (s *Service) reconcileRow(ctx context.Context, r store.VM, dom *hypervisor.Domain, opts ReconcileOptions, rep *ReconcileReport) {
	name := r.Name
	switch {
	case r.Phase == store.PhaseCreating:
		s.act(ctx, name, &rep.RolledBack, &rep.Failed, func(ctx context.Context) error { return s.finishDelete(ctx, name, DeleteOptions{}) })
	case r.Phase == store.PhaseDeleting:
		s.act(ctx, name, &rep.Deleted, &rep.Failed, func(ctx context.Context) error { return s.finishDelete(ctx, name, DeleteOptions{}) })
	case dom == nil && r.State == api.StateBroken:
		// Already reported; a human decides.
	case dom == nil:
		s.act(ctx, name, &rep.Broken, &rep.Failed, func(ctx context.Context) error { return s.markBroken(ctx, name) })
	case r.State == api.StateCreating && dom.State == hypervisor.StateRunning:
		if s.resumeCreate(ctx, name) {
			rep.Resumed = append(rep.Resumed, name)
		}
	case opts.StartStopped && r.Desired == store.DesiredRunning && dom.State == hypervisor.StateShutoff && r.State != api.StateFailed:
		s.act(ctx, name, &rep.Started, &rep.Failed, func(ctx context.Context) error { return s.startWithRetries(ctx, name) })
	case r.State == api.StateFailed || r.State == domainState(dom):
		// Nothing to refresh.
	default:
		st := domainState(dom)
		s.act(ctx, name, &rep.Updated, &rep.Failed, func(ctx context.Context) error { return s.refreshState(ctx, name, st) })
	}
}

// markBroken records that VM name has lost its domain; its files are kept.
func (s *Service) markBroken(ctx context.Context, name string) error {
	_, err := s.cfg.Store.UpdateVM(ctx, name, func(v *store.VM) {
		v.State = api.StateBroken
		v.Error = fmt.Sprintf("its libvirt domain is missing; files in %s are kept (delete the VM to remove them)", s.cfg.Engine.Paths(name).Dir)
	})
	return err
}

// refreshState records st, the state of VM name's domain.
func (s *Service) refreshState(ctx context.Context, name, st string) error {
	_, err := s.cfg.Store.UpdateVM(ctx, name, func(v *store.VM) {
		if v.State == api.StateCreating {
			v.Error = "galed restarted before the VM was confirmed ready; see `gale vm logs`"
		} else if v.State == api.StateBroken {
			v.Error = ""
		}
		v.State = st
	})
	return err
}

// resumeCreate starts a create operation that waits for VM name to be ready
// again (galed stopped after the boot, before ready). It reports whether it
// started one; a busy VM is left alone.
func (s *Service) resumeCreate(ctx context.Context, name string) bool {
	_, err := s.cfg.Ops.Run(ctx, operation.KindCreate, target(name), func(ctx context.Context, op *operation.Op) (string, error) {
		return s.awaitReady(ctx, op, name)
	}, operation.Prepare(func(_ context.Context, op *operation.Op) error {
		op.Stage(string(StageBooting), "galed restarted; waiting for the VM to be ready again")
		return nil
	}))
	return err == nil
}

// act runs fn for name under a "reconcile" operation, so it never races a
// user's operation; a busy name is skipped. name goes to done or failed.
func (s *Service) act(ctx context.Context, name string, done, failed *[]string, fn func(context.Context) error) {
	op, err := s.cfg.Ops.Do(ctx, operation.KindReconcile, target(name), func(ctx context.Context, _ *operation.Op) error {
		return fn(ctx)
	})
	if op == nil {
		return // busy, or galed is shutting down
	}
	if err != nil {
		s.log.WithFields(logrus.Fields{"vm": name, "op": op.ID()}).WithError(err).Warn("reconcile")
		*failed = append(*failed, name)
		return
	}
	*done = append(*done, name)
}

func (s *Service) startWithRetries(ctx context.Context, name string) error {
	var err error
	delay := time.Second
	for i := 0; i < s.cfg.StartRetries; i++ {
		if err = s.startDomain(ctx, name); err == nil || errors.Is(err, hypervisor.ErrNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
	return err
}

func domainState(d *hypervisor.Domain) string {
	return liveState(store.VM{}, d)
}

// adoptedRow is the row of a gale domain found without one.
func adoptedRow(d hypervisor.Domain) store.VM {
	v := store.VM{
		Name: d.Name, ID: d.Metadata.ID, Image: d.Metadata.Image, CPUs: d.VCPUs, MemoryMiB: d.MemoryMiB,
		State: domainState(&d), Desired: store.DesiredStopped, CreatedAt: d.Metadata.CreatedAt,
		CloudInit: api.CloudInitPending, Error: "adopted from libvirt after galed lost its record",
	}
	if d.State == hypervisor.StateRunning {
		v.Desired = store.DesiredRunning
	}
	if len(d.MACs) > 0 {
		v.MAC = d.MACs[0]
	}
	if d.Metadata.Parent != "" {
		v.Made, v.Parent = store.MadeClone, d.Metadata.Parent
	}
	return v
}
