// Package operation is galed's one runner of long work: VM create, delete,
// start, stop, restart and reconcile, image pull, build, import and delete.
//
// Registry.Run starts an operation of a Kind on a Target and runs its body in
// a goroutine the registry owns; Registry.Do runs a short one in the caller's
// goroutine. Either way the registry records stage events with the time
// elapsed since the operation began, fans them out to any number of
// subscribers (a late subscriber first gets every event so far), persists the
// operation through its Recorder, cancels it on request or at Close, and ends
// it with one event with Done set.
//
// Locks: at most one operation runs per target, and an operation on a
// target's parent (a scale set) also holds the target (its member VMs),
// unless the new operation is run by the parent's operation itself (Under).
// A busy target fails at once with ErrBusy (a conflict); the registry never
// queues, except that an operation may supersede a running one of given kinds
// (Supersede: a VM delete cancels that VM's create and runs after it).
package operation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrBusy: another operation holds the target (or its parent).
	ErrBusy = errdefs.New(errdefs.Conflict, "another operation is in progress")
	// ErrNotFound: no operation with that ID.
	ErrNotFound = errdefs.New(errdefs.NotFound, "operation not found")
	// ErrClosed: the registry is closed (galed is shutting down). It is the
	// cause of the context of operations that Close cancels.
	ErrClosed = errdefs.New(errdefs.Unavailable, "galed is shutting down")
	// ErrCancelled: the operation was cancelled. Causes given to Cancel
	// should wrap it.
	ErrCancelled = errdefs.New(errdefs.Conflict, "operation cancelled")
)

// SkipBody, returned by a Prepare function, ends the operation as succeeded
// without running its body (e.g. the image it would make is already there).
var SkipBody = errors.New("skip the operation's body")

// Recorder persists operations. Errors are logged by the caller, never fatal.
type Recorder interface {
	Record(op api.Operation, detail string)
}

// Op is one operation in progress or finished. Its methods are safe for
// concurrent use.
type Op struct {
	reg    *Registry
	kind   Kind
	target Target
	owner  *Op // the operation that runs this one (Under), if any

	ctx    context.Context // the body's context; cancelled by Cancel or Close
	cancel context.CancelCauseFunc
	ended  chan struct{} // closed once the operation is done and its target free

	mu        sync.Mutex
	info      api.Operation
	detail    string
	start     time.Time
	events    []api.Event
	changed   chan struct{} // closed and replaced on every new event
	cancelled error         // the cause given to Cancel, if any
}

// ID returns the operation's ID.
func (o *Op) ID() string { return o.info.ID }

// Kind returns the operation's kind.
func (o *Op) Kind() Kind { return o.kind }

// Target returns the operation's target.
func (o *Op) Target() Target { return o.target }

// Context is the operation's context: it ends when the operation is
// cancelled (cause: the Cancel argument) or the registry is closed (cause
// ErrClosed).
func (o *Op) Context() context.Context { return o.ctx }

// Ended is closed once the operation is done and its target is free.
func (o *Op) Ended() <-chan struct{} { return o.ended }

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

// Cancel asks the operation to stop: its context ends with cause (which
// should wrap ErrCancelled). A body that then returns an error ends the
// operation with status cancelled; one that returns nil still succeeds.
// Cancelling a finished operation does nothing.
func (o *Op) Cancel(cause error) {
	if cause == nil {
		cause = ErrCancelled
	}
	o.mu.Lock()
	if o.info.Status == api.OpRunning && o.cancelled == nil {
		o.cancelled = cause
	}
	o.mu.Unlock()
	o.cancel(cause)
}

// Done ends the operation: succeeded when err is nil, cancelled when err is
// not nil after Cancel, failed otherwise, with detail as extra lines for the
// user. The target is free again before the Done event is published. Only
// the first call has an effect. Run and Do call it; callers of Begin must.
func (o *Op) Done(err error, detail string) {
	o.mu.Lock()
	if o.info.Status != api.OpRunning {
		o.mu.Unlock()
		return
	}
	now := o.reg.now().UTC()
	o.info.FinishedAt = &now
	ev := api.Event{Stage: o.info.Stage, Done: true}
	switch {
	case err == nil:
		o.info.Status = api.OpSucceeded
	case o.cancelled != nil:
		o.info.Status = api.OpCancelled
		o.info.Error = fmt.Sprintf("%v: %v", o.cancelled, err)
	default:
		o.info.Status = api.OpFailed
		o.info.Error = err.Error()
		o.detail = detail
	}
	ev.Status, ev.Error, ev.Detail = o.info.Status, o.info.Error, o.detail
	o.mu.Unlock()
	o.cancel(nil) // release the context's resources
	// Release the target before subscribers learn the outcome, so a client
	// that acts on the Done event is never refused as busy.
	o.reg.finish(o)
	o.mu.Lock()
	o.appendLocked(ev)
	o.mu.Unlock()
	close(o.ended)
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

// runBy reports whether o is a, or is run (through Under) by a.
func (o *Op) runBy(a *Op) bool {
	for p := o; p != nil; p = p.owner {
		if p == a {
			return true
		}
	}
	return false
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "op-" + hex.EncodeToString(b)
}
