// Package operation is galed's registry of long-running work (create,
// delete, start, stop, restart). Each operation has an ID, records stage
// events with the time elapsed since it began, fans them out to any number of
// subscribers (a late subscriber first gets every event so far) and ends with
// one event with Done set.
//
// At most one operation runs per target (VM name): Begin on a busy target
// fails at once with ErrBusy; it never waits.
package operation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrBusy: another operation is running on the same target.
	ErrBusy = errdefs.New(errdefs.Conflict, "another operation is in progress")
	// ErrNotFound: no operation with that ID.
	ErrNotFound = errdefs.New(errdefs.NotFound, "operation not found")
)

// Recorder persists operations. Errors are logged by the caller, never fatal.
type Recorder interface {
	Record(op api.Operation, detail string)
}

// Registry tracks operations. The zero value is not usable; call New.
type Registry struct {
	mu       sync.Mutex
	ops      map[string]*Op
	active   map[string]*Op // by target
	finished []string       // IDs of finished operations, oldest first
	keep     int
	rec      Recorder
	now      func() time.Time
}

// New returns a registry that keeps the last keep finished operations in
// memory (for Get and late subscribers) and persists through rec (may be nil).
func New(keep int, rec Recorder) *Registry {
	if keep <= 0 {
		keep = 256
	}
	return &Registry{ops: map[string]*Op{}, active: map[string]*Op{}, keep: keep, rec: rec, now: time.Now}
}

// Op is one operation in progress or finished. Its methods are safe for
// concurrent use.
type Op struct {
	reg     *Registry
	mu      sync.Mutex
	info    api.Operation
	detail  string
	start   time.Time
	events  []api.Event
	changed chan struct{} // closed and replaced on every new event
}

// Begin starts an operation of kind on target. It fails with ErrBusy (naming
// the running operation) when target already has one.
func (r *Registry) Begin(kind, target string) (*Op, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.active[target]; ok {
		info := cur.Info()
		return nil, fmt.Errorf("%w on %q: %s %s (stage %q)", ErrBusy, target, info.Kind, info.ID, info.Stage)
	}
	now := r.now()
	op := &Op{
		reg:     r,
		info:    api.Operation{ID: newID(), Kind: kind, Target: target, Status: api.OpRunning, CreatedAt: now.UTC()},
		start:   now,
		changed: make(chan struct{}),
	}
	r.ops[op.info.ID] = op
	r.active[target] = op
	r.record(op)
	return op, nil
}

// Active returns the ID of the operation running on target, or "".
func (r *Registry) Active(target string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if op, ok := r.active[target]; ok {
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

func (r *Registry) record(op *Op) {
	if r.rec != nil {
		r.rec.Record(op.Info(), op.Detail())
	}
}

// finish releases op's target and forgets the oldest finished operations.
func (r *Registry) finish(op *Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[op.info.Target] == op {
		delete(r.active, op.info.Target)
	}
	r.finished = append(r.finished, op.info.ID)
	for len(r.finished) > r.keep {
		delete(r.ops, r.finished[0])
		r.finished = r.finished[1:]
	}
	r.record(op)
}

// ID returns the operation's ID.
func (o *Op) ID() string { return o.info.ID }

// Info returns a snapshot of the operation.
func (o *Op) Info() api.Operation {
	o.mu.Lock()
	defer o.mu.Unlock()
	info := o.info
	if info.FinishedAt != nil {
		t := *info.FinishedAt
		info.FinishedAt = &t
	}
	return info
}

// Detail returns the failure detail (e.g. a log tail), if any.
func (o *Op) Detail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.detail
}

// Stage records that the operation reached stage, with an optional message.
// Stages after Done are ignored.
func (o *Op) Stage(stage, message string) {
	o.mu.Lock()
	if o.info.Status != api.OpRunning {
		o.mu.Unlock()
		return
	}
	o.info.Stage = stage
	o.appendLocked(api.Event{Stage: stage, Message: message})
	o.mu.Unlock()
}

// Done ends the operation: succeeded when err is nil, failed otherwise, with
// detail as extra lines for the user. The target is free again before the
// Done event is published. Only the first call has an effect.
func (o *Op) Done(err error, detail string) {
	o.mu.Lock()
	if o.info.Status != api.OpRunning {
		o.mu.Unlock()
		return
	}
	now := o.reg.now().UTC()
	o.info.FinishedAt = &now
	ev := api.Event{Stage: o.info.Stage, Done: true}
	if err != nil {
		o.info.Status = api.OpFailed
		o.info.Error = err.Error()
		o.detail = detail
		ev.Error = err.Error()
		ev.Detail = detail
	} else {
		o.info.Status = api.OpSucceeded
	}
	ev.Status = o.info.Status
	o.mu.Unlock()
	// Release the target before subscribers learn the outcome, so a client
	// that acts on the Done event is never refused as busy.
	o.reg.finish(o)
	o.mu.Lock()
	o.appendLocked(ev)
	o.mu.Unlock()
}

func (o *Op) appendLocked(ev api.Event) {
	ev.Operation = o.info.ID
	ev.Elapsed = api.Duration(o.reg.now().Sub(o.start))
	o.events = append(o.events, ev)
	close(o.changed)
	o.changed = make(chan struct{})
}

// Events returns every event so far and a channel that is closed when there
// are more (or never, once the last event has Done set).
func (o *Op) Events() ([]api.Event, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]api.Event(nil), o.events...), o.changed
}

// Follow calls fn with every event of the operation in order, from the first,
// until the event with Done set has been passed or ctx ends. fn never misses
// or repeats an event, and a slow fn never blocks the operation.
func (o *Op) Follow(ctx context.Context, fn func(api.Event) error) error {
	next := 0
	for {
		events, changed := o.Events()
		for ; next < len(events); next++ {
			if err := fn(events[next]); err != nil {
				return err
			}
			if events[next].Done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Wait blocks until the operation is done (or ctx ends) and returns its final state.
func (o *Op) Wait(ctx context.Context) (api.Operation, error) {
	err := o.Follow(ctx, func(api.Event) error { return nil })
	return o.Info(), err
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "op-" + hex.EncodeToString(b)
}
