package saveimage

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// benchStreamLen is the size of the synthetic migration stream the
// benchmarks copy: about what a small guest's saved RAM amounts to.
const benchStreamLen = 256 << 20

// benchImage writes a save image with a benchStreamLen-byte stream into dir,
// without holding the stream in memory.
func benchImage(b *testing.B, dir string) (string, int64) {
	b.Helper()
	p := filepath.Join(dir, "src.save")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	head := buildImage(imageOpts{xml: testXML, cookie: strp(testCookie), wasRunning: 1, pad: RewritePadding, stream: testStream(streamHeadLen)})
	if _, err := f.Write(head); err != nil {
		b.Fatal(err)
	}
	chunk := testStream(1 << 20)[streamHeadLen:]
	for n := streamHeadLen; n < benchStreamLen; n += len(chunk) {
		if _, err := f.Write(chunk[:min(len(chunk), benchStreamLen-n)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return p, st.Size()
}

// BenchmarkRewrite measures Rewrite on an image with a 256 MiB stream.
// Compare with BenchmarkPlainCopy, the cost of copying the same file.
func BenchmarkRewrite(b *testing.B) {
	dir := b.TempDir()
	src, size := benchImage(b, dir)
	xml := []byte("<domain type='qemu'><name>bench-clone</name></domain>")
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(dir, fmt.Sprintf("dst-%d.save", i))
		if err := Rewrite(b.Context(), src, dst, xml); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.Remove(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkPlainCopy is the baseline for BenchmarkRewrite: io.Copy of the
// same file into a new one (also copy_file_range on Linux).
func BenchmarkPlainCopy(b *testing.B) {
	dir := b.TempDir()
	src, size := benchImage(b, dir)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(dir, fmt.Sprintf("dst-%d.save", i))
		if err := plainCopy(src, dst); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.Remove(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func plainCopy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
