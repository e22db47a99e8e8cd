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
