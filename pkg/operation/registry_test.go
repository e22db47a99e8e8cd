package operation

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
)

// block is a body that runs until its operation is cancelled.
func block(ctx context.Context, _ *Op) (string, error) {
	<-ctx.Done()
	return "", context.Cause(ctx)
}

func wait(t *testing.T, op *Op) api.Operation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := op.Wait(ctx)
	if err != nil {
		t.Fatalf("operation %s did not end: %v", op.ID(), err)
	}
	return info
}

func init() {
	logrus.SetOutput(io.Discard)
}

func TestRunLocks(t *testing.T) {
	ctx := context.Background()
	set := Target{Type: TypeSet, Name: "web"}
	member := func(name string) Target { return Target{Type: TypeVM, Name: name, Parent: &set} }
	tests := []struct {
		name   string
		holder Target // running operation
		under  bool   // the new operation is run by the holder's
		target Target
		busy   bool
	}{
		{"same target", VM("a"), false, VM("a"), true},
		{"other target", VM("a"), false, VM("b"), false},
		{"same name, other type", VM("a"), false, Image("a"), false},
		{"member of a busy set", set, false, member("web-1"), true},
		{"member run by the set's operation", set, true, member("web-1"), false},
		{"set while a member runs", member("web-1"), false, set, false},
		{"member of another set", Target{Type: TypeSet, Name: "db"}, false, member("web-1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(0, nil)
			defer r.Close()
			holder, err := r.Run(ctx, KindCreate, tt.holder, block)
			if err != nil {
				t.Fatal(err)
			}
			var opts []Option
			if tt.under {
				opts = append(opts, Under(holder))
			}
			op, err := r.Run(ctx, KindStart, tt.target, block, opts...)
			if tt.busy != errors.Is(err, ErrBusy) {
				t.Fatalf("Run = %v, want busy %v", err, tt.busy)
			}
			if !tt.busy && r.Active(tt.target) != op.ID() {
				t.Fatalf("Active = %q, want %q", r.Active(tt.target), op.ID())
			}
		})
	}
}

func TestRunOutcomes(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	tests := []struct {
		name    string
		body    Func
		cancel  bool
		status  string
		wantErr string
	}{
		{"success", func(context.Context, *Op) (string, error) { return "", nil }, false, api.OpSucceeded, ""},
		{"failure keeps detail", func(context.Context, *Op) (string, error) { return "tail", boom }, false, api.OpFailed, "boom"},
		{"cancelled", block, true, api.OpCancelled, "operation cancelled: operation cancelled"},
		{"cancelled but finished", func(ctx context.Context, _ *Op) (string, error) { <-ctx.Done(); return "", nil }, true, api.OpSucceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(0, nil)
			defer r.Close()
			op, err := r.Run(ctx, KindCreate, VM("a"), tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.cancel {
				op.Cancel(nil)
			}
			info := wait(t, op)
			if info.Status != tt.status || info.Error != tt.wantErr {
				t.Fatalf("status %q error %q, want %q %q", info.Status, info.Error, tt.status, tt.wantErr)
			}
			if info.Status == api.OpFailed && op.Detail() != "tail" {
				t.Fatalf("detail = %q", op.Detail())
			}
			if r.Active(VM("a")) != "" {
				t.Fatal("target still held")
			}
		})
	}
}

func TestRunPrepare(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	tests := []struct {
		name    string
		prepare error
		status  string
		ran     bool
	}{
		{"prepared", nil, api.OpSucceeded, true},
		{"refused", boom, api.OpFailed, false},
		{"skip body", SkipBody, api.OpSucceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(0, nil)
			defer r.Close()
			ran := make(chan bool, 1)
			op, err := r.Run(ctx, KindPull, Image("x"), func(context.Context, *Op) (string, error) { ran <- true; return "", nil },
				Prepare(func(context.Context, *Op) error { return tt.prepare }))
			if tt.prepare == boom {
				if !errors.Is(err, boom) || op != nil || r.Active(Image("x")) != "" {
					t.Fatalf("Run = %v, %v; want the prepare error and a free target", op, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info := wait(t, op); info.Status != tt.status {
				t.Fatalf("status %q", info.Status)
			}
			r.Wait()
			if got := len(ran) == 1; got != tt.ran {
				t.Fatalf("body ran %v, want %v", got, tt.ran)
			}
		})
	}
}

// TestSupersede: a delete cancels the running create, holds the target at
// once, and runs only after the create has ended.
func TestSupersede(t *testing.T) {
	ctx := context.Background()
	r := New(0, nil)
	defer r.Close()
	undone := make(chan struct{})
	create, err := r.Run(ctx, KindCreate, VM("a"), func(ctx context.Context, _ *Op) (string, error) {
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // the undo takes a while
		close(undone)
		return "", ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx, KindStart, VM("a"), block, Supersede(KindStop)); !errors.Is(err, ErrBusy) {
		t.Fatalf("an operation that supersedes stops took a create's target: %v", err)
	}
	sawUndo := make(chan bool, 1)
	del, err := r.Run(ctx, KindDelete, VM("a"), func(context.Context, *Op) (string, error) {
		select {
		case <-undone:
			sawUndo <- true
		default:
			sawUndo <- false
		}
		return "", nil
	}, Supersede(KindCreate))
	if err != nil {
		t.Fatal(err)
	}
	if r.Active(VM("a")) != del.ID() {
		t.Fatal("the delete does not hold the target")
	}
	if _, err := r.Run(ctx, KindStart, VM("a"), block); !errors.Is(err, ErrBusy) {
		t.Fatalf("start during the handover: %v", err)
	}
	if info := wait(t, create); info.Status != api.OpCancelled {
		t.Fatalf("create ended %q (%s)", info.Status, info.Error)
	}
	if info := wait(t, del); info.Status != api.OpSucceeded || !<-sawUndo {
		t.Fatalf("delete ended %q, or ran before the create's undo", info.Status)
	}
}

func TestCloseCancelsAndRefuses(t *testing.T) {
	r := New(0, nil)
	causes := make(chan error, 1)
	op, err := r.Run(context.Background(), KindCreate, VM("a"), func(ctx context.Context, _ *Op) (string, error) {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return "", ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if cause := <-causes; !errors.Is(cause, ErrClosed) {
		t.Fatalf("cause = %v", cause)
	}
	if op.Info().Status != api.OpFailed {
		t.Fatalf("status after Close = %q, want failed", op.Info().Status)
	}
	if _, err := r.Run(context.Background(), KindCreate, VM("b"), block); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v", err)
	}
}

func TestDo(t *testing.T) {
	r := New(0, nil)
	defer r.Close()
	boom := errors.New("boom")
	op, err := r.Do(context.Background(), KindDelete, Image("x"), func(context.Context, *Op) error { return boom })
	if !errors.Is(err, boom) || op.Info().Status != api.OpFailed || r.Active(Image("x")) != "" {
		t.Fatalf("Do = %v, status %q", err, op.Info().Status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Do(ctx, KindReconcile, VM("a"), func(ctx context.Context, _ *Op) error { return ctx.Err() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do with a cancelled context = %v", err)
	}
}
