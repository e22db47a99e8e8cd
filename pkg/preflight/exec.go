package preflight

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/galevm/gale/pkg/toolrun"
)

// Limits for external tools that read the untrusted image.
const (
	// toolTimeout bounds one run of debugfs, e2fsck or a decompressor.
	toolTimeout = 2 * time.Minute
	// toolMemory is the address-space limit, in bytes.
	toolMemory = 1 << 30
	// toolCPU is the CPU-time limit.
	toolCPU = 60 * time.Second
)

// errToolMissing is wrapped by errors for host tools (or prlimit) that are
// not installed: the host, not the image, needs fixing.
var errToolMissing = toolrun.ErrNotFound

// toolSpec is how a tool that reads the untrusted image runs: under the
// address-space and CPU limits and toolTimeout, with a stable environment
// (C locale, no pager). prlimit is required: such tools never run
// unconfined.
func toolSpec(stdin io.Reader, stdout io.Writer, maxOut int64, name string, args ...string) toolrun.Spec {
	return toolrun.Spec{
		Argv:            append([]string{name}, args...),
		Timeout:         toolTimeout,
		MaxAddressSpace: toolMemory,
		MaxCPUTime:      toolCPU,
		MaxOutput:       maxOut,
		Stdin:           stdin,
		Stdout:          stdout,
		Env:             toolrun.Environ("PAGER=__none__", "DEBUGFS_PAGER=__none__"),
	}
}

// runTool runs name under the limits, feeding it stdin (may be nil) and
// collecting at most maxOut bytes of stdout; more kills the tool with
// toolrun.ErrOutputTooLarge. A non-nil error means the tool could not run,
// was killed, or exited non-zero; stdout and stderr are returned either
// way.
func runTool(ctx context.Context, stdin io.Reader, maxOut int64, name string, args ...string) ([]byte, []byte, error) {
	out, err := toolrun.Run(ctx, toolSpec(stdin, nil, maxOut, name, args...))
	return out.Stdout, out.Stderr, err
}

// streamTool runs name under the limits with stdin, and hands its stdout
// to consume. When consume returns early the rest of stdout is drained (at
// most maxOut bytes in all); when consume fails the tool is killed. The
// error is the tool's when it wrote too much, else consume's, else the
// tool's.
func streamTool(ctx context.Context, stdin io.Reader, maxOut int64, consume func(io.Reader) error, name string, args ...string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := toolrun.Run(ctx, toolSpec(stdin, pw, maxOut, name, args...))
		pw.CloseWithError(err) // nil: the reader sees EOF
		done <- err
	}()
	cerr := consume(pr)
	if cerr == nil {
		_, cerr = io.Copy(io.Discard, pr)
	}
	if cerr != nil {
		cancel()
		pr.CloseWithError(cerr)
	}
	werr := <-done
	switch {
	case errors.Is(werr, toolrun.ErrOutputTooLarge):
		return werr
	case cerr != nil:
		return cerr
	}
	return werr
}

// firstLine returns the first non-empty line of b, trimmed, for error
// messages.
func firstLine(b []byte) string {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if s := string(bytes.TrimSpace(line)); s != "" {
			return s
		}
	}
	return "(no message)"
}
