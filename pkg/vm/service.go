package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/store"
)

// ErrInsufficient: the host cannot hold the VM (memory or disk); the request
// may be retried with Force.
var ErrInsufficient = errdefs.New(errdefs.Insufficient, "insufficient host resources")

// ErrNotRunning: the VM must be running (e.g. for exec).
var ErrNotRunning = errdefs.New(errdefs.Conflict, "vm is not running")

// Defaults of ServiceConfig.
const (
	DefaultStallTimeout   = 5 * time.Minute
	DefaultAddressTimeout = 2 * time.Minute
	DefaultExecTimeout    = 5 * time.Minute
	DefaultStopTimeout    = 60 * time.Second
)

// ServiceConfig wires a Service. Engine, Store, Ops and Images are required.
type ServiceConfig struct {
	Engine *Engine
	Store  *store.Store
	Ops    *operation.Registry
	Images ImageResolver
	// Host answers the admission check; nil means HostResources for Engine.Dir.
	Host Host
	// DefaultNetwork is used when a create request names none.
	DefaultNetwork string
	// Networks starts a create's network when it is defined but inactive
	// (pkg/network implements it); nil leaves networks as they are.
	Networks NetworkStarter
	// SSHKeys are injected into every VM in addition to the request's (galed's own key).
	SSHKeys []string
	// Accel overrides the driver's accelerator for new VMs (empty: the driver's).
	Accel hypervisor.Accel
	// StallTimeout fails a create only when the guest makes no progress
	// (no new stage) for this long. Default DefaultStallTimeout.
	StallTimeout time.Duration
	// AddressTimeout bounds the wait for an address after ready (no address is not an error).
	AddressTimeout time.Duration
	// Parents, when set, lets creates restore VMs from saved parents of
	// their model (pkg/parent) instead of booting them.
	Parents ParentSource
	// StartRetries bounds reconcile's attempts to start a VM that should run (default 3).
	StartRetries int
	Log          logrus.FieldLogger
}

// ParentSource finds and builds saved parents of VM models (pkg/parent).
// A model is a CreateRequest without its Name.
type ParentSource interface {
	// Lookup returns the saved parent of req's model, if any; it never builds.
	Lookup(ctx context.Context, req CreateRequest) (ParentRef, bool, error)
	// Ensure returns the parent of req's model, building it first if need be.
	Ensure(ctx context.Context, req CreateRequest, progress func(stage string)) (ParentRef, error)
}

// ParentNamePrefix begins the names of saved parents and of their domains
// while they are built; VM names with it are refused.
const ParentNamePrefix = "gale-parent-"

// IsParentName reports whether name is reserved for a saved parent.
func IsParentName(name string) bool { return strings.HasPrefix(name, ParentNamePrefix) }

// NetworkStarter starts a network that is defined but not active.
type NetworkStarter interface {
	EnsureActive(ctx context.Context, name string) (started bool, err error)
}

// Service is the VM lifecycle behind galed's API: it records desired state
// in the store before it acts, runs long work as operations of its registry
// (one at a time per VM; see pkg/operation) and reads live state from the
// driver. It is safe for concurrent use.
type Service struct {
	cfg ServiceConfig
	drv hypervisor.Driver
	log logrus.FieldLogger
}

// NewService returns a Service. Its operations run in cfg.Ops; Close closes
// that registry.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Engine == nil || cfg.Engine.Driver == nil || cfg.Store == nil || cfg.Ops == nil || cfg.Images == nil {
		return nil, errors.New("vm service: Engine (with Driver), Store, Ops and Images are required")
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.AddressTimeout <= 0 {
		cfg.AddressTimeout = DefaultAddressTimeout
	}
	if cfg.StartRetries <= 0 {
		cfg.StartRetries = 3
	}
	if cfg.Host == nil {
		cfg.Host = HostResources{DiskDir: cfg.Engine.Dir}
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	return &Service{cfg: cfg, drv: cfg.Engine.Driver, log: cfg.Log}, nil
}

// Close closes the operation registry: running operations (of every
// service that shares it) are cancelled and waited for. Rows of VMs whose
// create was interrupted keep their phase; Reconcile resolves them on the
// next start.
func (s *Service) Close() { s.cfg.Ops.Close() }

// Wait blocks until all operations started so far have ended (for tests).
func (s *Service) Wait() { s.cfg.Ops.Wait() }

// run starts an operation of kind on VM name in the registry (see
// operation.Registry.Run); a busy VM gives an error wrapping operation.ErrBusy.
func (s *Service) run(ctx context.Context, kind operation.Kind, name string, fn operation.Func, opts ...operation.Option) (api.Operation, error) {
	op, err := s.cfg.Ops.Run(ctx, kind, target(name), fn, opts...)
	if err != nil {
		if errors.Is(err, operation.ErrBusy) || errors.Is(err, operation.ErrClosed) {
			err = fmt.Errorf("%s %q: %w", kind, name, err)
		}
		return api.Operation{}, err
	}
	return op.Info(), nil
}

// target is the operation target of VM name.
func target(name string) operation.Target { return operation.VM(name) }

// row returns the store row of name, mapping store.ErrNotFound to ErrNotFound.
func (s *Service) row(ctx context.Context, name string) (store.VM, error) {
	v, err := s.cfg.Store.GetVM(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.VM{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return v, err
}

// update applies fn to the row of name, logging (not returning) failures:
// used from background work where the operation's outcome matters more.
func (s *Service) update(name string, fn func(*store.VM)) {
	if _, err := s.cfg.Store.UpdateVM(context.Background(), name, fn); err != nil {
		s.log.WithField("vm", name).WithError(err).Error("update vm row")
	}
}

// Operation returns operation id: from memory while it is known there, else
// from the store.
func (s *Service) Operation(ctx context.Context, id string) (api.Operation, error) {
	if op, err := s.cfg.Ops.Get(id); err == nil {
		return op.Info(), nil
	}
	row, err := s.cfg.Store.GetOperation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return api.Operation{}, fmt.Errorf("%w: %s", operation.ErrNotFound, id)
	} else if err != nil {
		return api.Operation{}, err
	}
	return opFromRow(row), nil
}

// FollowOperation calls fn with every event of operation id, from the first,
// until the Done event or ctx ends. An operation known only from the store
// (finished long ago, or before a restart) yields one Done event.
func (s *Service) FollowOperation(ctx context.Context, id string, fn func(api.Event) error) error {
	if op, err := s.cfg.Ops.Get(id); err == nil {
		return op.Follow(ctx, fn)
	}
	row, err := s.cfg.Store.GetOperation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", operation.ErrNotFound, id)
	} else if err != nil {
		return err
	}
	ev := api.Event{Operation: row.ID, Stage: row.Stage, Done: true, Status: row.Status, Error: row.Error, Detail: row.Detail}
	if row.Status == api.OpRunning { // recorded running by a galed that is gone
		ev.Status, ev.Error = api.OpFailed, "galed restarted while the operation ran"
	}
	if !row.FinishedAt.IsZero() {
		ev.Elapsed = api.Duration(row.FinishedAt.Sub(row.CreatedAt))
	}
	return fn(ev)
}

func opFromRow(r store.Operation) api.Operation {
	op := api.Operation{ID: r.ID, Kind: r.Kind, Target: r.Target, Status: r.Status, Stage: r.Stage, Error: r.Error, CreatedAt: r.CreatedAt}
	if !r.FinishedAt.IsZero() {
		t := r.FinishedAt
		op.FinishedAt = &t
	}
	return op
}
