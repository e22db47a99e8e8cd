package inspect

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInfoCommand(t *testing.T) {
	name, args := Inspector{}.infoCommand("vmdk", "/imports/disk.vmdk", Limits{}.withDefaults())
	want := []string{"--as=1073741824", "--cpu=30", "--", "qemu-img", "info", "--output=json", "-f", "vmdk", "/imports/disk.vmdk"}
	if name != "prlimit" || !slices.Equal(args, want) {
		t.Errorf("infoCommand() = %s %q, want prlimit %q", name, args, want)
	}

	in := Inspector{QemuImg: "/opt/qemu/bin/qemu-img", Prlimit: "/usr/bin/prlimit"}
	name, args = in.infoCommand("raw", "/x.img", Limits{AddressSpace: 512 << 20, CPUSeconds: 5}.withDefaults())
	want = []string{"--as=536870912", "--cpu=5", "--", "/opt/qemu/bin/qemu-img", "info", "--output=json", "-f", "raw", "/x.img"}
	if name != "/usr/bin/prlimit" || !slices.Equal(args, want) {
		t.Errorf("infoCommand() = %s %q, want /usr/bin/prlimit %q", name, args, want)
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxVirtualSize: -1, Timeout: -time.Second}.withDefaults()
	want := Limits{MaxVirtualSize: 2 << 40, Timeout: 30 * time.Second, AddressSpace: 1 << 30, CPUSeconds: 30}
	if got != want {
		t.Errorf("withDefaults() = %+v, want %+v", got, want)
	}
}

// scriptedInfo answers every command with a fixed qemu-img info output and
// records the command lines.
type scriptedInfo struct {
	out   string
	calls []string
}

func (s *scriptedInfo) Run(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
	s.calls = append(s.calls, name+" "+strings.Join(args, " "))
	return []byte(s.out), nil, nil
}

// TestInspectRunsInfoUnderLimits checks that Inspect runs exactly the
// command infoCommand builds, with the caller's limits.
func TestInspectRunsInfoUnderLimits(t *testing.T) {
	raw := patternedRaw(t, t.TempDir(), "disk.raw", mib)
	s := &scriptedInfo{out: fmt.Sprintf(`{"format": "raw", "virtual-size": %d, "filename": %q}`, mib, raw)}
	lim := Limits{AddressSpace: 256 << 20, CPUSeconds: 7}
	rep, err := Inspector{Runner: s}.Inspect(context.Background(), raw, FormatRaw, lim)
	if err != nil || rep.VirtualSize != mib {
		t.Fatalf("Inspect() = %+v, %v", rep, err)
	}
	name, args := Inspector{}.infoCommand(FormatRaw, raw, lim.withDefaults())
	want := name + " " + strings.Join(args, " ")
	if len(s.calls) != 1 || s.calls[0] != want {
		t.Errorf("commands = %q, want [%q]", s.calls, want)
	}
	if !strings.HasPrefix(want, "prlimit --as=268435456 --cpu=7 -- qemu-img info") {
		t.Errorf("command %q does not run qemu-img under the limits", want)
	}
}

// TestCrossCheck feeds Inspect qemu-img info answers that contradict the
// header checks, as a qemu that parses differently might.
func TestCrossCheck(t *testing.T) {
	raw := patternedRaw(t, t.TempDir(), "disk.raw", mib)
	for _, c := range []struct {
		name, out string
		reason    Reason
		want      string
	}{
		{"other format", `{"format": "qcow2", "virtual-size": 1048576}`, ReasonFormat, "qcow2"},
		{"backing file", `{"format": "raw", "virtual-size": 1048576, "backing-filename": "/etc/shadow"}`, ReasonBackingFile, "/etc/shadow"},
		{"data file", `{"format": "raw", "virtual-size": 1048576, "format-specific": {"type": "qcow2", "data": {"data-file": "/dev/sda"}}}`, ReasonDataFile, "/dev/sda"},
		{"foreign extent", `{"format": "raw", "virtual-size": 1048576, "format-specific": {"type": "vmdk", "data": {"extents": [{"filename": "/etc/passwd"}]}}}`, ReasonExternalFile, "/etc/passwd"},
		{"zero size", `{"format": "raw", "virtual-size": 0}`, ReasonEmpty, "0"},
		{"too large", `{"format": "raw", "virtual-size": 3298534883328}`, ReasonTooLarge, "3 TiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Inspector{Runner: &scriptedInfo{out: c.out}}.Inspect(context.Background(), raw, FormatRaw, Limits{})
			wantRefused(t, err, c.reason, c.want)
		})
	}
	t.Run("garbage output is an error, not an acceptance", func(t *testing.T) {
		_, err := Inspector{Runner: &scriptedInfo{out: "nope"}}.Inspect(context.Background(), raw, FormatRaw, Limits{})
		if err == nil || errors.Is(err, ErrRefused) {
			t.Errorf("Inspect() = %v, want a parse error", err)
		}
	})
}

// TestLimitsAreEnforced runs the real qemu-img under limits too tight for
// it: the limits reach the process and the image is refused.
func TestLimitsAreEnforced(t *testing.T) {
	requireTools(t)
	p := filepath.Join(t.TempDir(), "disk.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", p, "1M")
	ctx := context.Background()

	_, err := Inspect(ctx, p, FormatQCOW2, Limits{AddressSpace: 16 << 20})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("Inspect() with a 16 MiB address space = %v, want a refusal", err)
	}
	t.Logf("16 MiB address space: %v", err)

	_, err = Inspect(ctx, p, FormatQCOW2, Limits{Timeout: time.Nanosecond})
	wantRefused(t, err, ReasonLimits, "did not finish")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err = Inspect(cctx, p, FormatQCOW2, Limits{}); !errors.Is(err, context.Canceled) || errors.Is(err, ErrRefused) {
		t.Errorf("Inspect() with a cancelled context = %v, want context.Canceled and no refusal", err)
	}

	_, err = Inspector{QemuImg: "/nonexistent/qemu-img"}.Inspect(ctx, p, FormatQCOW2, Limits{})
	if err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("Inspect() without qemu-img = %v, want an error that is not a refusal", err)
	}
}
