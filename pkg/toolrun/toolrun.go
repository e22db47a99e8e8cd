package toolrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults and bounds.
const (
	// DefaultMaxOutput caps standard output when Spec.MaxOutput is zero.
	DefaultMaxOutput int64 = 64 << 20
	// StderrKept is how much of the end of standard error is kept for
	// Output.Stderr and error messages.
	StderrKept = 64 << 10
	// errorTail is how much of the end of standard error an error message
	// quotes.
	errorTail = 1024
	// waitDelay is how long Run waits for the tool's output pipes to close
	// after the tool was killed.
	waitDelay = 5 * time.Second
)

// Sentinel errors, wrapped by *Error; match them with errors.Is.
var (
	// ErrNotFound: the tool, or prlimit when limits were asked for, is not
	// installed. The host needs fixing, not the input.
	ErrNotFound = errors.New("tool not found")
	// ErrTimeout: Spec.Timeout expired and the tool was killed. An error
	// with ErrTimeout also matches context.DeadlineExceeded.
	ErrTimeout = errors.New("timed out")
	// ErrOutputTooLarge: the tool wrote more than Spec.MaxOutput bytes to
	// standard output and was killed.
	ErrOutputTooLarge = errors.New("output too large")
	// ErrKilled: the tool died of a signal it did not ask for, typically a
	// CPU-time (SIGXCPU, SIGKILL) or address-space limit. Not used when
	// Run itself killed it for a timeout, the output cap or ctx.
	ErrKilled = errors.New("killed by signal")
)

// Spec describes one run of a tool.
type Spec struct {
	// Argv is the tool and its arguments. Argv[0] is looked up on PATH
	// unless it contains a slash. Required.
	Argv []string
	// Timeout bounds the run's wall-clock time; zero or negative means no
	// bound beyond ctx.
	Timeout time.Duration
	// MaxAddressSpace is the tool's address-space limit in bytes (prlimit
	// --as); zero means none.
	MaxAddressSpace int64
	// MaxCPUTime is the tool's CPU-time limit (prlimit --cpu), rounded up
	// to whole seconds; zero means none.
	MaxCPUTime time.Duration
	// MaxOutput caps standard output in bytes, whether collected or
	// handed to Stdout; more kills the tool with ErrOutputTooLarge. Zero
	// means DefaultMaxOutput, negative means no cap.
	MaxOutput int64
	// Stdin is the tool's standard input; nil means /dev/null.
	Stdin io.Reader
	// Stdout, when set, receives standard output as the tool writes it
	// (Output.Stdout is then empty); nil collects it into Output.Stdout.
	Stdout io.Writer
	// Stderr, when set, receives a copy of standard error as the tool
	// writes it; the tail is kept for Output.Stderr either way.
	Stderr io.Writer
	// Env is the tool's whole environment; nil means Environ().
	Env []string
}

// Output is what a run produced. It is returned even when the run failed.
type Output struct {
	// Stdout is standard output, at most the cap; empty when Spec.Stdout
	// was set.
	Stdout []byte
	// Stderr is the last StderrKept bytes of standard error.
	Stderr []byte
}

// Error reports a tool that could not be started, failed or was killed.
type Error struct {
	// Tool is the base name of the tool (Argv[0]), never prlimit.
	Tool string
	// Argv is the command line asked for, without the prlimit prefix.
	Argv []string
	// Stderr is the tail of the tool's standard error, trimmed.
	Stderr string
	// Err is the cause: a sentinel of this package (wrapped with detail),
	// ctx's error, or the *exec.ExitError of a non-zero exit.
	Err error
}

func (e *Error) Error() string {
	msg := e.Tool + ": " + e.Err.Error()
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the tool's exit status, or -1 when it did not exit
// normally (not started, killed by a signal).
func (e *Error) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Signal returns the signal that killed the tool, or 0.
func (e *Error) Signal() syscall.Signal {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal()
		}
	}
	return 0
}

// Runner runs tools. Exec is the real implementation; packages that run
// tools take a Runner so their tests can substitute a fake.
type Runner interface {
	// Run runs spec.Argv as Run does.
	Run(ctx context.Context, spec Spec) (Output, error)
}

// Exec is the Runner that runs real processes with Run.
type Exec struct{}

// Run implements Runner.
func (Exec) Run(ctx context.Context, spec Spec) (Output, error) { return Run(ctx, spec) }

