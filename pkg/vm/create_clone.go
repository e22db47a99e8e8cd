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

// Stages of a create operation that clones.
const (
	// StageParent: the create waits for the model's parent to be built.
	StageParent = "parent"
	// StageCloneFallback: cloning was not possible; the message says why
	// and the VM is booted instead.
	StageCloneFallback = "clone-fallback"
)

// parentFor returns the saved parent a create may clone from, building it
// first for api.CloneAlways. It reports why not as a clone-fallback stage
// when the user asked for a clone and none can be had.
func (s *Service) parentFor(ctx context.Context, op *operation.Op, req CreateRequest, mode string) (ParentRef, bool) {
	if mode == api.CloneNever || s.cfg.Parents == nil {
		if mode == api.CloneAlways {
			op.Stage(StageCloneFallback, "this galed keeps no saved parents")
		}
		return ParentRef{}, false
	}
	// A UEFI guest's variable store is a per-domain file a clone would
	// share or lose.
	if req.Template.Firmware == hypervisor.FirmwareUEFI {
		if mode == api.CloneAlways {
			op.Stage(StageCloneFallback, "UEFI guests are not cloned")
		}
		return ParentRef{}, false
	}
	// Clones are made distinct through cloud-init's state and the guest
	// agent: a model whose readiness is not cloud-init's is booted.
	if check := s.readyCheck(ctx, req.Name); check.Mode != ReadyCloudInit {
		if mode == api.CloneAlways {
			op.Stage(StageCloneFallback, fmt.Sprintf("VMs ready by %s cannot be cloned", check.Mode))
		}
		return ParentRef{}, false
	}
	if mode == api.CloneAlways {
		p, err := s.cfg.Parents.Ensure(ctx, req, func(stage string) { op.Stage(StageParent, stage) })
		if err != nil {
			if ctx.Err() == nil {
				op.Stage(StageCloneFallback, "no parent: "+err.Error())
			}
			return ParentRef{}, false
		}
		return p, true
	}
	p, ok, err := s.cfg.Parents.Lookup(ctx, req)
	if err != nil {
		s.log.WithField("vm", req.Name).WithError(err).Warn("look up parent")
	}
	return p, ok && err == nil
}

// runClone makes the VM of a create operation from parent p. done reports
// whether the create is over (succeeded, failed for good or cancelled);
// when it is false, cloning was not possible, Clone undid its work, a
// clone-fallback stage says why, and the caller boots the VM instead.
//
// The row stays in phase creating until the clone is a distinct machine:
// a galed killed mid-clone has Reconcile remove whatever was made, as for
// an interrupted create, and a clone never runs with its parent's identity
// unrecorded.
func (s *Service) runClone(ctx context.Context, op *operation.Op, req CreateRequest, p ParentRef) (detail string, done bool, err error) {
	name := req.Name
	start := time.Now()
	// Recorded first: the parent is in use from now on (see parent.Manager.Remove).
	s.update(name, func(v *store.VM) { v.Parent = p.Name })
	inst, err := s.cfg.Engine.Clone(ctx, req, p)
	switch {
	case err == nil:
	case errors.Is(err, ErrCloneHook):
		s.update(name, func(v *store.VM) {
			v.ID, v.MAC, v.Phase, v.Made, v.Parent = inst.ID, inst.MAC, store.PhaseNone, store.MadeClone, p.Name
			v.State, v.Error, v.CloudInit = api.StateFailed, err.Error(), api.CloudInitError
		})
		return err.Error(), true, err
	case ctx.Err() != nil:
		if derr := s.cfg.Store.DeleteVM(context.Background(), name); derr != nil {
			s.log.WithField("vm", name).WithError(derr).Error("remove row of cancelled create")
		}
		return "", true, err
	default:
		s.update(name, func(v *store.VM) { v.Parent = "" })
		s.log.WithFields(map[string]any{"vm": name, "parent": p.Name}).WithError(err).Warn("clone failed; booting instead")
		op.Stage(StageCloneFallback, err.Error())
		return "", false, nil
	}
	s.update(name, func(v *store.VM) {
		v.ID, v.MAC, v.Phase, v.Made, v.Parent = inst.ID, inst.MAC, store.PhaseNone, store.MadeClone, p.Name
		v.CloudInit = api.CloudInitDone // it ran in the parent
	})
	op.Stage(string(StageReady), "clone of "+p.Name)
	ips := s.awaitAddress(ctx, op, name, s.cfg.AddressTimeout)
	s.update(name, func(v *store.VM) {
		v.State, v.Error, v.ReadyAfter, v.Addresses = api.StateRunning, "", time.Since(start), ips
	})
	return "", true, nil
}
