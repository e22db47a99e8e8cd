package preflight

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// maxDecompressed bounds the decompressed size of one initramfs archive.
const maxDecompressed = 2 << 30

// initramfs is what an initramfs holds, as far as the checks care.
type initramfs struct {
	// Modules are the kernel modules it holds, by name (see moduleName).
	Modules map[string]bool
	// Formats are its parts in order: "cpio" for an uncompressed archive
	// (such as early microcode), else the compression of the part.
	Formats []string
}

// compression formats of initramfs parts, by leading magic, and the
// decompressor (with arguments) that reads them on stdin.
var decompressors = []struct {
	name  string
	magic []byte
	argv  []string
}{
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}, []string{"zstd", "-dcq"}},
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, []string{"xz", "-dcq"}},
	{"lzma", []byte{0x5d, 0x00, 0x00}, []string{"xz", "--format=lzma", "-dcq"}},
	{"lz4", []byte{0x02, 0x21, 0x4c, 0x18}, []string{"lz4", "-dcq"}},
	{"bzip2", []byte("BZh"), []string{"bzip2", "-dcq"}},
}

// listInitramfs reads the initramfs at host path file: one or more
// concatenated parts, each an uncompressed newc cpio archive (early
// microcode comes first) or a compressed stream of them. gzip is read in
// Go; zstd, xz, lzma, lz4 and bzip2 by their binaries under limits.
func listInitramfs(ctx context.Context, file string) (*initramfs, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open initramfs: %w", err)
	}
	defer func() { _ = f.Close() }()
	ir := &initramfs{Modules: map[string]bool{}}
	add := func(e cpioEntry) {
		if name, ok := moduleName(e.Name); ok {
			ir.Modules[name] = true
		}
	}
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		if err := skipZeros(r); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read initramfs: %w", err)
		}
		head, _ := r.Peek(6)
		switch {
		case isCpioMagic(head):
			ir.Formats = append(ir.Formats, "cpio")
			if err := readCpio(r, add); err != nil {
				return nil, fmt.Errorf("initramfs part %d: %w", len(ir.Formats), err)
			}
			continue
		case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
			ir.Formats = append(ir.Formats, "gzip")
			if err := readGzipPart(r, add); err != nil {
				return nil, fmt.Errorf("initramfs part %d (gzip): %w", len(ir.Formats), err)
			}
			continue
		}
		d := -1
		for i, dc := range decompressors {
			if bytes.HasPrefix(head, dc.magic) {
				d = i
				break
			}
		}
		if d < 0 {
			return nil, fmt.Errorf("initramfs part %d: unknown format (starts % x)", len(ir.Formats)+1, head)
		}
		dc := decompressors[d]
		ir.Formats = append(ir.Formats, dc.name)
		consume := func(out io.Reader) error { return readCpios(bufio.NewReaderSize(out, 1<<16), add) }
		if err := streamTool(ctx, r, maxDecompressed, consume, dc.argv[0], dc.argv[1:]...); err != nil {
			return nil, fmt.Errorf("initramfs part %d (%s): %w", len(ir.Formats), dc.name, err)
		}
		// The decompressor read the rest of the file.
		break
	}
	if len(ir.Formats) == 0 {
		return nil, errors.New("initramfs is empty")
	}
	return ir, nil
}

// readGzipPart reads one gzip member holding cpio archives, and leaves r
// just after it.
func readGzipPart(r *bufio.Reader, fn func(cpioEntry)) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	gz.Multistream(false)
	lr := &io.LimitedReader{R: gz, N: maxDecompressed + 1}
	if err := readCpios(bufio.NewReaderSize(lr, 1<<16), fn); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return err
	}
	if lr.N <= 0 {
		return fmt.Errorf("more than %d bytes decompressed", int64(maxDecompressed))
	}
	return gz.Close()
}

// readCpios reads concatenated cpio archives (with zero padding between
// them) until the end of r.
func readCpios(r *bufio.Reader, fn func(cpioEntry)) error {
	for {
		if err := readCpio(r, fn); err != nil {
			return err
		}
		if err := skipZeros(r); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		head, _ := r.Peek(6)
		if !isCpioMagic(head) {
			return fmt.Errorf("unexpected data after cpio archive (starts % x)", head)
		}
	}
}

// skipZeros discards NUL bytes; it returns io.EOF at the end of r.
func skipZeros(r *bufio.Reader) error {
	for {
		b, err := r.Peek(1)
		if err != nil {
			return err
		}
		if b[0] != 0 {
			return nil
		}
		buffered := r.Buffered()
		p, _ := r.Peek(buffered)
		n := 0
		for n < len(p) && p[n] == 0 {
			n++
		}
		if _, err := r.Discard(n); err != nil {
			return err
		}
	}
}

// moduleName returns the module name of a kernel module file name (any
// directory, .ko with optional .xz, .zst or .gz), with "-" read as "_" as
// modprobe does.
func moduleName(p string) (string, bool) {
	base := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	if !strings.HasSuffix(base, ".ko") {
		return "", false
	}
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_"), true
}
