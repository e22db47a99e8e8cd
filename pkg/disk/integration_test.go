package disk

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/internal/testtool"
)

// requireQemuImg skips the test when qemu-img is not installed.
func requireQemuImg(t *testing.T) {
	t.Helper()
	testtool.Need(t, "Debian: qemu-utils", "qemu-img")
}

// rawImage writes a sparse raw image of size bytes and returns its path.
func rawImage(t *testing.T, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIntegrationOverlayLifecycle(t *testing.T) {
	requireQemuImg(t)
	ctx := context.Background()
	dir := t.TempDir()
	base := rawImage(t, dir, "base.raw", 4*MiB)
	q := NewQemuImg(nil)

	t.Run("overlay with backing size", func(t *testing.T) {
		ov := filepath.Join(dir, "same.qcow2")
		if err := q.CreateOverlay(ctx, ov, base, FormatRaw, 0); err != nil {
			t.Fatal(err)
		}
		got, err := q.Info(ctx, ov, FormatQCOW2)
		if err != nil {
			t.Fatal(err)
		}
		if got.Format != FormatQCOW2 || got.VirtualSize != 4*MiB || got.BackingFilename != base ||
			got.BackingFormat != FormatRaw || got.HasDataFile || got.ActualSize <= 0 {
			t.Errorf("Info() = %+v", got)
		}
		if fi, err := os.Stat(ov); err != nil || fi.Mode().Perm() != ImageFileMode {
			t.Errorf("overlay mode = %v, %v; want %v", fi.Mode().Perm(), err, ImageFileMode)
		}
	})

	t.Run("overlay larger than backing", func(t *testing.T) {
		ov := filepath.Join(dir, "big.qcow2")
		if err := q.CreateOverlay(ctx, ov, base, FormatRaw, 8*MiB); err != nil {
			t.Fatal(err)
		}
		got, err := q.Info(ctx, ov, FormatQCOW2)
		if err != nil || got.VirtualSize != 8*MiB {
			t.Fatalf("Info() = %+v, %v; want 8M", got, err)
		}
	})

	t.Run("relative paths become absolute", func(t *testing.T) {
		t.Chdir(dir)
		if err := q.CreateOverlay(ctx, "rel.qcow2", "base.raw", FormatRaw, 0); err != nil {
			t.Fatal(err)
		}
		got, err := q.Info(ctx, "rel.qcow2", FormatQCOW2)
		if err != nil || got.BackingFilename != base {
			t.Errorf("Info() = %+v, %v; want backing %s", got, err, base)
		}
	})

	t.Run("smaller than backing is refused", func(t *testing.T) {
		ov := filepath.Join(dir, "small.qcow2")
		if err := q.CreateOverlay(ctx, ov, base, FormatRaw, MiB); !errors.Is(err, ErrShrink) {
			t.Fatalf("CreateOverlay() = %v, want ErrShrink", err)
		}
		assertMissing(t, ov)
	})

	t.Run("existing path is not overwritten", func(t *testing.T) {
		ov := filepath.Join(dir, "taken.qcow2")
		if err := os.WriteFile(ov, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := q.CreateOverlay(ctx, ov, base, FormatRaw, 0); !errors.Is(err, os.ErrExist) {
			t.Fatalf("CreateOverlay() = %v, want os.ErrExist", err)
		}
		if b, _ := os.ReadFile(ov); string(b) != "keep me" {
			t.Errorf("existing file overwritten: %q", b)
		}
	})

	t.Run("missing backing leaves nothing", func(t *testing.T) {
		ov := filepath.Join(dir, "orphan.qcow2")
		err := q.CreateOverlay(ctx, ov, filepath.Join(dir, "nope.raw"), FormatRaw, 0)
		var ce *CommandError
		if !errors.As(err, &ce) {
			t.Fatalf("CreateOverlay() = %v, want CommandError", err)
		}
		assertMissing(t, ov)
	})

	t.Run("wrong backing format fails in qemu-img and cleans up", func(t *testing.T) {
		ov := filepath.Join(dir, "wrongfmt.qcow2")
		// base.raw is not a qcow2 image: qemu-img info -f qcow2 fails.
		if err := q.CreateOverlay(ctx, ov, base, FormatQCOW2, 0); err == nil {
			t.Fatal("CreateOverlay() with wrong backing format succeeded")
		}
		assertMissing(t, ov)
	})
}

// A raw disk whose guest wrote a qcow2 header must still be read as raw:
// the format is never probed.
func TestIntegrationInfoNeverProbes(t *testing.T) {
	requireQemuImg(t)
	ctx := context.Background()
	dir := t.TempDir()
	q := NewQemuImg(nil)
	base := rawImage(t, dir, "base.raw", MiB)
	ov := filepath.Join(dir, "ov.qcow2")
	if err := q.CreateOverlay(ctx, ov, base, FormatRaw, 0); err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile(ov)
	if err != nil {
		t.Fatal(err)
	}
	guestDisk := filepath.Join(dir, "guest.raw")
	if err := os.WriteFile(guestDisk, header, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := q.Info(ctx, guestDisk, FormatRaw)
	if err != nil {
		t.Fatal(err)
	}
	// qemu rounds a raw image's size up to whole 512-byte sectors.
	wantSize := (int64(len(header)) + 511) / 512 * 512
	if got.Format != FormatRaw || got.BackingFilename != "" || got.BackingFormat != "" || got.VirtualSize != wantSize {
		t.Errorf("Info(raw) = %+v; want a plain raw image of %d bytes", got, wantSize)
	}
}

func TestIntegrationInfoDataFile(t *testing.T) {
	requireQemuImg(t)
	ctx := context.Background()
	dir := t.TempDir()
	img := filepath.Join(dir, "df.qcow2")
	data := filepath.Join(dir, "data.raw")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2",
		"-o", "data_file="+data, img, "1M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	got, err := NewQemuImg(nil).Info(ctx, img, FormatQCOW2)
	if err != nil {
		t.Fatal(err)
	}
	if !got.HasDataFile || got.DataFile != data {
		t.Errorf("Info() = %+v; want data file %s", got, data)
	}
}

func TestExecRunnerTimeout(t *testing.T) {
	testtool.Need(t, "Debian: coreutils", "sleep")
	start := time.Now()
	_, _, err := ExecRunner{Timeout: 50 * time.Millisecond}.Run(context.Background(), "sleep", "10")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run() = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run() took %v after a 50ms timeout", d)
	}
}

func TestExecRunnerOutput(t *testing.T) {
	testtool.Need(t, "Debian: dash", "sh")
	stdout, stderr, err := ExecRunner{}.Run(context.Background(), "sh", "-c", "echo out; echo err >&2; exit 3")
	if err == nil || string(stdout) != "out\n" || string(stderr) != "err\n" {
		t.Errorf("Run() = %q, %q, %v; want out, err and an exit error", stdout, stderr, err)
	}
}

func assertMissing(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after failure (stat: %v)", p, err)
	}
}
