package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/api"
)

func TestReadEvents(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []string
	}{
		{"one event", "data: {\"a\":1}\n\n", []string{`{"a":1}`}},
		{"no space after colon", "data:x\n\n", []string{"x"}},
		{"heartbeats and comments", ": ping\n\ndata: a\n: ping\ndata: b\n\n: ping\n\n", []string{"a\nb"}},
		{"multi-line data", "data: {\"stage\":\ndata: \"boot\"}\n\n", []string{"{\"stage\":\n\"boot\"}"}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		{"other fields ignored", "event: progress\nid: 7\nretry: 1000\ndata: a\n\n", []string{"a"}},
		{"event without data", "event: x\n\ndata: a\n\n", []string{"a"}},
		{"unterminated event dropped", "data: a\n\ndata: b", []string{"a"}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := readEvents(strings.NewReader(tt.stream), func(d string) error {
				got = append(got, d)
				return nil
			})
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("events = %q, want %q", got, tt.want)
			}
		})
	}
}

// sseHandler writes chunks as a text/event-stream, flushing after each and
// pausing between them so the client sees them arrive late.
func sseHandler(chunks ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "want text/event-stream", 406)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for _, c := range chunks {
			fmt.Fprint(w, c)
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestWatchOperation(t *testing.T) {
	stages := "data: {\"operation\":\"op1\",\"stage\":\"disk\",\"elapsed\":\"1s\"}\n\n" +
		": ping\n\n" +
		"data: {\"operation\":\"op1\",\n" +
		"data: \"stage\":\"boot\",\"message\":\"waiting for the agent\",\"elapsed\":\"5s\"}\n\n"
	tests := []struct {
		name       string
		chunks     []string
		opStatus   string // what GET /v1/operations/op1 says
		wantStages []string
		wantErr    error
		check      func(t *testing.T, err error)
	}{
		{
			name:       "succeeded",
			chunks:     []string{stages, "data: {\"operation\":\"op1\",\"stage\":\"ready\",\"done\":true,\"status\":\"succeeded\",\"elapsed\":\"9s\"}\n\n"},
			wantStages: []string{"disk", "boot", "ready"},
		},
		{
			name: "failed with detail",
			chunks: []string{stages, "data: {\"operation\":\"op1\",\"stage\":\"cloud-init\",\"done\":true,\"status\":\"failed\"," +
				"\"error\":\"cloud-init failed in module scripts_user\",\"detail\":\"+ apt-get install nginx\\nE: Unable to locate package\"}\n\n"},
			wantStages: []string{"disk", "boot", "cloud-init"},
			wantErr:    ErrOperationFailed,
			check: func(t *testing.T, err error) {
				var oe *OperationError
				if !errors.As(err, &oe) {
					t.Fatalf("error %T is not *OperationError", err)
				}
				want := OperationError{Operation: "op1", Status: api.OpFailed, Stage: "cloud-init", Message: "cloud-init failed in module scripts_user",
					Detail: "+ apt-get install nginx\nE: Unable to locate package"}
				if *oe != want {
					t.Fatalf("error = %+v\nwant    %+v", *oe, want)
				}
				if got := err.Error(); got != "operation op1 failed at stage cloud-init: cloud-init failed in module scripts_user" {
					t.Fatalf("message = %q", got)
				}
			},
		},
		{
			name:       "events after done are not read",
			chunks:     []string{"data: {\"stage\":\"ready\",\"done\":true,\"status\":\"succeeded\"}\n\ndata: {\"stage\":\"bogus\"}\n\n"},
			wantStages: []string{"ready"},
		},
		{
			name:       "stream cut, operation succeeded meanwhile",
			chunks:     []string{stages},
			opStatus:   api.OpSucceeded,
			wantStages: []string{"disk", "boot"},
		},
		{
			name:       "stream cut, operation failed",
			chunks:     []string{stages},
			opStatus:   api.OpFailed,
			wantStages: []string{"disk", "boot"},
			wantErr:    ErrOperationFailed,
		},
		{
			name:       "stream cut, operation still running",
			chunks:     []string{stages},
			opStatus:   api.OpRunning,
			wantStages: []string{"disk", "boot"},
			wantErr:    io.ErrUnexpectedEOF,
		},
		{
			name:   "bad json",
			chunks: []string{"data: {nope\n\n"},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "bad event from operation op1") {
					t.Fatalf("err = %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET "+api.OperationEventsPath, sseHandler(tt.chunks...))
			mux.HandleFunc("GET "+api.OperationPath, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, api.Operation{ID: "op1", Status: tt.opStatus, Stage: "boot", Error: "boom"})
			})
			c := serve(t, mux)
			var got []string
			err := c.WatchOperation(ctx(t), "op1", func(ev api.Event) { got = append(got, ev.Stage) })
			if tt.check != nil {
				tt.check(t, err)
				return
			}
			if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.wantStages) {
				t.Fatalf("stages = %q, want %q", got, tt.wantStages)
			}
		})
	}
}

func TestWatchOperationNotFound(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.OperationEventsPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, api.Error{Error: "operation op9 not found", Code: api.CodeNotFound})
	})
	c := serve(t, mux)
	if err := c.WatchOperation(ctx(t), "op9", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestWatchOperationContext(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.OperationEventsPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"stage\":\"boot\"}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // never finishes
	})
	c := serve(t, mux)
	cctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var stages int
	err := c.WatchOperation(cctx, "op1", func(api.Event) { stages++ })
	if !errors.Is(err, context.DeadlineExceeded) || stages != 1 {
		t.Fatalf("err = %v after %d events, want DeadlineExceeded after 1", err, stages)
	}
}
