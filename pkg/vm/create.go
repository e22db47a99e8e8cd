package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/store"
)

// ErrStalled: the guest made no progress towards ready for the stall timeout.
var ErrStalled = errdefs.New(errdefs.TimedOut, "vm made no progress")

// StageAddress is the operation stage after ready: the VM's address is known.
const StageAddress = "address"

// Create checks req and starts a create operation. Before it returns, the
// request is validated (ErrInvalid), the name is free (ErrExists), the host
// can hold the VM unless req.Force (ErrInsufficient), its network is active
// (started if need be, see ServiceConfig.Networks), no other operation holds
// the name (operation.ErrBusy) and the VM's row is written with phase
// creating. The operation then makes the VM, waits until it is ready and
// records the outcome:
//   - cancelled (by a delete of the VM): it stops at the next step, undoes
//     what the engine made and ends with status cancelled; the delete
//     removes the rest;
//   - engine failure: everything is undone and the row removed;
//   - cloud-init failure: the VM stays, in state failed, for inspection; the
//     operation's error names the failing modules and its detail is the tail
//     of cloud-init's output log;
//   - no progress for the stall timeout: the VM stays, in state failed.
func (s *Service) Create(ctx context.Context, req api.CreateVMRequest) (api.Operation, error) {
	return s.create(ctx, req, "")
}

// create is Create for a VM that owner manages ("" for the user's own).
func (s *Service) create(ctx context.Context, req api.CreateVMRequest, owner string) (api.Operation, error) {
	ereq, img, err := s.engineRequest(req)
	if err != nil {
		return api.Operation{}, err
	}
	if IsParentName(req.Name) {
		return api.Operation{}, fmt.Errorf("%w: names beginning with %q are reserved for saved parents", ErrInvalid, ParentNamePrefix)
	}
	switch req.Clone {
	case "", api.CloneAuto, api.CloneAlways, api.CloneNever:
	default:
		return api.Operation{}, fmt.Errorf("%w: clone %q: use %s, %s or %s", ErrInvalid, req.Clone, api.CloneAuto, api.CloneAlways, api.CloneNever)
	}
	if req.ReadyPort < 0 || req.ReadyPort > 65535 {
		return api.Operation{}, fmt.Errorf("%w: ready port %d is not a TCP port", ErrInvalid, req.ReadyPort)
	}
	if err := s.cfg.Engine.Validate(ctx, ereq); err != nil {
		return api.Operation{}, err
	}
	if _, err := s.cfg.Store.GetVM(ctx, req.Name); err == nil {
		return api.Operation{}, fmt.Errorf("%w: %q", ErrExists, req.Name)
	}
	if !req.Force {
		if err := admit(s.cfg.Host, ereq.MemoryMiB, ereq.DiskBytes); err != nil {
			return api.Operation{}, err
		}
	}
	if err := s.ensureNetwork(ctx, ereq.Network); err != nil {
		return api.Operation{}, err
	}
	row := store.VM{
		Name: req.Name, Image: ereq.Template.Name, CPUs: ereq.VCPUs, MemoryMiB: ereq.MemoryMiB, DiskBytes: ereq.DiskBytes,
		Network: ereq.Network, State: api.StateCreating, Desired: store.DesiredRunning, UserData: req.UserData,
		SSHKeys: req.SSHKeys, CreatedAt: time.Now().UTC(), Phase: store.PhaseCreating, CloudInit: api.CloudInitPending,
		ReadyPort: req.ReadyPort, ImagePath: ereq.Template.Path, Owner: owner,
	}
	return s.run(ctx, operation.KindCreate, req.Name, func(ctx context.Context, op *operation.Op) (string, error) {
		if img.Fetch != nil {
			if err := s.fetchImage(ctx, op, img); err != nil {
				if derr := s.cfg.Store.DeleteVM(context.Background(), req.Name); derr != nil {
					s.log.WithField("vm", req.Name).WithError(derr).Error("remove row of failed create")
				}
				return "", err
			}
		}
		return s.runCreate(ctx, op, ereq, req.Clone)
	}, operation.Prepare(func(ctx context.Context, _ *operation.Op) error {
		if err := s.cfg.Store.InsertVM(ctx, row); err != nil {
			if errors.Is(err, store.ErrExists) {
				return fmt.Errorf("%w: %w", ErrExists, err)
			}
			return err
		}
		return nil
	}))
}

