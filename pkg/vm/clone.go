package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/cloudinit"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/guestid"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/revert"
)

// Steps of Clone reported to CreateRequest.Progress, after StepDisk and StepSeed.
const (
	StepRestore  = "restore"
	StepIdentity = "identity"
)

// ErrCloneHook: a per-clone hook (guestid.HookDir) failed in a restored
// clone. The clone is kept, as a cold-booted VM whose cloud-init failed is
// kept, for inspection; a cold boot would run the same hook.
var ErrCloneHook = errdefs.New(errdefs.Internal, "per-clone hook failed")

// identityTimeout bounds the guest-agent call that makes a clone distinct.
const identityTimeout = 2 * time.Minute

// ParentRef is a saved parent a VM can be cloned from: a guest booted from
// a model until ready, then saved. Its files are read-only to clones.
type ParentRef struct {
	Name       string // e.g. gale-parent-0123456789ab
	StatePath  string // libvirt save image of the running guest
	StateBytes int64  // size of StatePath when it was saved
	DiskPath   string // the guest's disk when saved (qcow2), a clone's backing file
	MAC        string // the MAC the saved guest's NIC carries
	InstanceID string // the saved guest's cloud-init instance-id
}

// Clone makes VM req.Name from parent p instead of booting it: an overlay
// disk on the parent's disk, a seed like Create's (so a reboot reads this
// VM's identity), a domain restored from the parent's state with a new
// name, UUID, MAC and console log, and then one guest-agent call that makes
// the guest a distinct machine (clock, MAC and DHCP lease, hostname,
// machine-id, SSH host keys, random seed, cloud-init instance-id) and runs
// the per-clone hooks; see pkg/guestid.
//
// req must be the model p was built from (same template, size, network and
// user-data); its Name is the clone's. On error everything Clone made is
// removed, except when a per-clone hook failed (ErrCloneHook): then the VM
// is left running for inspection and its Instance returned with the error.
// An unusable saved state gives an error wrapping hypervisor.ErrBadSavedState.
func (e *Engine) Clone(ctx context.Context, req CreateRequest, p ParentRef) (_ Instance, err error) {
	if err := e.Validate(ctx, req); err != nil {
		return Instance{}, err
	}
	if st, err := os.Stat(p.StatePath); err != nil {
		return Instance{}, fmt.Errorf("parent %s: %w: %w", p.Name, hypervisor.ErrBadSavedState, err)
	} else if p.StateBytes > 0 && st.Size() != p.StateBytes {
		return Instance{}, fmt.Errorf("parent %s: %w: state is %d bytes, %d when saved",
			p.Name, hypervisor.ErrBadSavedState, st.Size(), p.StateBytes)
	}
	log := e.log().WithField("vm", req.Name)
	inst := e.Paths(req.Name)
	inst.ID = "i-" + randomHex(8)
	inst.MAC = RandomMAC()

	r := revert.New()
	r.OnError = func(err error) { log.WithError(err).Warn("cleanup after failed clone") }
	keep := false
	defer func() {
		if err != nil && !keep {
			_ = r.Fail()
		}
	}()
	if err := e.claimDir(inst, r); err != nil {
		return Instance{}, err
	}

	if err := req.step(ctx, StepDisk); err != nil {
		return Instance{}, err
	}
	if err := e.Disks.CreateOverlay(ctx, inst.DiskPath, p.DiskPath, disk.FormatQCOW2, 0); err != nil {
		return Instance{}, fmt.Errorf("create disk on parent %s: %w", p.Name, err)
	}
	if err := req.step(ctx, StepSeed); err != nil {
		return Instance{}, err
	}
	if err := cloudinit.WriteSeed(inst.SeedPath, seedConfig(req, inst.ID, inst.MAC)); err != nil {
		return Instance{}, fmt.Errorf("write cloud-init seed: %w", err)
	}

	if err := req.step(ctx, StepRestore); err != nil {
		return Instance{}, err
	}
	spec := hypervisor.CloneSpec{
		Name:      req.Name,
		Disks:     map[string]string{"vda": inst.DiskPath, "vdb": inst.SeedPath},
		MACs:      []string{inst.MAC},
		SerialLog: inst.ConsoleLog,
		Metadata: hypervisor.Metadata{
			ID:        inst.ID,
			Image:     req.Template.Name,
			Parent:    p.Name,
			CreatedAt: time.Now().UTC().Truncate(time.Second),
		},
	}
	if err := e.Driver.Restore(ctx, p.StatePath, spec, inst.Dir); err != nil {
		if errors.Is(err, hypervisor.ErrExists) {
			return Instance{}, fmt.Errorf("%w: %w", ErrExists, err)
		}
		return Instance{}, fmt.Errorf("restore parent %s: %w", p.Name, err)
	}
	r.Add(func() error { return e.removeDomain(context.Background(), req.Name) })
	log.WithFields(map[string]any{"op": "restore", "parent": p.Name}).Info("vm restored from parent")

	if err := req.step(ctx, StepIdentity); err != nil {
		return Instance{}, err
	}
	if err := e.makeDistinct(ctx, req.Name, inst, p); err != nil {
		if errors.Is(err, ErrCloneHook) {
			keep = true
			return inst, err
		}
		return Instance{}, err
	}
	r.Success()
	return inst, nil
}

// makeDistinct runs the identity script of pkg/guestid in the restored
// guest through one guest-agent call.
func (e *Engine) makeDistinct(ctx context.Context, name string, inst Instance, p ParentRef) error {
	id, err := guestid.New(name, inst.ID, p.InstanceID, p.MAC, inst.MAC, time.Now())
	if err != nil {
		return fmt.Errorf("clone identity: %w", err)
	}
	script, err := id.Script()
	if err != nil {
		return fmt.Errorf("clone identity: %w", err)
	}
	ictx, cancel := context.WithTimeout(ctx, identityTimeout)
	defer cancel()
	res, err := e.Driver.AgentExec(ictx, name, hypervisor.ExecRequest{Path: "/bin/sh", Args: []string{"-s"}, Stdin: script})
	if err != nil {
		return fmt.Errorf("make clone distinct: %w", err)
	}
	switch {
	case res.ExitCode == 0 && res.Signal == 0:
		e.log().WithField("vm", name).Debugf("identity set: %s", strings.TrimSpace(string(res.Stderr)))
		return nil
	case res.ExitCode == guestid.HookFailedExit:
		return fmt.Errorf("%w: %s", ErrCloneHook, strings.TrimSpace(string(res.Stderr)))
	default:
		return fmt.Errorf("make clone distinct: identity script exited %d (signal %d): %s",
			res.ExitCode, res.Signal, tail(string(res.Stderr), 2000))
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
