package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	be = binary.BigEndian
	le = binary.LittleEndian
)

// maxNameLen caps names read from an image before they go into messages.
const maxNameLen = 256

// maxTableRead caps a single table read. Every table an accepted image can
// have fits: a 2 TiB qcow2 with 512-byte clusters has a 32 MiB L1 table,
// qemu's own maximum.
const maxTableRead = 64 << 20

// readAt reads n bytes at off from an image of the given size. A range that
// does not lie inside the file is refused as truncated, and one larger than
// maxTableRead as malformed, naming what was being read.
func readAt(r io.ReaderAt, size int64, off uint64, n uint64, what string) ([]byte, error) {
	if n > maxTableRead {
		return nil, refuse(ReasonMalformed, "%s is implausibly large (%d bytes)", what, n)
	}
	if !within(size, off, n) {
		return nil, refuse(ReasonTruncated, "%s (%d bytes at offset %d) lies beyond the end of the %d-byte file", what, n, off, size)
	}
	buf := make([]byte, n)
	got, err := r.ReadAt(buf, int64(off))
	switch {
	case got == len(buf):
		return buf, nil
	case err == nil || errors.Is(err, io.EOF):
		return nil, refuse(ReasonChanged, "%s at offset %d: the file ended early; it is being modified", what, off)
	default:
		return nil, fmt.Errorf("read %s at offset %d: %w", what, off, err)
	}
}

// within reports whether [off, off+n) lies inside a file of the given size,
// without overflowing.
func within(size int64, off, n uint64) bool {
	if size < 0 {
		return false
	}
	s := uint64(size)
	return off <= s && n <= s-off
}

// readHead reads up to n bytes at off, fewer if the file is shorter.
func readHead(r io.ReaderAt, size int64, off int64, n int64) ([]byte, error) {
	if off >= size {
		return nil, nil
	}
	n = min(n, size-off)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %d bytes at offset %d: %w", n, off, err)
	}
	return buf, nil
}

// sanitize turns bytes read from an image into a short printable string:
// it stops at the first NUL, replaces invalid UTF-8 and non-printable
// characters with '?', and caps the length.
func sanitize(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	var sb strings.Builder
	n := 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if n == maxNameLen {
			sb.WriteString("...")
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		sb.WriteRune(r)
		n++
	}
	return sb.String()
}

// quoteNames quotes each sanitized name and joins them with ", ".
func quoteNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(sanitize([]byte(n)))
	}
	return strings.Join(q, ", ")
}

// humanSize formats n bytes in binary units for messages, e.g. "1.5 GiB",
// followed by the exact byte count.
func humanSize(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return fmt.Sprintf("%s %s (%d bytes)", s, units[i], n)
}

// ceilDiv returns ceil(a/b) for b > 0.
func ceilDiv(a, b uint64) uint64 { return a/b + min(a%b, 1) }

// isZero reports whether b is all zero bytes.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
