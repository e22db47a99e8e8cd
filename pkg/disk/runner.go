package disk

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"
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

// ExecRunner runs commands with os/exec. The zero value is ready to use.
type ExecRunner struct {
	// Timeout bounds each command; zero means DefaultTimeout, negative means
	// no bound beyond ctx.
	Timeout time.Duration
}

// Run implements Runner. The command runs with LC_ALL=C so its messages are
// stable, and it is killed when ctx is done or the timeout expires.
func (r ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil && ctx.Err() != nil {
		// Report the deadline/cancellation, not only "signal: killed".
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return stdout.Bytes(), stderr.Bytes(), err
}
