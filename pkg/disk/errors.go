package disk

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Sentinel errors. Functions in this package wrap them with context; callers
// match them with errors.Is.
var (
	// ErrExists: the target path already exists. It wraps os.ErrExist, so
	// errors.Is(err, os.ErrExist) holds as well.
	ErrExists = fmt.Errorf("disk image already exists: %w", os.ErrExist)
	// ErrShrink: the requested size is smaller than the image's (or the
	// backing image's) virtual size. gale never shrinks a disk.
	ErrShrink = errors.New("refusing to shrink disk")
	// ErrInvalidArgument: a path, format or size failed validation before
	// qemu-img was run.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidSize: a size string could not be parsed, or a size is not
	// positive or does not fit in an int64. It wraps ErrInvalidArgument.
	ErrInvalidSize = fmt.Errorf("%w: invalid size", ErrInvalidArgument)
)

// CommandError reports a command that ran and failed (non-zero exit, signal
// or timeout). Err is the underlying error from the Runner; Stderr is the
// command's trimmed standard error.
type CommandError struct {
	Name   string
	Args   []string
	Stderr string
	Err    error
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s %s: %v", e.Name, strings.Join(e.Args, " "), e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap returns the underlying error, so errors.Is(err, context.DeadlineExceeded)
// works for a timed-out command.
func (e *CommandError) Unwrap() error { return e.Err }
