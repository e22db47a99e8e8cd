package vm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/store"
)

// Delete starts a delete operation. Before it returns the row is marked phase
// deleting (so a crash is finished by Reconcile). A create in progress on the
// VM (also one that Reconcile resumed) is cancelled: it ends with status
// cancelled, its undo runs, and the delete proceeds after it. Any other
// operation in progress gives operation.ErrBusy; an unknown name ErrNotFound.
// opts.KeepDisk leaves the VM's directory (disk, seed, console log) in place.
func (s *Service) Delete(ctx context.Context, name string, opts DeleteOptions) (api.Operation, error) {
	row, err := s.row(ctx, name)
	if err != nil {
		return api.Operation{}, err
	}
	if row.Owner != opts.Owner {
		if set := SetOf(row.Owner); set != "" {
			return api.Operation{}, fmt.Errorf("%w: %q is an instance of set %q: delete it with `gale set instance delete %s %s`, or change the set's capacity with `gale set scale`", ErrOwned, name, set, set, name)
		}
		return api.Operation{}, fmt.Errorf("%w: %q is managed by %q", ErrOwned, name, row.Owner)
	}
	return s.run(ctx, operation.KindDelete, name, func(ctx context.Context, op *operation.Op) (string, error) {
		op.Stage("delete", "")
		// A create this delete cancelled may have changed the row as it
		// ended, or removed it with everything it had made.
		if err := s.markDeleting(ctx, name); errors.Is(err, ErrNotFound) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		return "", s.finishDelete(ctx, name, opts)
	}, operation.Prepare(func(ctx context.Context, _ *operation.Op) error {
		// A create being cancelled may remove the row meanwhile: the body
		// then has nothing left to delete.
		if err := s.markDeleting(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	}), operation.Supersede(operation.KindCreate))
}

// markDeleting records that VM name is being deleted.
func (s *Service) markDeleting(ctx context.Context, name string) error {
	_, err := s.cfg.Store.UpdateVM(ctx, name, func(v *store.VM) {
		v.Phase, v.State, v.Desired = store.PhaseDeleting, api.StateDeleting, store.DesiredStopped
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return err
}

// finishDelete removes the VM's domain and files, then its row. A VM whose
// resources are already gone only loses its row.
func (s *Service) finishDelete(ctx context.Context, name string, opts DeleteOptions) error {
	if err := s.cfg.Engine.Delete(ctx, name, opts); err != nil && !errors.Is(err, ErrNotFound) {
		s.update(name, func(v *store.VM) { v.Error = err.Error() })
		return err
	}
	return s.cfg.Store.DeleteVM(context.Background(), name)
}

// Start starts a start operation: desired state running, then boot.
func (s *Service) Start(ctx context.Context, name string) (api.Operation, error) {
	return s.power(ctx, operation.KindStart, name, store.DesiredRunning, func(ctx context.Context) error {
		return s.startDomain(ctx, name)
	})
}

// Stop starts a stop operation: desired state stopped, then an ACPI shutdown
// with opts.Timeout grace (default 60s) before forcing, or at once with Force.
func (s *Service) Stop(ctx context.Context, name string, opts api.StopVMRequest) (api.Operation, error) {
	return s.power(ctx, operation.KindStop, name, store.DesiredStopped, func(ctx context.Context) error {
		return s.stopDomain(ctx, name, opts)
	})
}

// Restart stops (as Stop does) and starts the VM again.
func (s *Service) Restart(ctx context.Context, name string, opts api.StopVMRequest) (api.Operation, error) {
	return s.power(ctx, operation.KindRestart, name, store.DesiredRunning, func(ctx context.Context) error {
		if err := s.stopDomain(ctx, name, opts); err != nil {
			return err
		}
		return s.startDomain(ctx, name)
	})
}

func (s *Service) power(ctx context.Context, kind operation.Kind, name, desired string, do func(context.Context) error) (api.Operation, error) {
	row, err := s.row(ctx, name)
	if err != nil {
		return api.Operation{}, err
	}
	if row.Phase != store.PhaseNone {
		return api.Operation{}, fmt.Errorf("%w: %q is %s: wait for it, or delete it", operation.ErrBusy, name, row.Phase)
	}
	return s.run(ctx, kind, name, func(ctx context.Context, op *operation.Op) (string, error) {
		op.Stage(string(kind), "")
		return "", do(ctx)
	}, operation.Prepare(func(ctx context.Context, _ *operation.Op) error {
		_, err := s.cfg.Store.UpdateVM(ctx, name, func(v *store.VM) { v.Desired = desired })
		return err
	}))
}

// startDomain starts the domain of name, after starting its network if that
// is inactive, and records it running.
func (s *Service) startDomain(ctx context.Context, name string) error {
	if row, err := s.cfg.Store.GetVM(ctx, name); err == nil {
		if err := s.ensureNetwork(ctx, row.Network); err != nil {
			return fmt.Errorf("start %q: %w", name, err)
		}
	}
	if err := s.drv.Start(ctx, name); err != nil {
		return fmt.Errorf("start %q: %w", name, err)
	}
	s.update(name, func(v *store.VM) {
		if v.State != api.StateBroken {
			v.State, v.Error = api.StateRunning, ""
		}
	})
	return nil
}

func (s *Service) stopDomain(ctx context.Context, name string, opts api.StopVMRequest) error {
	var err error
	if opts.Force {
		err = s.drv.Destroy(ctx, name)
	} else {
		timeout := time.Duration(opts.Timeout)
		if timeout <= 0 {
			timeout = DefaultStopTimeout
		}
		err = s.drv.Shutdown(ctx, name, timeout)
	}
	if err != nil {
		return fmt.Errorf("stop %q: %w", name, err)
	}
	s.update(name, func(v *store.VM) {
		if v.State != api.StateBroken && v.State != api.StateFailed {
			v.State = api.StateStopped
		}
	})
	return nil
}

// liveState is the state to report for row given its domain (nil: none).
func liveState(row store.VM, dom *hypervisor.Domain) string {
	switch {
	case row.Phase == store.PhaseCreating:
		return api.StateCreating
	case row.Phase == store.PhaseDeleting:
		return api.StateDeleting
	case row.State == api.StateFailed, row.State == api.StateBroken, row.State == api.StateCreating:
		return row.State
	case dom == nil:
		return api.StateBroken
	}
	switch dom.State {
	case hypervisor.StateRunning, hypervisor.StatePaused, hypervisor.StateShuttingDown:
		return api.StateRunning
	case hypervisor.StateShutoff, hypervisor.StateCrashed:
		return api.StateStopped
	}
	return row.State
}

// ensureNetwork starts network when it is defined but inactive (libvirtd
// started without network autostart), which would otherwise fail a create
// at its boot stage or a start at once. Without ServiceConfig.Networks it
// does nothing.
func (s *Service) ensureNetwork(ctx context.Context, network string) error {
	if s.cfg.Networks == nil || network == "" {
		return nil
	}
	if _, err := s.cfg.Networks.EnsureActive(ctx, network); err != nil {
		return fmt.Errorf("network %q: %w", network, err)
	}
	return nil
}
