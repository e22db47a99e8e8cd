package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
)

// Sentinels matched by *Error with errors.Is, one per api error code. Each
// is of the error kind of its code, so errdefs.KindOf(err) of an *Error is
// the kind galed's error had.
var (
	ErrInvalid      = errdefs.New(errdefs.Invalid, "invalid request")
	ErrNotFound     = errdefs.New(errdefs.NotFound, "not found")
	ErrConflict     = errdefs.New(errdefs.Conflict, "conflict")
	ErrInsufficient = errdefs.New(errdefs.Insufficient, "insufficient host resources")
	ErrUnavailable  = errdefs.New(errdefs.Unavailable, "service unavailable")
	ErrTimedOut     = errdefs.New(errdefs.TimedOut, "timed out")
	ErrInternal     = errdefs.New(errdefs.Internal, "internal error")
)

// ErrUnreachable matches errors for a galed that cannot be reached: no
// socket, nobody listening, or no permission to connect.
var ErrUnreachable = errors.New("galed unreachable")

// ErrOperationFailed matches the error WatchOperation returns when the
// operation finished with status failed.
var ErrOperationFailed = errors.New("operation failed")

// Error is a non-2xx answer from galed, decoded from the api.Error envelope.
type Error struct {
	Status  int    // HTTP status code
	Code    string // api.Code* value
	Message string // the envelope's error text
}

// Error returns galed's message, which already says what went wrong.
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("galed answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// Unwrap returns the sentinel of e's code (nil for an unknown code), so
// errors.Is matches it and errdefs.KindOf returns its kind.
func (e *Error) Unwrap() error { return sentinelFor(e.Code) }

// sentinelFor maps an api error code to its sentinel (nil for unknown codes).
func sentinelFor(code string) error {
	switch code {
	case api.CodeInvalid:
		return ErrInvalid
	case api.CodeNotFound:
		return ErrNotFound
	case api.CodeConflict:
		return ErrConflict
	case api.CodeInsufficient:
		return ErrInsufficient
	case api.CodeUnavailable:
		return ErrUnavailable
	case api.CodeTimedOut:
		return ErrTimedOut
	case api.CodeInternal:
		return ErrInternal
	}
	return nil
}

// codeForStatus guesses the code of an answer that carried no envelope.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return api.CodeInvalid
	case http.StatusNotFound:
		return api.CodeNotFound
	case http.StatusConflict:
		return api.CodeConflict
	case http.StatusUnprocessableEntity:
		return api.CodeInsufficient
	case http.StatusServiceUnavailable:
		return api.CodeUnavailable
	case http.StatusGatewayTimeout:
		return api.CodeTimedOut
	}
	return api.CodeInternal
}

// decodeError reads a non-2xx response into *Error. A body that is not the
// envelope (a proxy's text, an empty body) still yields an *Error whose code
// follows the status.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode}
	var env api.Error
	if err := json.Unmarshal(b, &env); err == nil && (env.Error != "" || env.Code != "") {
		e.Code, e.Message = env.Code, env.Error
	} else {
		e.Message = strings.TrimSpace(string(b))
	}
	if e.Code == "" {
		e.Code = codeForStatus(resp.StatusCode)
	}
	return e
}

// UnreachableError says that galed could not be reached at Socket and what
// to try. It matches ErrUnreachable.
type UnreachableError struct {
	Socket string
	Hint   string
	Err    error // the dial error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach galed at %s: %s", e.Socket, e.Hint)
}

// Unwrap returns the sentinel and the dial error, so both match errors.Is.
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// OperationError is an operation that finished with status failed (or
// cancelled). It matches ErrOperationFailed.
type OperationError struct {
	Operation string // operation ID
	Status    string // api.OpFailed, or api.OpCancelled; "" means failed
	Stage     string // stage it failed in
	Message   string // Event.Error
	Detail    string // Event.Detail: failing module, tail of cloud-init's log, ...
}

func (e *OperationError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "no reason given"
	}
	verb := "failed"
	if e.Status == api.OpCancelled {
		verb = "was cancelled"
	}
	if e.Stage != "" {
		return fmt.Sprintf("operation %s %s at stage %s: %s", e.Operation, verb, e.Stage, msg)
	}
	return fmt.Sprintf("operation %s %s: %s", e.Operation, verb, msg)
}

// Unwrap returns ErrOperationFailed.
func (e *OperationError) Unwrap() error { return ErrOperationFailed }
