package preflight

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// Limits for external tools that read the untrusted image.
const (
	// toolTimeout bounds one run of debugfs, e2fsck or a decompressor.
	toolTimeout = 2 * time.Minute
	// toolMemory is the address-space limit (prlimit --as), in bytes.
	toolMemory = 1 << 30
	// toolCPU is the CPU-time limit (prlimit --cpu), in seconds.
	toolCPU = 60
)

// errToolMissing is wrapped by errors for host tools that are not
// installed: the host, not the image, needs fixing.
var errToolMissing = errors.New("host tool missing")

// errOutputTooLarge is returned when a tool printed more than it was
// allowed to; the tool is killed.
var errOutputTooLarge = errors.New("output too large")

// limited returns the prlimit command line that runs name with args under
// the address-space and CPU limits. It fails when prlimit is missing: tools
// never run unconfined on an untrusted image.
func limited(name string, args ...string) ([]string, error) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		return nil, fmt.Errorf("%w: prlimit (util-linux) not found: refusing to run %s on an untrusted image without limits", errToolMissing, name)
	}
	tool, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s not found on PATH", errToolMissing, name)
	}
	argv := []string{prlimit, "--as=" + strconv.Itoa(toolMemory), "--cpu=" + strconv.Itoa(toolCPU), "--", tool}
	return append(argv, args...), nil
}

// command builds the exec.Cmd for argv with a stable environment: C locale
// and no pager.
func command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PAGER=__none__", "DEBUGFS_PAGER=__none__")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runTool runs name under limits and toolTimeout, feeding it stdin (may be
// nil) and collecting at most maxOut bytes of stdout; more kills the tool
// and returns errOutputTooLarge. A non-nil error means the tool could not
// run, was killed, or exited non-zero; stdout and stderr are returned
// either way.
func runTool(ctx context.Context, stdin io.Reader, maxOut int64, name string, args ...string) ([]byte, []byte, error) {
	argv, err := limited(name, args...)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	cmd := command(ctx, argv)
	cmd.Stdin = stdin
	out := &cappedBuffer{max: maxOut, onFull: cancel}
	var stderr cappedBuffer
	stderr.max = 1 << 20
	cmd.Stdout = out
	cmd.Stderr = &stderr
	err = cmd.Run()
	switch {
	case out.full:
		err = fmt.Errorf("%s: %w (more than %d bytes)", name, errOutputTooLarge, maxOut)
	case err != nil && ctx.Err() != nil:
		err = fmt.Errorf("%s: %w (%v)", name, ctx.Err(), err)
	case err != nil:
		err = fmt.Errorf("%s: %w: %s", name, err, firstLine(stderr.Bytes()))
	}
	return out.Bytes(), stderr.Bytes(), err
}

// streamTool runs name under limits and toolTimeout with stdin, and hands
// its stdout to consume. When consume returns early the rest of stdout is
// drained (at most maxOut bytes in all); when consume fails the tool is
// killed. The error is consume's, else the tool's.
func streamTool(ctx context.Context, stdin io.Reader, maxOut int64, consume func(io.Reader) error, name string, args ...string) error {
	argv, err := limited(name, args...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	cmd := command(ctx, argv)
	cmd.Stdin = stdin
	var stderr cappedBuffer
	stderr.max = 1 << 20
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	lr := &io.LimitedReader{R: pipe, N: maxOut + 1}
	cerr := consume(lr)
	if cerr == nil {
		_, cerr = io.Copy(io.Discard, lr)
	}
	if cerr == nil && lr.N <= 0 {
		cerr = fmt.Errorf("%s: %w (more than %d bytes)", name, errOutputTooLarge, maxOut)
	}
	if cerr != nil {
		cancel()
	}
	werr := cmd.Wait()
	switch {
	case cerr != nil:
		return cerr
	case werr != nil && ctx.Err() != nil:
		return fmt.Errorf("%s: %w (%v)", name, ctx.Err(), werr)
	case werr != nil:
		return fmt.Errorf("%s: %w: %s", name, werr, firstLine(stderr.Bytes()))
	}
	return nil
}

// cappedBuffer keeps the first max bytes written to it and discards the
// rest, calling onFull once when it overflows.
type cappedBuffer struct {
	bytes.Buffer
	max    int64
	full   bool
	onFull func()
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - int64(b.Len())
	if int64(len(p)) > room {
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		if !b.full {
			b.full = true
			if b.onFull != nil {
				b.onFull()
			}
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
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
