package disk

import (
	"context"
	"io"

	"github.com/galevm/gale/pkg/toolrun"
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
// killed when ctx is done. Its output is not capped: a long conversion's
// progress lines go to stdout as they come.
func (r ExecRunner) RunStream(ctx context.Context, stdout io.Writer, name string, args ...string) ([]byte, error) {
	out, err := toolrun.Run(ctx, toolrun.Spec{Argv: append([]string{name}, args...), Stdout: stdout, MaxOutput: -1})
	return out.Stderr, cause(err)
}
