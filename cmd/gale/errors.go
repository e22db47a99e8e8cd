package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/galevm/gale/pkg/client"
	"github.com/galevm/gale/pkg/errdefs"
)

// Exit codes; rootDescription documents them.
const (
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitNotFound     = 3
	exitConflict     = 4
	exitUnreachable  = 5
	exitInsufficient = 6
	exitUnavailable  = 7
	exitTimeout      = 8
	exitInterrupted  = 130
)

// usageError is a mistake on the command line. Its message says what to
// type instead.
type usageError struct {
	cmd string // e.g. "gale vm create"
	err error
}

func (e *usageError) Error() string {
	if e.cmd == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("%v\nRun '%s --help' for usage.", e.err, e.cmd)
}

func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usageError for command c.
func usageErrorf(c *cli.Context, format string, args ...any) error {
	return &usageError{cmd: c.Command.HelpName, err: fmt.Errorf(format, args...)}
}

// onUsageError wraps flag-parsing errors from cli as usageError.
func onUsageError(c *cli.Context, err error, _ bool) error {
	name := c.App.HelpName
	if c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	return &usageError{cmd: name, err: err}
}

// setUsageErrorHandlers installs onUsageError on every command.
func setUsageErrorHandlers(cmds []*cli.Command) {
	for _, cmd := range cmds {
		cmd.OnUsageError = onUsageError
		setUsageErrorHandlers(cmd.Subcommands)
	}
}

// exitCodeError ends gale with a code and no message (vm exec).
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// timeoutError says that gale gave up waiting; the work goes on in galed.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

// Unwrap returns errdefs.TimedOut, the kind that maps to exitTimeout.
func (e *timeoutError) Unwrap() error { return errdefs.TimedOut }

// interruptedError says that the user interrupted a wait.
type interruptedError struct{ msg string }

func (e *interruptedError) Error() string { return e.msg }

// exitCodes is the one table from error kind to exit code; an error
// without a kind (errdefs.Internal) exits with exitError.
var exitCodes = map[errdefs.Kind]int{
	errdefs.Invalid:      exitUsage,
	errdefs.NotFound:     exitNotFound,
	errdefs.Conflict:     exitConflict,
	errdefs.Insufficient: exitInsufficient,
	errdefs.Unavailable:  exitUnavailable,
	errdefs.TimedOut:     exitTimeout,
	errdefs.Internal:     exitError,
}

// exitCode maps an error to gale's exit code: the CLI's own conditions
// first (a guest's exit code, a usage mistake, an interrupt, galed out of
// reach), then the error's kind (galed's errors carry the kind of their API
// code, see client.Error).
func exitCode(err error) int {
	var (
		ec *exitCodeError
		ue *usageError
		ie *interruptedError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return ec.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ie):
		return exitInterrupted
	case errors.Is(err, client.ErrUnreachable):
		return exitUnreachable
	}
	if code, ok := exitCodes[errdefs.KindOf(err)]; ok {
		return code
	}
	return exitError
}

// reportError prints err (with what to do next) on w and returns the exit
// code for it. With debug it also prints the chain of wrapped errors.
func reportError(w io.Writer, err error, debug bool) int {
	code := exitCode(err)
	var ec *exitCodeError
	if err == nil || errors.As(err, &ec) {
		return code
	}
	fprintf(w, "gale: %v\n", err)
	var oe *client.OperationError
	if errors.As(err, &oe) && strings.TrimSpace(oe.Detail) != "" {
		fprintf(w, "\n%s\n", indent(strings.TrimRight(oe.Detail, "\n"), "    "))
	}
	if hint := hintFor(err); hint != "" {
		fprintf(w, "%s\n", hint)
	}
	if debug {
		for e := err; e != nil; e = errors.Unwrap(e) {
			fprintf(w, "debug: %T: %v\n", e, e)
		}
	}
	return code
}

// hintFor returns a line saying what to do next, or "".
func hintFor(err error) string {
	switch {
	case errors.Is(err, client.ErrInsufficient):
		return "The host is short of memory or disk: free some (gale vm list; gale vm delete NAME) or retry with --force."
	case errors.Is(err, client.ErrUnavailable):
		return "galed cannot talk to libvirtd right now; it reconnects on its own. Retry in a moment, and see `gale doctor`."
	case errors.Is(err, client.ErrInternal):
		return "This is a bug in galed; its log (journalctl -u galed) has the details."
	case errors.Is(err, context.DeadlineExceeded):
		return "The request timed out; galed may be overloaded. See `gale doctor`."
	}
	return ""
}

// indent prefixes every line of s with prefix.
func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// fprintf writes to w, ignoring errors: there is nowhere else to report
// them.
func fprintf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
