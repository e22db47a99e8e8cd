package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
)

// ErrProvision: a Provision's create operation did not succeed; the error
// carries the operation's own error and, for a VM kept for inspection,
// the VM is in state failed.
var ErrProvision = errors.New("provision failed")

// ErrOwned: the VM is managed by a scale set (or another owner) and may
// only be deleted through it.
var ErrOwned = errdefs.New(errdefs.Conflict, "vm is managed by its owner")

// OwnerSet returns the owner of set name's instances.
func OwnerSet(name string) string { return "set/" + name }

// SetOf returns the set an owner names ("" when owner is not a set).
func SetOf(owner string) string {
	if set, ok := strings.CutPrefix(owner, "set/"); ok {
		return set
	}
	return ""
}

// Provision is the one call fleets (scale sets, standby and batch pools)
// make for a member: it creates VM req.Name from req's model as a clone of
// the model's saved parent, saving the parent first if there is none
// (req.Clone defaults to api.CloneAlways here; a clone that cannot be made
// is booted instead, the reason in the operation's stages), waits until
// the VM is ready with its address, and returns it.
//
// Concurrent Provisions of one model share one parent build. When ctx ends
// first, the create goes on in galed and Provision returns ctx's error;
// delete the VM to stop it.
//
// owner names what manages the VM (see OwnerSet); Delete refuses a VM with
// an owner unless DeleteOptions.Owner is the same.
func (s *Service) Provision(ctx context.Context, req api.CreateVMRequest, owner string) (api.VM, error) {
	if req.Clone == "" {
		req.Clone = api.CloneAlways
	}
	op, err := s.create(ctx, req, owner)
	if err != nil {
		return api.VM{}, err
	}
	if err := s.FollowOperation(ctx, op.ID, func(api.Event) error { return nil }); err != nil {
		return api.VM{}, fmt.Errorf("provision %s: %w", req.Name, err)
	}
	done, err := s.Operation(ctx, op.ID)
	if err != nil {
		return api.VM{}, fmt.Errorf("provision %s: %w", req.Name, err)
	}
	if done.Status != api.OpSucceeded {
		return api.VM{}, fmt.Errorf("%w: %s: operation %s %s: %s", ErrProvision, req.Name, op.ID, done.Status, done.Error)
	}
	return s.Get(ctx, req.Name)
}

// ModelDefaults returns req with the image's and galed's defaults applied
// (CPUs, memory, disk, network), as a create would apply them.
func (s *Service) ModelDefaults(req api.CreateVMRequest) (api.CreateVMRequest, error) {
	ereq, _, err := s.engineRequest(req)
	if err != nil {
		return api.CreateVMRequest{}, err
	}
	req.CPUs, req.MemoryMiB, req.DiskBytes, req.Network = ereq.VCPUs, ereq.MemoryMiB, ereq.DiskBytes, ereq.Network
	return req, nil
}

// ValidateModel checks that VMs can be made from req's model (image known,
// sizes, network, cloud-config) without making anything; req.Name may be
// any valid name that is not taken. Errors wrap ErrInvalid.
func (s *Service) ValidateModel(ctx context.Context, req api.CreateVMRequest) error {
	ereq, _, err := s.engineRequest(req)
	if err != nil {
		return err
	}
	return s.cfg.Engine.Validate(ctx, ereq)
}

// PrepareModel builds the saved parent of req's model if there is none, so
// that later Provisions of the model are clones. A model whose parent
// cannot be built (its cloud-init fails, its guest never gets ready)
// returns that error. Without a ParentSource it only validates.
func (s *Service) PrepareModel(ctx context.Context, req api.CreateVMRequest, progress func(stage string)) error {
	if err := s.ValidateModel(ctx, req); err != nil {
		return err
	}
	if s.cfg.Parents == nil {
		return nil
	}
	ereq, _, err := s.engineRequest(req)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Parents.Ensure(ctx, ereq, progress); err != nil {
		return fmt.Errorf("model of %s: %w", req.Name, err)
	}
	return nil
}
