package inspect

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/galevm/gale/pkg/internal/testimage"
	"github.com/galevm/gale/pkg/internal/testtool"
	"github.com/galevm/gale/pkg/toolrun"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// requireTools ends the test when qemu-img or prlimit is not installed (see testtool).
func requireTools(t *testing.T) {
	t.Helper()
	testtool.Need(t, "Debian: qemu-utils, util-linux", "qemu-img", "prlimit")
}

// qemuImg runs qemu-img and fails the test if it fails.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// patternedRaw is testimage.PatternedRaw.
func patternedRaw(t *testing.T, dir, name string, size int64) string {
	return testimage.PatternedRaw(t, dir, name, size)
}

// patch overwrites bytes of the file at path at offset off (negative: from
// the end).
func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		off += fi.Size()
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// readFile returns the file's bytes.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noQemu is a runner that fails the test if anything is run: refusals that
// must happen before qemu-img opens the file use it.
type noQemu struct{ t *testing.T }

func (n noQemu) Run(_ context.Context, spec toolrun.Spec) (toolrun.Output, error) {
	n.t.Errorf("qemu-img ran on a file that should have been refused first: %s", strings.Join(spec.Argv, " "))
	return toolrun.Output{}, errors.New("must not run")
}

// pureGo returns an Inspector that must refuse before running qemu-img.
func pureGo(t *testing.T) Inspector { return Inspector{Runner: noQemu{t}} }

// wantRefused fails the test unless err is a refusal for reason whose
// message contains every one of substrings.
func wantRefused(t *testing.T, err error, reason Reason, substrings ...string) {
	t.Helper()
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want a refusal (%s)", err, reason)
	}
	if got := ReasonOf(err); got != reason {
		t.Errorf("reason = %q, want %q (err: %v)", got, reason, err)
	}
	for _, s := range substrings {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %q, want it to mention %q", err, s)
		}
	}
}
