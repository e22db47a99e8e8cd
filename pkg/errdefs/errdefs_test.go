package errdefs

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestNewKeepsMessageAndKind(t *testing.T) {
	errBase := New(NotFound, "vm not found")
	tests := []struct {
		name     string
		err      error
		msg      string
		kind     Kind
		matches  []error
		excludes []error
	}{
		{"plain", errBase, "vm not found", NotFound, []error{NotFound, errBase}, []error{Conflict}},
		{"wrapped with context", fmt.Errorf("%w: %q", errBase, "web"), `vm not found: "web"`, NotFound, []error{NotFound, errBase}, nil},
		{"Newf wraps its %w", Newf(Invalid, "bad template: %w", io.EOF), "bad template: EOF", Invalid, []error{Invalid, io.EOF}, []error{NotFound}},
		{"Newf with two %w", Newf(Conflict, "%w and %w", io.EOF, io.ErrUnexpectedEOF), "EOF and unexpected EOF", Conflict, []error{io.EOF, io.ErrUnexpectedEOF}, nil},
		{"outermost kind wins", Newf(Invalid, "bad: %w", errBase), "bad: vm not found", Invalid, []error{Invalid, NotFound}, nil},
		{"outer fmt wrap of two kinds", fmt.Errorf("%w: %w", New(Unavailable, "down"), errBase), "down: vm not found", Unavailable, nil, nil},
		{"no kind", errors.New("boom"), "boom", Internal, nil, []error{Internal}},
		{"nil", nil, "", Internal, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err != nil && tt.err.Error() != tt.msg {
				t.Errorf("message = %q, want %q", tt.err.Error(), tt.msg)
			}
			if got := KindOf(tt.err); got != tt.kind {
				t.Errorf("KindOf = %q, want %q", got, tt.kind)
			}
			for _, m := range tt.matches {
				if !errors.Is(tt.err, m) {
					t.Errorf("errors.Is(%v) = false", m)
				}
			}
			for _, m := range tt.excludes {
				if errors.Is(tt.err, m) {
					t.Errorf("errors.Is(%v) = true", m)
				}
			}
		})
	}
}
