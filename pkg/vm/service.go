package vm

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	// SSHKeys are injected into every VM in addition to the request's (galed's own key).
	SSHKeys []string
	// Accel overrides the driver's accelerator for new VMs (empty: the driver's).
	Accel hypervisor.Accel
	// StallTimeout fails a create only when the guest makes no progress
	// (no new stage) for this long. Default DefaultStallTimeout.
	StallTimeout time.Duration
	// AddressTimeout bounds the wait for an address after ready (no address is not an error).
	AddressTimeout time.Duration
	// StartRetries bounds reconcile's attempts to start a VM that should run (default 3).
	StartRetries int
	Log          logrus.FieldLogger
}

// Service is the VM lifecycle behind galed's API: it records desired state
// in the store before it acts, runs long work as operations (one at a time
// per VM) and reads live state from the driver. It is safe for concurrent use.
type Service struct {
	cfg    ServiceConfig
	drv    hypervisor.Driver
	log    logrus.FieldLogger
	ctx    context.Context // background work; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewService returns a Service. Call Close to stop its background work.
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
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, drv: cfg.Engine.Driver, log: cfg.Log, ctx: ctx, cancel: cancel}, nil
}

// Close cancels running operations and waits for their goroutines. Rows of
// VMs whose create was interrupted keep their phase; Reconcile resolves them
// on the next start.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// Wait blocks until all background work started so far has ended (for tests).
func (s *Service) Wait() { s.wg.Wait() }

// background runs fn for op in a goroutine tracked by Close.
func (s *Service) background(op *operation.Op, fn func(ctx context.Context) (detail string, err error)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		detail, err := fn(s.ctx)
		log := s.log.WithFields(logrus.Fields{"vm": op.Info().Target, "op": op.ID(), "kind": op.Info().Kind})
		if err != nil {
			log.WithError(err).Warn("operation failed")
		} else {
			log.Info("operation succeeded")
		}
		op.Done(err, detail)
	}()
}

// begin starts an operation on name; a busy name gives operation.ErrBusy.
func (s *Service) begin(kind, name string) (*operation.Op, error) {
	op, err := s.cfg.Ops.Begin(kind, name)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	return op, nil
}

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
