package inspect

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/toolrun"
)

func TestInfoSpec(t *testing.T) {
	for _, c := range []struct {
		name string
		in   Inspector
		lim  Limits
		want toolrun.Spec
	}{
		{"defaults", Inspector{}, Limits{}, toolrun.Spec{
			Argv:    []string{"qemu-img", "info", "--output=json", "-f", "vmdk", "/imports/disk.vmdk"},
			Timeout: 30 * time.Second, MaxAddressSpace: 1 << 30, MaxCPUTime: 30 * time.Second, MaxOutput: maxInfoOutput,
		}},
		{"explicit", Inspector{QemuImg: "/opt/qemu/bin/qemu-img"}, Limits{AddressSpace: 512 << 20, CPUSeconds: 5, Timeout: time.Second}, toolrun.Spec{
			Argv:    []string{"/opt/qemu/bin/qemu-img", "info", "--output=json", "-f", "vmdk", "/imports/disk.vmdk"},
			Timeout: time.Second, MaxAddressSpace: 512 << 20, MaxCPUTime: 5 * time.Second, MaxOutput: maxInfoOutput,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.in.infoSpec("vmdk", "/imports/disk.vmdk", c.lim.withDefaults())
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("infoSpec() = %+v, want %+v", got, c.want)
			}
		})
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
// records the specs.
type scriptedInfo struct {
	out   string
	calls []toolrun.Spec
}

func (s *scriptedInfo) Run(_ context.Context, spec toolrun.Spec) (toolrun.Output, error) {
	s.calls = append(s.calls, spec)
	return toolrun.Output{Stdout: []byte(s.out)}, nil
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
	want := Inspector{}.infoSpec(FormatRaw, raw, lim.withDefaults())
	if len(s.calls) != 1 || !reflect.DeepEqual(s.calls[0], want) {
		t.Fatalf("runs = %+v, want [%+v]", s.calls, want)
	}
	if got := s.calls[0]; got.MaxAddressSpace != 256<<20 || got.MaxCPUTime != 7*time.Second || got.Argv[0] != "qemu-img" {
		t.Errorf("run %+v does not run qemu-img under the limits", got)
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
