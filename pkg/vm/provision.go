package vm

import (
	"context"
	"errors"
	"fmt"

	"github.com/galevm/gale/pkg/api"
)

// ErrProvision: a Provision's create operation did not succeed; the error
// carries the operation's own error and, for a VM kept for inspection,
// the VM is in state failed.
var ErrProvision = errors.New("provision failed")

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
func (s *Service) Provision(ctx context.Context, req api.CreateVMRequest) (api.VM, error) {
	if req.Clone == "" {
		req.Clone = api.CloneAlways
	}
	op, err := s.Create(ctx, req)
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
