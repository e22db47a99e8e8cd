// Package errdefs is gale's one vocabulary of error kinds. Every service
// returns errors of these kinds, wrapped with its own context; the HTTP
// status (pkg/server) and the CLI's exit code (cmd/gale) each come from one
// table keyed by Kind.
//
// A Kind is itself an error, so errors.Is(err, errdefs.NotFound) matches any
// error of that kind. Packages declare their sentinels with a kind:
//
//	var ErrNotFound = errdefs.New(errdefs.NotFound, "vm not found")
//
// and wrap them as usual with fmt.Errorf("%w: %q", ErrNotFound, name).
package errdefs

import (
	"errors"
	"fmt"
)

// Kind is the class of an error: what a caller can do about it. Kinds are
// errors themselves; match them with errors.Is.
type Kind string

// The kinds. Internal is the kind of an error that declares none.
const (
	// NotFound: the named thing does not exist.
	NotFound Kind = "not found"
	// Conflict: the thing exists, is in use, or another operation holds it;
	// the request may succeed later or after another change.
	Conflict Kind = "conflict"
	// Invalid: the request is malformed or names something unusable;
	// nothing was changed.
	Invalid Kind = "invalid"
	// Unavailable: a dependency (libvirtd) is down; retry later.
	Unavailable Kind = "unavailable"
	// Insufficient: the host lacks the capacity (memory, disk).
	Insufficient Kind = "insufficient capacity"
	// TimedOut: the work did not finish, or made no progress, in time.
	TimedOut Kind = "timed out"
	// Internal: anything else, a bug or an unexpected failure.
	Internal Kind = "internal"
)

// Kinds lists every kind, Internal last.
var Kinds = []Kind{NotFound, Conflict, Invalid, Unavailable, Insufficient, TimedOut, Internal}

// Error returns the kind's name.
func (k Kind) Error() string { return string(k) }

// kindError is an error of a kind with its own message, wrapping what its
// format wrapped with %w.
type kindError struct {
	kind    Kind
	msg     string
	wrapped []error
}

func (e *kindError) Error() string { return e.msg }

// Unwrap returns the kind first, then the wrapped errors, so KindOf sees
// the kind before anything it wraps.
func (e *kindError) Unwrap() []error { return append([]error{e.kind}, e.wrapped...) }

// New returns an error of kind whose message is exactly msg.
func New(kind Kind, msg string) error { return &kindError{kind: kind, msg: msg} }

// Newf returns an error of kind whose message is fmt.Sprintf(format, args...)
// (with %w treated as %v); it also matches, with errors.Is and errors.As,
// every argument wrapped with %w.
func Newf(kind Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	e := &kindError{kind: kind, msg: err.Error()}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if w := u.Unwrap(); w != nil {
			e.wrapped = []error{w}
		}
	case interface{ Unwrap() []error }:
		e.wrapped = u.Unwrap()
	}
	return e
}

// KindOf returns the outermost kind in err's chain (errors.As order: depth
// first, the outer error and its first wrapped error before the others), or
// Internal when the chain declares none. KindOf(nil) is Internal too.
func KindOf(err error) Kind {
	var k Kind
	if errors.As(err, &k) {
		return k
	}
	return Internal
}

// Is reports whether err is of kind: a shorthand for errors.Is(err, kind).
func Is(err error, kind Kind) bool { return errors.Is(err, kind) }
