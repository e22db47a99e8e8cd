package server

import (
	"context"
	"net/http"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/server/httpapi"
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
	return httpapi.Stream(w, r, s.cfg.Heartbeat, func(ctx context.Context, send func(any) error) error {
		err := s.cfg.Operations.FollowOperation(ctx, id, func(ev api.Event) error { return send(ev) })
		if err != nil && ctx.Err() == nil {
			s.log.WithField("op", id).WithError(err).Debug("event stream ended")
		}
		return err
	})
}
