package disk

import (
	"context"
	"errors"
	"time"

	"github.com/galevm/gale/pkg/toolrun"
)

// Runner runs an external command. Implementations MUST honour ctx
// (cancellation and deadline) and return the command's stdout and stderr
// even when it fails. A non-nil error means the command could not be started
// or did not exit with status 0.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error)
}

// DefaultTimeout bounds a single qemu-img call when ExecRunner.Timeout is zero.
// qemu-img create/info/resize on qcow2 touch only metadata and finish in well
// under a second; the bound exists so a hung NFS mount or a stuck lock cannot
// block a caller forever.
const DefaultTimeout = 2 * time.Minute

// ExecRunner runs commands with pkg/toolrun. The zero value is ready to use.
type ExecRunner struct {
	// Timeout bounds each command; zero means DefaultTimeout, negative means
	// no bound beyond ctx.
	Timeout time.Duration
}

// Run implements Runner. The command runs with LC_ALL=C so its messages are
// stable, and it is killed when ctx is done or the timeout expires; a
// timed-out command's error matches context.DeadlineExceeded.
func (r ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	out, err := toolrun.Run(ctx, toolrun.Spec{Argv: append([]string{name}, args...), Timeout: timeout})
	return out.Stdout, out.Stderr, cause(err)
}

// cause returns the cause inside a *toolrun.Error: CommandError adds the
// command line and stderr itself, so they are not repeated.
func cause(err error) error {
	var te *toolrun.Error
	if errors.As(err, &te) {
		return te.Err
	}
	return err
}