// Environ returns the environment tools run with by default: the
// process's environment with LC_ALL=C, so their messages are stable, and
// then extra.
func Environ(extra ...string) []string {
	env := append(os.Environ(), "LC_ALL=C")
	return append(env, extra...)
}

// Run runs spec.Argv and waits for it. A nil error means the tool exited
// with status 0 within its limits; otherwise the error is an *Error naming
// the tool and quoting the tail of its standard error, whose cause matches
// ErrNotFound, ErrTimeout, ErrOutputTooLarge, ErrKilled, ctx's error, or
// is the *exec.ExitError of a non-zero exit. Output is returned either way.
func Run(ctx context.Context, spec Spec) (Output, error) {
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return Output{}, &Error{Tool: "(none)", Err: errors.New("empty command line")}
	}
	fail := func(out Output, err error) (Output, error) {
		return out, &Error{
			Tool:   filepath.Base(spec.Argv[0]),
			Argv:   spec.Argv,
			Stderr: tail(out.Stderr, errorTail),
			Err:    err,
		}
	}
	argv, err := commandLine(spec)
	if err != nil {
		return fail(Output{}, err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	if spec.Timeout > 0 {
		t := time.AfterFunc(spec.Timeout, func() {
			timedOut.Store(true)
			cancel()
		})
		defer t.Stop()
	}

	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.Env = spec.Env
	if cmd.Env == nil {
		cmd.Env = Environ()
	}
	cmd.Stdin = spec.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay

	max := spec.MaxOutput
	if max == 0 {
		max = DefaultMaxOutput
	}
	var collected bytes.Buffer
	var sink io.Writer = &collected
	if spec.Stdout != nil {
		sink = spec.Stdout
	}
	stdout := &capWriter{w: sink, max: max, onFull: cancel}
	stderr := &tailWriter{max: StderrKept}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if spec.Stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, spec.Stderr)
	}

	err = cmd.Run()
	out := Output{Stdout: collected.Bytes(), Stderr: stderr.bytes()}
	if err == nil && !stdout.isFull() {
		return out, nil
	}
	switch {
	case stdout.isFull():
		err = fmt.Errorf("%w (more than %d bytes)", ErrOutputTooLarge, max)
	case ctx.Err() != nil:
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	case timedOut.Load():
		err = fmt.Errorf("%w after %v: %w", ErrTimeout, spec.Timeout, context.DeadlineExceeded)
	default:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				err = fmt.Errorf("%w %v: %w", ErrKilled, ws.Signal(), ee)
			}
		}
	}
	return fail(out, err)
}

// commandLine resolves the tool and, when limits are asked for, puts
// prlimit in front of it.
func commandLine(spec Spec) ([]string, error) {
	tool, err := exec.LookPath(spec.Argv[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var limits []string
	if spec.MaxAddressSpace > 0 {
		limits = append(limits, "--as="+strconv.FormatInt(spec.MaxAddressSpace, 10))
	}
	if spec.MaxCPUTime > 0 {
		secs := int64((spec.MaxCPUTime + time.Second - 1) / time.Second)
		limits = append(limits, "--cpu="+strconv.FormatInt(secs, 10))
	}
	if len(limits) == 0 {
		return append([]string{tool}, spec.Argv[1:]...), nil
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		return nil, fmt.Errorf("%w: prlimit (util-linux), needed to limit %s: %w", ErrNotFound, spec.Argv[0], err)
	}
	argv := append([]string{prlimit}, limits...)
	argv = append(argv, "--", tool)
	return append(argv, spec.Argv[1:]...), nil
}

// capWriter passes at most max bytes (negative: no cap) on to w; past the
// cap it drops the rest, remembers that it overflowed and calls onFull once.
type capWriter struct {
	w      io.Writer
	max    int64
	onFull func()

	mu   sync.Mutex
	n    int64
	full bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return len(p), nil
	}
	q := p
	if c.max >= 0 && c.n+int64(len(p)) > c.max {
		q = p[:c.max-c.n]
		c.full = true
		defer c.onFull()
	}
	if len(q) > 0 {
		n, err := c.w.Write(q)
		c.n += int64(n)
		if err != nil {
			return n, err
		}
	}
	return len(p), nil
}

func (c *capWriter) isFull() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.full
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailWriter) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}

// tail returns the last n bytes of b, trimmed, starting at a line boundary
// when one is near.
func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return string(b)
}
