package inspect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/disk"
)

// TestOpenNoFollow checks the open itself, behind openImage's lstat check,
// for a path swapped between the two: a symbolic link is not followed and
// a FIFO does not block.
func TestOpenNoFollow(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(target, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.raw")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if f, err := openNoFollow(link); err == nil {
		f.Close()
		t.Error("openNoFollow(symlink) succeeded")
	} else {
		wantRefused(t, err, ReasonNotRegular, "symbolic link")
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := openNoFollow(fifo)
		if err == nil {
			var fi os.FileInfo
			if fi, err = f.Stat(); err == nil {
				err = checkType(fi.Mode())
			}
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		wantRefused(t, err, ReasonNotRegular, "FIFO")
	case <-time.After(10 * time.Second):
		// Unblock the open so the goroutine can finish.
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		t.Fatal("opening a FIFO blocked")
	}
}

func TestUnchanged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(p, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := openImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.f.Close()
	if err := img.unchanged(p); err != nil {
		t.Fatalf("unchanged() = %v", err)
	}
	if err := os.Truncate(p, 8192); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, img.unchanged(p), ReasonChanged, "size")

	if err := os.Rename(p, p+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, img.unchanged(p), ReasonChanged, "replaced")
}

// TestInspectOwnDescriptor inspects a file through the descriptor the
// caller opened it with, in each spelling, and converts it the same way.
func TestInspectOwnDescriptor(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	dir := t.TempDir()
	raw := patternedRaw(t, dir, "src.raw", 4*mib)
	img := makeImage(t, raw, formatCase{"vmdk", FormatVMDK, ""})
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range []string{
		fmt.Sprintf("/proc/self/fd/%d", f.Fd()),
		fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()),
		fmt.Sprintf("/dev/fd/%d", f.Fd()),
	} {
		rep, err := Inspect(ctx, p, FormatVMDK, Limits{})
		if err != nil || rep.VirtualSize != 4*mib {
			t.Errorf("Inspect(%s) = %+v, %v", p, rep, err)
		}
	}
	qemuPath, _ := ownDescriptor(fmt.Sprintf("/dev/fd/%d", f.Fd()))
	dst := filepath.Join(dir, "out.qcow2")
	if err := disk.NewQemuImg(nil).Convert(ctx, qemuPath, FormatVMDK, dst, nil); err != nil {
		t.Fatal(err)
	}
	qemuImg(t, "compare", "-f", "raw", "-F", "qcow2", raw, dst)

	// Another process's descriptors are just symbolic links.
	if fi, err := os.Lstat("/proc/1/fd/0"); err == nil && fi.Mode()&os.ModeSymlink != 0 && os.Getpid() != 1 {
		_, err = pureGo(t).Inspect(ctx, "/proc/1/fd/0", FormatRaw, Limits{})
		wantRefused(t, err, ReasonNotRegular, "symbolic link")
	}

	// A descriptor of a FIFO or directory is refused without blocking.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ff, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, c := range []struct {
		f    *os.File
		want string
	}{{ff, "FIFO"}, {d, "directory"}} {
		_, err := pureGo(t).Inspect(ctx, fmt.Sprintf("/proc/self/fd/%d", c.f.Fd()), FormatRaw, Limits{})
		wantRefused(t, err, ReasonNotRegular, c.want)
	}
}