// noCloudInitAddressTimeout bounds the wait for an address of a VM whose
// image has no cloud-init (see awaitReady).
const noCloudInitAddressTimeout = 10 * time.Second

// StagePull is the create stage that downloads an image not pulled yet.
const StagePull = "pull"

// fetchImage downloads the image of a create, reporting progress at most
// once a second as messages of the pull stage.
func (s *Service) fetchImage(ctx context.Context, op *operation.Op, img ResolvedImage) error {
	op.Stage(StagePull, img.Template.Name)
	var last time.Time
	err := img.Fetch(ctx, func(msg string) {
		if time.Since(last) >= time.Second {
			last = time.Now()
			op.Stage(StagePull, msg)
		}
	})
	if err != nil {
		return fmt.Errorf("pull image %s: %w", img.Template.Name, err)
	}
	return nil
}

// engineRequest applies the image's and galed's defaults to req.
func (s *Service) engineRequest(req api.CreateVMRequest) (CreateRequest, ResolvedImage, error) {
	if req.Image == "" {
		return CreateRequest{}, ResolvedImage{}, fmt.Errorf("%w: an image is required", ErrInvalid)
	}
	img, err := s.cfg.Images.Resolve(req.Image)
	if err != nil {
		return CreateRequest{}, ResolvedImage{}, err
	}
	out := CreateRequest{
		Name: req.Name, Template: img.Template, VCPUs: req.CPUs, MemoryMiB: req.MemoryMiB, DiskBytes: req.DiskBytes,
		Network: req.Network, UserData: req.UserData, Accel: s.cfg.Accel,
		SSHKeys: append(append([]string(nil), s.cfg.SSHKeys...), req.SSHKeys...),
	}
	if out.VCPUs == 0 {
		out.VCPUs = max(img.CPUs, 1)
	}
	if out.MemoryMiB == 0 {
		out.MemoryMiB = img.MemoryMiB
		if out.MemoryMiB == 0 {
			out.MemoryMiB = 1024
		}
	}
	if out.DiskBytes == 0 {
		out.DiskBytes = img.DiskBytes
	}
	if out.Network == "" {
		out.Network = s.cfg.DefaultNetwork
	}
	return out, img, nil
}

// runCreate is the body of a create operation. It returns the failure detail
// and error the operation ends with. It clones when clone mode and a saved
// parent allow (see runClone), and boots otherwise.
func (s *Service) runCreate(ctx context.Context, op *operation.Op, req CreateRequest, clone string) (string, error) {
	name := req.Name
	req.Progress = func(step string) { op.Stage(step, "") }
	if p, ok := s.parentFor(ctx, op, req, clone); ok {
		if detail, done, err := s.runClone(ctx, op, req, p); done {
			return detail, err
		}
	}
	inst, err := s.cfg.Engine.Create(ctx, req)
	if err != nil {
		// The engine has undone its work; the name is free again.
		if derr := s.cfg.Store.DeleteVM(context.Background(), name); derr != nil {
			s.log.WithField("vm", name).WithError(derr).Error("remove row of failed create")
		}
		return "", err
	}
	s.update(name, func(v *store.VM) {
		v.ID, v.MAC, v.Phase, v.Made = inst.ID, inst.MAC, store.PhaseNone, store.MadeColdBoot
	})
	return s.awaitReady(ctx, op, name)
}

