package disk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// StreamRunner is a Runner that can also hand a command's standard output
// to a writer while the command runs, for long commands that report
// progress. RunStream MUST honour ctx and return the command's stderr even
// when it fails; a non-nil error means the command could not be started or
// did not exit with status 0. stdout's Write is called from one goroutine
// at a time, and never after RunStream has returned.
type StreamRunner interface {
	Runner
	RunStream(ctx context.Context, stdout io.Writer, name string, args ...string) (stderr []byte, err error)
}

var _ StreamRunner = ExecRunner{}

// RunStream implements StreamRunner. It is for long-running commands such
// as conversions, so unlike Run it applies no timeout of its own: only ctx
// bounds it, and Timeout is ignored. The command runs with LC_ALL=C and is
// killed when ctx is done.
func (r ExecRunner) RunStream(ctx context.Context, stdout io.Writer, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout = stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return stderr.Bytes(), err
}
