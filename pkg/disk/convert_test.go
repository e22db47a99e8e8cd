package disk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/galevm/gale/pkg/internal/testimage"
)

func TestConvertArgs(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	f := &fakeRunner{replies: map[string]fakeReply{"convert": {stdout: "    (0.00/100%)\r    (50.00/100%)\r    (100.00/100%)\r\n"}}}
	var got []float64
	if err := NewQemuImg(f).Convert(context.Background(), "in.vmdk", "vmdk", "out.qcow2", func(p float64) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	want := "qemu-img convert -p -f vmdk -O qcow2 " + filepath.Join(dir, "in.vmdk") + " " + filepath.Join(dir, "out.qcow2")
	if lines := f.commandLines(); len(lines) != 1 || lines[0] != want {
		t.Errorf("commands = %q, want [%q]", lines, want)
	}
	if !slices.Equal(got, []float64{0, 0.5, 1}) {
		t.Errorf("progress = %v, want [0 0.5 1]", got)
	}
	fi, err := os.Stat(filepath.Join(dir, "out.qcow2"))
	if err != nil || fi.Mode().Perm() != ImageFileMode {
		t.Errorf("destination = %v, %v; want mode %v", fi, err, ImageFileMode)
	}
}

func TestConvertRefusesBadArguments(t *testing.T) {
	dir := t.TempDir()
	f := &fakeRunner{}
	q := NewQemuImg(f)
	src := filepath.Join(dir, "in.raw")
	for _, c := range []struct{ name, src, format, dst string }{
		{"unknown format", src, "json", filepath.Join(dir, "a.qcow2")},
		{"empty format", src, "", filepath.Join(dir, "b.qcow2")},
		{"empty source", "", FormatRaw, filepath.Join(dir, "c.qcow2")},
		{"empty destination", src, FormatRaw, ""},
		{"same file", src, FormatRaw, src},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := q.Convert(context.Background(), c.src, c.format, c.dst, nil); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("Convert() = %v, want ErrInvalidArgument", err)
			}
		})
	}
	if len(f.calls) != 0 {
		t.Errorf("qemu-img ran: %q", f.commandLines())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files created: %v", entries)
	}
}

func TestConvertRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.qcow2")
	if err := os.WriteFile(dst, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakeRunner{}
	err := NewQemuImg(f).Convert(context.Background(), filepath.Join(dir, "in.raw"), FormatRaw, dst, nil)
	if !errors.Is(err, ErrExists) || !errors.Is(err, os.ErrExist) {
		t.Fatalf("Convert() = %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "keep me" {
		t.Errorf("existing file overwritten: %q", b)
	}
	if len(f.calls) != 0 {
		t.Errorf("qemu-img ran: %q", f.commandLines())
	}
}

func TestConvertRemovesDestinationOnFailure(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.qcow2")
	f := &fakeRunner{replies: map[string]fakeReply{"convert": {
		stderr: "qemu-img: error while reading\n",
		err:    errors.New("exit status 1"),
		hook:   func(args []string) { _ = os.WriteFile(args[len(args)-1], []byte("partial"), 0o600) },
	}}}
	err := NewQemuImg(f).Convert(context.Background(), filepath.Join(dir, "in.raw"), FormatRaw, dst, nil)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Stderr != "qemu-img: error while reading" {
		t.Fatalf("Convert() = %v, want CommandError with stderr", err)
	}
	assertMissing(t, dst)
}

// blockingStreamer is a StreamRunner that writes some progress and then
// waits for ctx to end, as a long conversion would.
type blockingStreamer struct{ started chan struct{} }

func (b blockingStreamer) Run(context.Context, string, ...string) ([]byte, []byte, error) {
	return nil, nil, errors.New("Run must not be used when RunStream exists")
}

func (b blockingStreamer) RunStream(ctx context.Context, stdout io.Writer, _ string, args ...string) ([]byte, error) {
	_ = os.WriteFile(args[len(args)-1], []byte("partial"), 0o600)
	_, _ = io.WriteString(stdout, "    (0.00/100%)\r    (10.00/100%)\r")
	close(b.started)
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestConvertCancelRemovesDestination(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.qcow2")
	r := blockingStreamer{started: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []float64
	go func() { <-r.started; cancel() }()
	err := (&QemuImg{Runner: r}).Convert(ctx, filepath.Join(dir, "in.raw"), FormatRaw, dst, func(p float64) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, p)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Convert() = %v, want context.Canceled", err)
	}
	assertMissing(t, dst)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []float64{0, 0.1}) {
		t.Errorf("progress = %v, want streamed [0 0.1] and no 1 after a failure", got)
	}
}

func TestProgressWriter(t *testing.T) {
	var got []float64
	w := &progressWriter{report: func(p float64) { got = append(got, p) }, last: -1}
	out := "    (0.00/100%)\r    (1.20/100%)\r    (1.20/100%)\r    (0.50/100%)\rgarbage\r" +
		strings.Repeat("x", 10000) + "\r    (100.00/100%)\r\n"
	// Feed it in awkward pieces: reports split across writes must still parse.
	for len(out) > 0 {
		n := min(len(out), 7)
		if _, err := w.Write([]byte(out[:n])); err != nil {
			t.Fatal(err)
		}
		out = out[n:]
	}
	w.done()
	if want := []float64{0, 0.012, 1}; !slices.Equal(got, want) {
		t.Errorf("progress = %v, want %v", got, want)
	}
	if cap(w.line) > 2*maxProgressLine {
		t.Errorf("line buffer grew to %d bytes", cap(w.line))
	}
}

// patternedRaw is testimage.PatternedRaw.
func patternedRaw(t *testing.T, dir, name string, size int64) string {
	return testimage.PatternedRaw(t, dir, name, size)
}

// compareImages fails the test unless qemu-img compare finds the two
// images' guest contents identical.
func compareImages(t *testing.T, a, aFormat, b, bFormat string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "compare", "-f", aFormat, "-F", bFormat, a, b).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img compare %s %s: %v: %s", a, b, err, out)
	}
}