// awaitReady is the second half of a create: it waits (resetting the stall
// timer at each new stage) until the guest is ready, then records the
// address and state running. On failure the VM stays, in state failed. It
// also resumes a create that galed's restart interrupted after the domain
// had started (see Reconcile).
func (s *Service) awaitReady(ctx context.Context, op *operation.Op, name string) (string, error) {
	wctx, touch, stop := stallContext(ctx, s.cfg.StallTimeout)
	defer stop()
	check := s.readyCheck(ctx, name)
	res, err := WaitReadyFor(wctx, s.drv, name, check, func(p Progress) {
		touch(string(p.Stage))
		if p.Stage == StageFailed {
			return // reported with Done
		}
		op.Stage(string(p.Stage), "")
		if p.Stage == StageInitLocal {
			s.update(name, func(v *store.VM) { v.CloudInit = api.CloudInitRunning })
		}
	})
	if err != nil {
		if cause := context.Cause(wctx); errors.Is(cause, ErrStalled) {
			err = cause
		}
		if ctx.Err() != nil {
			// galed is shutting down: leave the row in state creating for Reconcile.
			return "", fmt.Errorf("create %q interrupted: %w", name, err)
		}
		cloud := api.CloudInitPending
		if errors.Is(err, ErrCloudInitFailed) {
			cloud = api.CloudInitError
		}
		s.update(name, func(v *store.VM) { v.State, v.Error, v.CloudInit = api.StateFailed, err.Error(), cloud })
		return res.OutputTail, err
	}

	// A guest without cloud-init keeps the network configuration it had
	// elsewhere and may never take a lease here: do not hold its create
	// for long.
	addrWait := s.cfg.AddressTimeout
	if check.Mode == ReadyAgent || check.Mode == ReadyBoot {
		addrWait = min(addrWait, noCloudInitAddressTimeout)
	}
	ips := s.awaitAddress(ctx, op, name, addrWait)
	s.update(name, func(v *store.VM) {
		switch check.Mode {
		case ReadyCloudInit:
			v.CloudInit = api.CloudInitDone
		case ReadyAgent, ReadyBoot:
			v.CloudInit = api.CloudInitNone
		} // ReadyTCP: cloud-init may still run; its state is not known
		v.State, v.Error, v.ReadyAfter, v.Addresses = api.StateRunning, "", res.DoneAfter, ips
	})
	return "", nil
}

// awaitAddress waits up to timeout for VM name's addresses, reports them
// as the address stage and returns them; none is logged, not an error.
func (s *Service) awaitAddress(ctx context.Context, op *operation.Op, name string, timeout time.Duration) []string {
	actx, cancel := context.WithTimeout(ctx, timeout)
	addrs, err := WaitAddress(actx, s.drv, name)
	cancel()
	ips := make([]string, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, a.IP.String())
	}
	if err != nil {
		s.log.WithField("vm", name).WithError(err).Warn("no address yet")
	}
	op.Stage(StageAddress, strings.Join(ips, " "))
	return ips
}

// readyCheck is how the create of name decides the VM is ready: a TCP port
// the request named, else what its image says, else cloud-init.
func (s *Service) readyCheck(ctx context.Context, name string) ReadyCheck {
	v, err := s.cfg.Store.GetVM(ctx, name)
	if err != nil {
		return ReadyCheck{Mode: ReadyCloudInit}
	}
	if v.ReadyPort > 0 {
		return ReadyCheck{Mode: ReadyTCP, Port: v.ReadyPort}
	}
	if img, err := s.cfg.Images.Resolve(v.Image); err == nil && img.Readiness.Mode != "" {
		return img.Readiness
	}
	return ReadyCheck{Mode: ReadyCloudInit}
}

// stallContext returns a context that is cancelled with an ErrStalled cause
// when touch has not been called for timeout. touch records the stage reached.
func stallContext(parent context.Context, timeout time.Duration) (ctx context.Context, touch func(stage string), stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	stages := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		last := "start"
		t := time.NewTimer(timeout)
		defer t.Stop()
		for {
			select {
			case s := <-stages:
				last = s
				if !t.Stop() {
					select {
					case <-t.C:
					default:
					}
				}
				t.Reset(timeout)
			case <-t.C:
				cancel(fmt.Errorf("%w for %s after stage %q", ErrStalled, timeout, last))
				return
			case <-done:
				return
			}
		}
	}()
	touch = func(stage string) {
		select {
		case stages <- stage:
		case <-done:
		case <-ctx.Done():
		}
	}
	stop = func() {
		close(done)
		cancel(nil)
	}
	return ctx, touch, stop
}
