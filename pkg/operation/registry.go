package operation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
)

// Registry tracks and runs operations. The zero value is not usable; call New.
type Registry struct {
	mu       sync.Mutex
	ops      map[string]*Op
	active   map[string]*Op // by Target.Key
	finished []string       // IDs of finished operations, oldest first
	keep     int
	rec      Recorder
	now      func() time.Time
	log      logrus.FieldLogger

	base   context.Context // parent of every operation's context
	close  context.CancelCauseFunc
	closed bool
	wg     sync.WaitGroup // operations begun and not done
}

// New returns a registry that keeps the last keep finished operations in
// memory (for Get and late subscribers) and persists through rec (may be nil).
func New(keep int, rec Recorder) *Registry {
	if keep <= 0 {
		keep = 256
	}
	base, closeFn := context.WithCancelCause(context.Background())
	return &Registry{
		ops: map[string]*Op{}, active: map[string]*Op{}, keep: keep, rec: rec, now: time.Now,
		log: logrus.StandardLogger(), base: base, close: closeFn,
	}
}

// SetLogger sets where Run logs the outcome of operations (default: logrus's
// standard logger).
func (r *Registry) SetLogger(log logrus.FieldLogger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = log
}

// Close cancels every running operation (their contexts end with cause
// ErrClosed), waits until all have ended, and refuses new ones with
// ErrClosed. It is idempotent.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.close(ErrClosed)
	r.wg.Wait()
}

// Wait blocks until every operation begun so far has ended (for tests).
func (r *Registry) Wait() { r.wg.Wait() }

// Func is the body of an operation. It returns the failure detail (extra
// lines for the user, e.g. a log tail) with its error. It must return soon
// after ctx ends.
type Func func(ctx context.Context, op *Op) (detail string, err error)

// Option tunes Run and Do.
type Option func(*options)

type options struct {
	prepare   func(ctx context.Context, op *Op) error
	supersede []Kind
	owner     *Op
}

// Prepare runs fn before Run returns, with the request's context and the
// target held, e.g. to record desired state before the work starts. An error
// ends the operation as failed and Run returns it; SkipBody ends it as
// succeeded without running the body.
func Prepare(fn func(ctx context.Context, op *Op) error) Option {
	return func(o *options) { o.prepare = fn }
}

// Supersede lets the new operation take over a target whose running
// operation is of one of kinds: that operation is cancelled (cause wraps
// ErrCancelled and names the new operation), the new one holds the target
// at once, and its body runs once the old one has ended (its undo done).
// Prepare runs before the old operation has ended.
func Supersede(kinds ...Kind) Option {
	return func(o *options) { o.supersede = kinds }
}

// Under makes the new operation a member operation of owner: it may take a
// target whose parent owner holds (a set's scale-out creating a member VM).
func Under(owner *Op) Option {
	return func(o *options) { o.owner = owner }
}

// Run starts an operation of kind on target and runs fn in a goroutine of
// the registry, with the operation's context; it ends the operation with
// fn's outcome and logs it. It returns the operation as soon as it is
// started (and prepared, see Prepare). A busy target (or parent) gives
// ErrBusy naming the running operation, a closed registry ErrClosed.
func (r *Registry) Run(ctx context.Context, kind Kind, target Target, fn Func, opts ...Option) (*Op, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	op, prev, err := r.begin(kind, target, o)
	if err != nil {
		return nil, err
	}
	if o.prepare != nil {
		if err := o.prepare(ctx, op); err != nil {
			if errors.Is(err, SkipBody) {
				err = nil
			}
			r.end(op, "", err)
			if err != nil {
				return nil, err
			}
			return op, nil
		}
	}
	go func() {
		if prev != nil {
			op.Stage("cancel", fmt.Sprintf("cancelling %s %s", prev.kind, prev.ID()))
			select {
			case <-prev.Ended():
			case <-op.ctx.Done():
				r.end(op, "", fmt.Errorf("waiting for %s %s to end: %w", prev.kind, prev.ID(), context.Cause(op.ctx)))
				return
			}
		}
		detail, err := fn(op.ctx, op)
		r.end(op, detail, err)
	}()
	return op, nil
}

