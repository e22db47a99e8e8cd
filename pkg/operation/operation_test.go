package operation

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/api"
)

type memRecorder struct {
	mu  sync.Mutex
	ops []api.Operation
}

func (m *memRecorder) Record(op api.Operation, _ string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops = append(m.ops, op)
}

func TestBeginIsExclusivePerTarget(t *testing.T) {
	r := New(0, nil)
	a, err := r.Begin(Kind("create"), VM("web"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, kind, target string
		want               error
	}{
		{"same target", "delete", "web", ErrBusy},
		{"other target", "create", "db", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Begin(Kind(tt.kind), VM(tt.target))
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("Begin = %v, want %v", err, tt.want)
			}
		})
	}
	if got := r.Active(VM("web")); got != a.ID() {
		t.Fatalf("Active = %q, want %q", got, a.ID())
	}
	a.Done(nil, "")
	if got := r.Active(VM("web")); got != "" {
		t.Fatalf("Active after Done = %q", got)
	}
	if _, err := r.Begin(Kind("delete"), VM("web")); err != nil {
		t.Fatalf("Begin after Done: %v", err)
	}
}

func TestEventsReplayAndFanOut(t *testing.T) {
	rec := &memRecorder{}
	r := New(0, rec)
	op, _ := r.Begin(Kind("create"), VM("web"))
	op.Stage("disk", "")
	op.Stage("seed", "")

	collect := func() chan []api.Event {
		out := make(chan []api.Event, 1)
		go func() {
			var got []api.Event
			_ = op.Follow(context.Background(), func(ev api.Event) error { got = append(got, ev); return nil })
			out <- got
		}()
		return out
	}
	early := collect()
	op.Stage("define", "")
	op.Done(errors.New("boom"), "tail of log")
	late := collect() // subscribes after Done: gets the full history

	for name, ch := range map[string]chan []api.Event{"early": early, "late": late} {
		t.Run(name, func(t *testing.T) {
			select {
			case got := <-ch:
				stages := []string{"disk", "seed", "define", "define"}
				if len(got) != len(stages) {
					t.Fatalf("got %d events: %+v", len(got), got)
				}
				for i, s := range stages {
					if got[i].Stage != s || got[i].Operation != op.ID() {
						t.Fatalf("event %d = %+v, want stage %s", i, got[i], s)
					}
				}
				last := got[len(got)-1]
				if !last.Done || last.Status != api.OpFailed || last.Error != "boom" || last.Detail != "tail of log" {
					t.Fatalf("last = %+v", last)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Follow did not end")
			}
		})
	}
	info := op.Info()
	if info.Status != api.OpFailed || info.FinishedAt == nil || info.Error != "boom" {
		t.Fatalf("Info = %+v", info)
	}
	op.Stage("late", "")
	op.Done(nil, "")
	if op.Info().Status != api.OpFailed {
		t.Fatal("second Done changed the outcome")
	}
	if len(rec.ops) != 2 || rec.ops[0].Status != api.OpRunning || rec.ops[1].Status != api.OpFailed {
		t.Fatalf("recorded %+v", rec.ops)
	}
}

func TestFollowHonoursContext(t *testing.T) {
	r := New(0, nil)
	op, _ := r.Begin(Kind("create"), VM("web"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := op.Follow(ctx, func(api.Event) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Follow = %v", err)
	}
}

func TestForgetsOldFinished(t *testing.T) {
	r := New(2, nil)
	var ids []string
	for i := 0; i < 3; i++ {
		op, _ := r.Begin(Kind("start"), VM("web"))
		op.Done(nil, "")
		ids = append(ids, op.ID())
	}
	if _, err := r.Get(ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest kept: %v", err)
	}
	for _, id := range ids[1:] {
		if _, err := r.Get(id); err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
	}
}
