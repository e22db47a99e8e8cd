package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/galevm/gale/pkg/api"
)

// operationEvents streams an operation's events as server-sent events: one
// "data: <json api.Event>" per event, flushed at once, from the first event
// (late subscribers get the history) to the one with Done set. An idle stream
// gets a ": heartbeat" comment every Heartbeat.
func (s *Server) operationEvents(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := s.cfg.Operations.Operation(r.Context(), id); err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	var mu sync.Mutex // serialises events and heartbeats
	ctx, cancel := context.WithCancel(r.Context())
	hbDone := make(chan struct{})
	defer func() { cancel(); <-hbDone }() // no write to w after return
	go func() {
		defer close(hbDone)
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				mu.Lock()
				_, err := fmt.Fprint(w, ": heartbeat\n\n")
				if err == nil {
					err = rc.Flush()
				}
				mu.Unlock()
				if err != nil {
					cancel()
					return
				}
			}
		}
	}()
	err := s.cfg.Operations.FollowOperation(ctx, id, func(ev api.Event) error {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && ctx.Err() == nil {
		s.log.WithField("op", id).WithError(err).Debug("event stream ended")
	}
	return nil
}
