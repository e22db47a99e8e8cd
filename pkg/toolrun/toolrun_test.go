package toolrun

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/internal/testtool"
)

func TestRun(t *testing.T) {
	for _, c := range []struct {
		name       string
		spec       Spec
		wantOut    string
		wantStderr string
		wantErr    error  // matched with errors.Is; nil means success
		wantMsg    string // substring of the error message
	}{
		{
			name:    "stdout collected",
			spec:    Spec{Argv: []string{"sh", "-c", "printf hello"}},
			wantOut: "hello",
		},
		{
			name:    "stdin passed",
			spec:    Spec{Argv: []string{"cat"}, Stdin: strings.NewReader("fed")},
			wantOut: "fed",
		},
		{
			name:    "environment is C locale",
			spec:    Spec{Argv: []string{"sh", "-c", `printf "$LC_ALL"`}},
			wantOut: "C",
		},
		{
			name:    "explicit environment replaces the default",
			spec:    Spec{Argv: []string{"sh", "-c", `printf "$A${LC_ALL:-unset}"`}, Env: []string{"A=1"}},
			wantOut: "1unset",
		},
		{
			name:       "non-zero exit quotes the tool and stderr tail",
			spec:       Spec{Argv: []string{"sh", "-c", "echo first >&2; echo last words >&2; exit 3"}},
			wantStderr: "first\nlast words\n",
			wantMsg:    "sh: exit status 3: first\nlast words",
		},
		{
			name:    "missing tool",
			spec:    Spec{Argv: []string{"no-such-tool-gale"}},
			wantErr: ErrNotFound,
			wantMsg: "no-such-tool-gale: tool not found",
		},
		{
			name:    "timeout kills the tool",
			spec:    Spec{Argv: []string{"sleep", "30"}, Timeout: 100 * time.Millisecond},
			wantErr: ErrTimeout,
			wantMsg: "sleep: timed out after 100ms",
		},
		{
			name:    "timeout also matches DeadlineExceeded",
			spec:    Spec{Argv: []string{"sleep", "30"}, Timeout: 50 * time.Millisecond},
			wantErr: context.DeadlineExceeded,
		},
		{
			name:    "timeout kills the tool's children too",
			spec:    Spec{Argv: []string{"sh", "-c", "sleep 30 & wait"}, Timeout: 100 * time.Millisecond},
			wantErr: ErrTimeout,
		},
		{
			name:    "output cap",
			spec:    Spec{Argv: []string{"sh", "-c", "printf 0123456789; sleep 30"}, MaxOutput: 4},
			wantOut: "0123",
			wantErr: ErrOutputTooLarge,
			wantMsg: "sh: output too large (more than 4 bytes)",
		},
		{
			name:    "output at the cap is fine",
			spec:    Spec{Argv: []string{"sh", "-c", "printf 0123"}, MaxOutput: 4},
			wantOut: "0123",
		},
		{
			name:    "negative cap means none",
			spec:    Spec{Argv: []string{"sh", "-c", "head -c 100000 /dev/zero"}, MaxOutput: -1},
			wantOut: strings.Repeat("\x00", 100000),
		},
		{
			name:    "CPU limit kills a spinning tool",
			spec:    Spec{Argv: []string{"sh", "-c", "while :; do :; done"}, MaxCPUTime: time.Second, Timeout: 20 * time.Second},
			wantErr: ErrKilled,
		},
		{
			name:    "address-space limit makes allocation fail",
			spec:    Spec{Argv: []string{"sh", "-c", "head -c 200000000 /dev/zero | tr '\\0' x | { v=$(cat); echo ${#v}; }"}, MaxAddressSpace: 64 << 20, Timeout: 20 * time.Second},
			wantMsg: "sh: ",
		},
		{
			name:    "limits under which the tool fits",
			spec:    Spec{Argv: []string{"sh", "-c", "printf ok"}, MaxAddressSpace: 1 << 30, MaxCPUTime: 10 * time.Second},
			wantOut: "ok",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := Run(context.Background(), c.spec)
			wantFail := c.wantErr != nil || c.wantMsg != ""
			if (err != nil) != wantFail {
				t.Fatalf("Run() error = %v, want failure %v", err, wantFail)
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("Run() error = %v, want %v", err, c.wantErr)
			}
			if c.wantMsg != "" && !strings.Contains(err.Error(), c.wantMsg) {
				t.Errorf("Run() error = %q, want it to contain %q", err, c.wantMsg)
			}
			if err != nil {
				var te *Error
				if !errors.As(err, &te) {
					t.Errorf("Run() error %T is not an *Error", err)
				}
			}
			if c.wantOut != "" && string(out.Stdout) != c.wantOut {
				t.Errorf("Stdout = %.40q, want %.40q", out.Stdout, c.wantOut)
			}
			if c.wantStderr != "" && string(out.Stderr) != c.wantStderr {
				t.Errorf("Stderr = %q, want %q", out.Stderr, c.wantStderr)
			}
		})
	}
}

func TestRunCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := Run(ctx, Spec{Argv: []string{"sleep", "30"}})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("Run() = %v, want context.Canceled and not ErrTimeout", err)
	}
}

func TestRunStreams(t *testing.T) {
	var stdout, stderr bytes.Buffer
	out, err := Run(context.Background(), Spec{
		Argv:   []string{"sh", "-c", "printf out; printf err >&2"},
		Stdout: &stdout,
		Stderr: &stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "out" || len(out.Stdout) != 0 {
		t.Errorf("streamed stdout = %q, collected %q; want %q and nothing", stdout.String(), out.Stdout, "out")
	}
	if stderr.String() != "err" || string(out.Stderr) != "err" {
		t.Errorf("stderr copy = %q, kept %q; want %q in both", stderr.String(), out.Stderr, "err")
	}
}

func TestErrorAccessors(t *testing.T) {
	_, err := Run(context.Background(), Spec{Argv: []string{"sh", "-c", "exit 7"}})
	var te *Error
	if !errors.As(err, &te) || te.ExitCode() != 7 || te.Signal() != 0 || te.Tool != "sh" {
		t.Fatalf("Run() = %#v, want an *Error for sh with exit code 7", err)
	}
	_, err = Run(context.Background(), Spec{Argv: []string{"sh", "-c", "kill -TERM $$"}})
	if !errors.As(err, &te) || te.Signal() != syscall.SIGTERM || !errors.Is(err, ErrKilled) {
		t.Fatalf("Run() = %v, want an *Error for SIGTERM matching ErrKilled", err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Errorf("Run() = %v, want the *exec.ExitError in the chain", err)
	}
}

func TestCommandLine(t *testing.T) {
	paths := testtool.Need(t, "Debian: dash, util-linux", "sh", "prlimit")
	sh, prlimit := paths[0], paths[1]
	for _, c := range []struct {
		name string
		spec Spec
		want []string
	}{
		{"no limits", Spec{Argv: []string{"sh", "-c", "x"}}, []string{sh, "-c", "x"}},
		{"both limits", Spec{Argv: []string{"sh", "-c", "x"}, MaxAddressSpace: 1 << 30, MaxCPUTime: 1500 * time.Millisecond},
			[]string{prlimit, "--as=1073741824", "--cpu=2", "--", sh, "-c", "x"}},
		{"CPU only", Spec{Argv: []string{"sh"}, MaxCPUTime: time.Minute}, []string{prlimit, "--cpu=60", "--", sh}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := commandLine(c.spec)
			if err != nil || strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("commandLine() = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestTailWriter(t *testing.T) {
	for _, c := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"under the limit", []string{"ab", "c"}, "abc"},
		{"keeps the end", []string{"abc", "defgh"}, "defgh"},
		{"one large write", []string{"0123456789"}, "56789"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tw := &tailWriter{max: 5}
			for _, w := range c.writes {
				if n, err := tw.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := string(tw.bytes()); got != c.want {
				t.Errorf("tail = %q, want %q", got, c.want)
			}
		})
	}
}