// Do runs a short operation of kind on target in the caller's goroutine:
// fn gets a context that ends with ctx, with Cancel or with Close. It
// returns the finished operation and fn's error, or ErrBusy / ErrClosed
// (and a nil operation) when the operation could not begin. Supersede is
// ignored. Unlike Run, Do leaves logging the outcome to its caller.
func (r *Registry) Do(ctx context.Context, kind Kind, target Target, fn func(ctx context.Context, op *Op) error, opts ...Option) (*Op, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.supersede = nil
	op, _, err := r.begin(kind, target, o)
	if err != nil {
		return nil, err
	}
	// fn's context ends with the caller's, and with op's (Cancel, Close).
	fctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	unhook := context.AfterFunc(op.ctx, func() { stop(context.Cause(op.ctx)) })
	defer unhook()
	if o.prepare != nil {
		if err = o.prepare(fctx, op); errors.Is(err, SkipBody) {
			op.Done(nil, "")
			return op, nil
		}
	}
	if err == nil {
		err = fn(fctx, op)
	}
	op.Done(err, "")
	return op, err
}

// Begin starts an operation of kind on target that the caller runs itself
// and must end with Done. Prefer Run or Do.
func (r *Registry) Begin(kind Kind, target Target) (*Op, error) {
	op, _, err := r.begin(kind, target, options{})
	return op, err
}

// begin registers a new operation on target, applying the lock rules (see
// the package doc). With a supersede match it returns the operation it
// cancelled as prev.
func (r *Registry) begin(kind Kind, target Target, o options) (op, prev *Op, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, ErrClosed
	}
	if cur, ok := r.active[target.Key()]; ok {
		if !slices.Contains(o.supersede, cur.kind) {
			return nil, nil, busy(target, cur)
		}
		prev = cur
	}
	for _, p := range target.ancestors() {
		if cur, ok := r.active[p.Key()]; ok && (o.owner == nil || !o.owner.runBy(cur)) {
			return nil, nil, busy(p, cur)
		}
	}
	now := r.now()
	ctx, cancel := context.WithCancelCause(r.base)
	op = &Op{
		reg: r, kind: kind, target: target, owner: o.owner, ctx: ctx, cancel: cancel, ended: make(chan struct{}),
		info:    api.Operation{ID: newID(), Kind: string(kind), Target: target.String(), Status: api.OpRunning, CreatedAt: now.UTC()},
		start:   now,
		changed: make(chan struct{}),
	}
	if prev != nil {
		prev.Cancel(fmt.Errorf("%w by %s %s", ErrCancelled, kind, op.ID()))
	}
	r.ops[op.info.ID] = op
	r.active[target.Key()] = op
	r.wg.Add(1)
	r.recordLocked(op)
	return op, prev, nil
}

func busy(t Target, cur *Op) error {
	info := cur.Info()
	return fmt.Errorf("%w on %q: %s %s (stage %q)", ErrBusy, t.String(), info.Kind, info.ID, info.Stage)
}

// end ends op with the outcome of its work and logs it.
func (r *Registry) end(op *Op, detail string, err error) {
	r.mu.Lock()
	log := r.log
	r.mu.Unlock()
	log = log.WithFields(logrus.Fields{"op": op.ID(), "kind": op.kind, string(op.target.Type): op.target.Name})
	op.Done(err, detail)
	switch info := op.Info(); info.Status {
	case api.OpSucceeded:
		log.Info("operation succeeded")
	case api.OpCancelled:
		log.WithError(err).Info("operation cancelled")
	default:
		log.WithError(err).Warn("operation failed")
	}
}

// Active returns the ID of the operation running on target, or "".
func (r *Registry) Active(target Target) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if op, ok := r.active[target.Key()]; ok {
		return op.info.ID
	}
	return ""
}

// Get returns the operation with id, or ErrNotFound when it is unknown or has
// been forgotten.
func (r *Registry) Get(id string) (*Op, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op, ok := r.ops[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return op, nil
}

func (r *Registry) recordLocked(op *Op) {
	if r.rec != nil {
		r.rec.Record(op.Info(), op.Detail())
	}
}

// finish releases op's target, forgets the oldest finished operations and
// records op's outcome.
func (r *Registry) finish(op *Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[op.target.Key()] == op {
		delete(r.active, op.target.Key())
	}
	r.finished = append(r.finished, op.info.ID)
	for len(r.finished) > r.keep {
		delete(r.ops, r.finished[0])
		r.finished = r.finished[1:]
	}
	r.recordLocked(op)
	r.wg.Done()
}
