package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/client"
)

// TestExitCodeTable checks the documented exit codes (README.md) for the
// CLI's own conditions and for each API error code.
func TestExitCodeTable(t *testing.T) {
	apiErr := func(code string) error {
		return fmt.Errorf("show vm x: %w", &client.Error{Status: 400, Code: code, Message: "m"})
	}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"plain", errors.New("boom"), exitError},
		{"guest exit", &exitCodeError{code: 42}, 42},
		{"usage", &usageError{err: errors.New("missing NAME")}, exitUsage},
		{"interrupted", &interruptedError{msg: "x"}, exitInterrupted},
		{"cli timeout", &timeoutError{msg: "x"}, exitTimeout},
		{"unreachable", &client.UnreachableError{Socket: "s", Err: errors.New("dial")}, exitUnreachable},
		{"invalid", apiErr(api.CodeInvalid), exitUsage},
		{"not found", apiErr(api.CodeNotFound), exitNotFound},
		{"conflict", apiErr(api.CodeConflict), exitConflict},
		{"insufficient", apiErr(api.CodeInsufficient), exitInsufficient},
		{"unavailable", apiErr(api.CodeUnavailable), exitUnavailable},
		{"timed out", apiErr(api.CodeTimedOut), exitTimeout},
		{"internal", apiErr(api.CodeInternal), exitError},
		{"unknown code", apiErr("weird"), exitError},
		{"failed operation", &client.OperationError{Operation: "op-1", Message: "x"}, exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Fatalf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
