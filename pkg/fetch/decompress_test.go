package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// compress returns data compressed as c.
func compress(t testing.TB, c string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := compressWriter(t, c, &buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compressWriter(t testing.TB, c string, dst io.Writer) io.WriteCloser {
	t.Helper()
	var (
		w   io.WriteCloser
		err error
	)
	switch c {
	case CompressionGzip:
		w = gzip.NewWriter(dst)
	case CompressionXz:
		w, err = xz.NewWriter(dst)
	case CompressionZstd:
		w, err = zstd.NewWriter(dst)
	default:
		t.Fatalf("compression %q", c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// diskLike returns data shaped like a disk image: random blocks, long zero
// runs, and a size that is no multiple of the sparse block.
func diskLike() []byte {
	var b bytes.Buffer
	b.Write(testData(100000, 20))
	b.Write(make([]byte, 3<<20))
	b.Write(testData(sparseBlock, 21))
	b.Write(make([]byte, 1<<20+5))
	b.Write(testData(777, 22))
	b.Write(make([]byte, 200000))
	return b.Bytes()
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecompressRoundTrip(t *testing.T) {
	data := diskLike()
	gzTwo := append(compress(t, CompressionGzip, data[:500000]), compress(t, CompressionGzip, data[500000:])...)
	tests := []struct {
		name, c string
		input   []byte
	}{
		{"none", CompressionNone, data},
		{"gz", CompressionGzip, compress(t, CompressionGzip, data)},
		{"multi-member gz", CompressionGzip, gzTwo},
		{"xz", CompressionXz, compress(t, CompressionXz, data)},
		{"zst", CompressionZstd, compress(t, CompressionZstd, data)},
		{"empty zst", CompressionZstd, compress(t, CompressionZstd, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := data
			if tt.name == "empty zst" {
				want = []byte{}
			}
			src := writeTemp(t, "in", tt.input)
			dst := filepath.Join(t.TempDir(), "out.raw")
			var last int64
			n, err := Decompress(context.Background(), src, dst, tt.c, 0, func(w int64) { last = w })
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			if n != int64(len(want)) || (len(want) > 0 && last != n) {
				t.Errorf("wrote %d, last progress %d, want %d", n, last, len(want))
			}
			assertFile(t, dst, want)
			if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("dst mode: %v, %v", fi, err)
			}
		})
	}
}

func TestDecompressBomb(t *testing.T) {
	const total, limit = 200 << 20, 16 << 20
	zeros := make([]byte, 1<<20)
	for _, c := range []string{CompressionZstd, CompressionGzip} {
		t.Run(c, func(t *testing.T) {
			var buf bytes.Buffer
			w := compressWriter(t, c, &buf)
			for range total / len(zeros) {
				w.Write(zeros)
			}
			w.Close()
			src := writeTemp(t, "bomb", buf.Bytes())
			dst := filepath.Join(t.TempDir(), "out")
			var maxSeen int64
			start := time.Now()
			_, err := Decompress(context.Background(), src, dst, c, limit, func(w int64) { maxSeen = max(maxSeen, w) })
			elapsed := time.Since(start)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			assertAbsent(t, dst)
			if maxSeen > limit {
				t.Errorf("wrote %d bytes, more than the cap %d", maxSeen, limit)
			}
			if elapsed > time.Second {
				t.Errorf("took %v: did not stop early (%d compressed bytes)", elapsed, buf.Len())
			}
		})
	}
}

func TestDecompressExactLimit(t *testing.T) {
	data := testData(3<<20, 23)
	src := writeTemp(t, "in.zst", compress(t, CompressionZstd, data))
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := Decompress(context.Background(), src, dst, CompressionZstd, int64(len(data)), nil); err != nil {
		t.Fatalf("a file of exactly the limit: %v", err)
	}
	os.Remove(dst)
	if _, err := Decompress(context.Background(), src, dst, CompressionZstd, int64(len(data))-1, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over the limit: %v", err)
	}
}

func TestDecompressCorrupt(t *testing.T) {
	data := testData(512<<10, 24)
	for _, c := range []string{CompressionGzip, CompressionXz, CompressionZstd} {
		full := compress(t, c, data)
		garbled := bytes.Clone(full)
		for i := len(garbled) / 2; i < len(garbled)/2+64; i++ {
			garbled[i] ^= 0x5a
		}
		inputs := map[string][]byte{
			"truncated":  full[:len(full)/2],
			"no trailer": full[:len(full)-4],
			"garbled":    garbled,
			"not " + c:   []byte("this is plain text, not compressed data at all"),
			"empty":      nil,
		}
		for name, in := range inputs {
			t.Run(c+" "+name, func(t *testing.T) {
				src := writeTemp(t, "in", in)
				dst := filepath.Join(t.TempDir(), "out")
				_, err := Decompress(context.Background(), src, dst, c, 0, nil)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				assertAbsent(t, dst)
			})
		}
	}
}

func TestDecompressRefusesExistingDst(t *testing.T) {
	src := writeTemp(t, "in.gz", compress(t, CompressionGzip, []byte("new data")))
	dst := writeTemp(t, "out", []byte("precious"))
	_, err := Decompress(context.Background(), src, dst, CompressionGzip, 0, nil)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want fs.ErrExist", err)
	}
	assertFile(t, dst, []byte("precious"))
}

func TestDecompressCancelled(t *testing.T) {
	src := writeTemp(t, "in.zst", compress(t, CompressionZstd, make([]byte, 8<<20)))
	dst := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Decompress(ctx, src, dst, CompressionZstd, 0, func(w int64) {
		if w >= 2<<20 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertAbsent(t, dst)
}

func TestDecompressUnknownCompression(t *testing.T) {
	src := writeTemp(t, "in", []byte("x"))
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := Decompress(context.Background(), src, dst, "bz2", 0, nil); err == nil {
		t.Fatal("no error for bz2")
	}
	assertAbsent(t, dst)
}

// allocated returns the bytes the file at path occupies on disk.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestDecompressWritesSparse(t *testing.T) {
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	f, err := os.Create(probe)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.Close()
	if allocated(t, probe) > 1<<20 {
		t.Skip("the temporary directory's file system does not support holes")
	}

	var data bytes.Buffer
	data.Write(testData(5000, 25))
	data.Write(make([]byte, 32<<20))
	data.Write(testData(5000, 26))
	data.Write(make([]byte, 16<<20+3))
	src := writeTemp(t, "in.zst", compress(t, CompressionZstd, data.Bytes()))
	dst := filepath.Join(dir, "out")
	n, err := Decompress(context.Background(), src, dst, CompressionZstd, 0, nil)
	if err != nil {
		t.Fatalf("Decompress: %v", err)
	}
	assertFile(t, dst, data.Bytes())
	if used := allocated(t, dst); used > n/16 {
		t.Errorf("%d of %d bytes allocated, want the zero runs left as holes", used, n)
	}
}

func TestCompressionFromName(t *testing.T) {
	tests := map[string]string{
		"debian-12-generic-amd64.qcow2": CompressionNone,
		"alpine.img.gz":                 CompressionGzip,
		"Fedora.raw.XZ":                 CompressionXz,
		"disk.raw.zst":                  CompressionZstd,
		"disk.raw.zstd":                 CompressionZstd,
		"https://127.0.0.1/images/disk.raw.xz?sig=abc.gz": CompressionXz,
		"https://127.0.0.1/images/disk.qcow2#frag.zst":    CompressionNone,
		"archive.tar.gz": CompressionGzip,
		"gz":             CompressionNone,
		"":               CompressionNone,
	}
	for in, want := range tests {
		if got := CompressionFromName(in); got != want {
			t.Errorf("CompressionFromName(%q) = %q, want %q", in, got, want)
		}
	}
}