func TestIntegrationConvert(t *testing.T) {
	requireQemuImg(t)
	ctx := context.Background()
	dir := t.TempDir()
	src := patternedRaw(t, dir, "src.raw", 8*MiB)
	q := NewQemuImg(nil)

	for _, opts := range []ConvertOptions{{}, {Sync: true}} {
		dst := filepath.Join(t.TempDir(), "out.qcow2")
		var got []float64
		if err := q.ConvertWithOptions(ctx, src, FormatRaw, dst, opts, func(p float64) { got = append(got, p) }); err != nil {
			t.Fatal(err)
		}
		compareImages(t, src, FormatRaw, dst, FormatQCOW2)
		if len(got) < 2 || got[len(got)-1] != 1 || !slices.IsSorted(got) {
			t.Errorf("opts %+v: progress = %v, want increasing to 1", opts, got)
		}
		info, err := q.Info(ctx, dst, FormatQCOW2)
		if err != nil || info.VirtualSize != 8*MiB || info.BackingFilename != "" {
			t.Errorf("opts %+v: Info() = %+v, %v", opts, info, err)
		}
		if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != ImageFileMode {
			t.Errorf("opts %+v: mode = %v, %v; want %v", opts, fi.Mode().Perm(), err, ImageFileMode)
		}
	}

	t.Run("raw output", func(t *testing.T) {
		qcow := filepath.Join(t.TempDir(), "mid.qcow2")
		if err := q.Convert(ctx, src, FormatRaw, qcow, nil); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "out.raw")
		if err := q.ConvertWithOptions(ctx, qcow, FormatQCOW2, dst, ConvertOptions{OutputFormat: FormatRaw}, nil); err != nil {
			t.Fatal(err)
		}
		compareImages(t, src, FormatRaw, dst, FormatRaw)
	})

	t.Run("unknown output format", func(t *testing.T) {
		dst := filepath.Join(dir, "out.vmdk")
		err := q.ConvertWithOptions(ctx, src, FormatRaw, dst, ConvertOptions{OutputFormat: "vmdk"}, nil)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ConvertWithOptions() = %v, want ErrInvalidArgument", err)
		}
		assertMissing(t, dst)
	})

	t.Run("failure removes destination", func(t *testing.T) {
		dst := filepath.Join(dir, "bad.qcow2")
		// A raw file is not a qcow2 image.
		if err := q.Convert(ctx, src, FormatQCOW2, dst, nil); err == nil {
			t.Fatal("Convert() of a raw file as qcow2 succeeded")
		}
		assertMissing(t, dst)
	})

	t.Run("cancelled context removes destination", func(t *testing.T) {
		dst := filepath.Join(dir, "cancelled.qcow2")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := q.Convert(cctx, src, FormatRaw, dst, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Convert() = %v, want context.Canceled", err)
		}
		assertMissing(t, dst)
	})
}

// TestIntegrationConvertNeverProbes converts a raw image whose first bytes
// are a qcow2 header naming a backing file. The result must hold the raw
// bytes, header included, and nothing from the backing file.
func TestIntegrationConvertNeverProbes(t *testing.T) {
	requireQemuImg(t)
	ctx := context.Background()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.raw")
	if err := os.WriteFile(secret, bytes.Repeat([]byte("SECRET!!"), 128*1024), 0o600); err != nil {
		t.Fatal(err)
	}
	hdr := filepath.Join(dir, "hdr.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", hdr, "1M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	header, err := os.ReadFile(hdr)
	if err != nil {
		t.Fatal(err)
	}
	src := rawImage(t, dir, "looks-like-qcow2.raw", 2*MiB)
	if err := os.WriteFile(src, append(header, make([]byte, int(2*MiB)-len(header))...), 0o600); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(dir, "out.qcow2")
	if err := NewQemuImg(nil).Convert(ctx, src, FormatRaw, dst, nil); err != nil {
		t.Fatal(err)
	}
	compareImages(t, src, FormatRaw, dst, FormatQCOW2)
	info, err := NewQemuImg(nil).Info(ctx, dst, FormatQCOW2)
	if err != nil || info.BackingFilename != "" || info.VirtualSize != 2*MiB {
		t.Errorf("Info() = %+v, %v; want 2M and no backing file", info, err)
	}
	// Read the guest's first bytes back through qemu-img: the header, verbatim.
	back := filepath.Join(dir, "back.raw")
	if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", dst, back).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert back: %v: %s", err, out)
	}
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, header) || bytes.Contains(got, []byte("SECRET!!")) {
		t.Errorf("converted image does not hold the raw bytes verbatim (or holds the backing file's)")
	}
}
