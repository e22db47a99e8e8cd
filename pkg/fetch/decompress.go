package fetch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression names understood by Decompress.
const (
	CompressionNone = "none"
	CompressionGzip = "gz"
	CompressionXz   = "xz"
	CompressionZstd = "zst"
)

// decompressChunk is how much output is produced between two checks of the
// context and the size limit.
const decompressChunk = 1 << 20

// CompressionFromName guesses the compression of a file from the suffix of
// its name or URL (a URL's query and fragment are ignored, case is not
// significant): ".gz" gives "gz", ".xz" "xz", ".zst" or ".zstd" "zst", and
// anything else "none".
func CompressionFromName(name string) string {
	if strings.Contains(name, "://") {
		if u, err := url.Parse(name); err == nil {
			name = u.Path
		}
	}
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".gz"):
		return CompressionGzip
	case strings.HasSuffix(lower, ".xz"):
		return CompressionXz
	case strings.HasSuffix(lower, ".zst"), strings.HasSuffix(lower, ".zstd"):
		return CompressionZstd
	}
	return CompressionNone
}

// Decompress streams the file src, compressed as c ("none", "gz", "xz" or
// "zst"), into a new file dst and returns the number of bytes written.
//
// dst must not exist: it is created with O_EXCL and mode 0600. It is written
// sparsely: aligned 64 KiB blocks of zeros become holes, and the file is
// then truncated to its full size. Multi-member gzip and multi-stream xz
// and zstd input are decoded whole.
//
// Decompress stops with an error wrapping ErrTooLarge before the output
// would exceed maxOutput bytes (0 or less means 64 GiB), with one wrapping
// ErrCorrupt when the input is truncated or damaged, and with ctx's error
// when ctx is done (checked after every MiB of output). On any error, dst is
// removed if Decompress created it; an existing dst is left alone. progress,
// if not nil, is called with the bytes written so far after each chunk of up
// to 1 MiB, so its last call reports the total.
func Decompress(ctx context.Context, src, dst, c string, maxOutput int64, progress func(written int64)) (int64, error) {
	if maxOutput <= 0 {
		maxOutput = defaultMaxBytes
	}
	switch c {
	case CompressionNone, CompressionGzip, CompressionXz, CompressionZstd:
	default:
		return 0, fmt.Errorf("decompress %s: unknown compression %q (want none, gz, xz or zst)", src, c)
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("decompress: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("decompress: %w", err)
	}
	n, err := decompressTo(ctx, in, out, c, maxOutput, progress)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("decompress: %w", cerr)
	}
	if err != nil {
		os.Remove(dst)
		return 0, fmt.Errorf("decompress %s: %w", src, err)
	}
	return n, nil
}

// decompressTo decodes in into out; see Decompress.
func decompressTo(ctx context.Context, in, out *os.File, c string, maxOutput int64, progress func(int64)) (int64, error) {
	br := bufio.NewReaderSize(in, 1<<20)
	if _, err := br.Peek(1); err == io.EOF && c != CompressionNone {
		return 0, fmt.Errorf("%w: the input is empty", ErrCorrupt)
	}
	src := &sourceReader{r: br}
	r, closeDecoder, err := newDecoder(src, c)
	if err != nil {
		return 0, src.classify(err)
	}
	defer closeDecoder()

	w := newSparseWriter(out)
	buf := make([]byte, decompressChunk)
	var written int64
	for {
		if err := ctx.Err(); err != nil {
			return written, ctxErr(ctx)
		}
		n, rerr := fill(r, buf)
		if n > 0 {
			if written+int64(n) > maxOutput {
				return written, fmt.Errorf("%w: the output exceeds %d bytes", ErrTooLarge, maxOutput)
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return written, err
			}
			written += int64(n)
			if progress != nil {
				progress(written)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return written, src.classify(rerr)
		}
	}
	if err := w.Close(); err != nil {
		return written, err
	}
	if err := out.Sync(); err != nil {
		return written, err
	}
	return written, nil
}

// fill reads into buf until it is full or r fails, and returns r's error
// unchanged (unlike io.ReadFull, which turns a short read into
// io.ErrUnexpectedEOF).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// newDecoder returns a reader of the decompressed data and a function
// releasing the decoder.
func newDecoder(r io.Reader, c string) (io.Reader, func(), error) {
	switch c {
	case CompressionGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case CompressionXz:
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return xr, func() {}, nil
	case CompressionZstd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return r, func() {}, nil
}

// sourceReader reads the compressed input and remembers a failed read of
// the file itself, so that decoder errors can be told apart from I/O errors.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// classify wraps a decoding error: the input file's own read error as it
// is, anything else (a format error, truncated input) as ErrCorrupt.
func (s *sourceReader) classify(err error) error {
	if s.err != nil && errors.Is(err, s.err) {
		return fmt.Errorf("read compressed input: %w", err)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}
