// Package httpapi is what a service needs to serve its part of galed's API
// without importing pkg/server: the Router it registers its routes with,
// the handler signature, and helpers to decode requests and encode answers.
// A handler returns its error; the server turns it into the api.Error
// envelope with the status of the error's kind (see pkg/errdefs).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
)

// ErrInvalidBody: the request body (or query) is not valid for the route.
var ErrInvalidBody = errdefs.New(errdefs.Invalid, "invalid request body")

// HandlerFunc serves one route. It either writes a whole answer and returns
// nil, or writes nothing and returns the error to answer with.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Router takes a service's routes. pattern is a net/http ServeMux pattern
// with a method, e.g. "GET " + api.VMPath.
type Router interface {
	Handle(pattern string, h HandlerFunc)
}

// Service is a service with routes of its own.
type Service interface {
	// Routes registers the service's routes with r.
	Routes(r Router)
}

// Decode reads a JSON body into v, refusing unknown fields. An empty body
// leaves v unchanged when optional is true. Errors wrap ErrInvalidBody.
func Decode(r *http.Request, v any, optional bool) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if optional && errors.Is(err, io.EOF) {
			return nil
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("%w: larger than %d bytes", ErrInvalidBody, tooBig.Limit)
		}
		return fmt.Errorf("%w: %w", ErrInvalidBody, err)
	}
	return nil
}

// JSON answers status with v encoded as JSON. It returns nil: once the
// header is written there is no other answer to give.
func JSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}

// Accepted returns a function that answers 202 with the operation a call
// started, or returns the call's error: Accepted(w)(svc.Start(ctx, name)).
func Accepted(w http.ResponseWriter) func(api.Operation, error) error {
	return func(op api.Operation, err error) error {
		if err != nil {
			return err
		}
		return JSON(w, http.StatusAccepted, op)
	}
}

type peerKey struct{}

// Peer is who is on the other end of a unix-socket connection.
type Peer struct {
	UID   int
	Known bool // false when the credentials could not be read
}

// WithPeer returns ctx carrying p (the server sets it per connection).
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerOf returns the Peer recorded in ctx (unknown if none).
func PeerOf(ctx context.Context) Peer {
	p, _ := ctx.Value(peerKey{}).(Peer)
	return p
}

// Stream answers with a server-sent event stream: run gets a send function
// that writes v as one "data: <json>" event and flushes it; the stream
// ends when run returns (its error is logged by nobody: the status is
// already written). An idle stream gets a ": heartbeat" comment every
// heartbeat, so proxies and clients see it alive.
func Stream(w http.ResponseWriter, r *http.Request, heartbeat time.Duration, run func(ctx context.Context, send func(v any) error) error) error {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(r.Context())
	hbDone := make(chan struct{})
	defer func() { cancel(); <-hbDone }()
	write := func(s string) error {
		mu.Lock()
		defer mu.Unlock()
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
		return rc.Flush()
	}
	go func() {
		defer close(hbDone)
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if write(": heartbeat\n\n") != nil {
					cancel()
					return
				}
			}
		}
	}()
	_ = run(ctx, func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return write("data: " + string(b) + "\n\n")
	})
	return nil
}
