// Package saveimage reads and rewrites libvirt's QEMU save-image files: the
// files that `virsh save` (virDomainSaveFlags) writes and `virsh restore`
// (virDomainRestoreFlags) reads, in the layout libvirt 9.0 (Debian 12)
// produces, save-image version 2.
//
// A save image is, in host byte order:
//
//	offset 0   header, 92 bytes:
//	           magic[16]     "LibvirtQemudSave" ("LibvirtQemudPart" while
//	                         libvirt is still writing the file)
//	           version       2
//	           data_len      length of the data that follows the header
//	           was_running   1 if the domain was running when saved, else 0
//	           compressed    0 raw, 1 gzip, 2 bzip2, 3 xz, 4 lzop, 5 zstd
//	           cookieOffset  offset of the save cookie within data, or 0
//	           unused[14]
//	offset 92  data, data_len bytes: the domain XML and a NUL; if
//	           cookieOffset != 0, the save cookie (XML) and a NUL starting at
//	           cookieOffset (= len(XML)+1); then zero padding (libvirt adds
//	           64 KiB so that the XML can later be edited in place)
//	offset 92+data_len
//	           the QEMU migration stream up to the end of the file: "QEVM",
//	           then the stream version 3 as a big-endian uint32, ...
//
// Only finished, uncompressed (raw) images in the host's byte order are
// accepted; every refusal wraps ErrFormat. Read and Open parse and validate
// the header and data but never read the migration stream beyond its first
// 8 bytes; Rewrite copies the stream unchanged with copy_file_range.
package saveimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"syscall"
)

// ErrFormat is wrapped by every error that refuses a file as a usable save
// image: not a save image at all, unfinished, an unsupported version or byte
// order, compressed, malformed header or data, truncated, or a missing or
// unrecognised migration stream. I/O errors are not wrapped in it.
var ErrFormat = errors.New("not a usable libvirt QEMU save image")

const (
	// HeaderSize is the size in bytes of the fixed save-image header.
	HeaderSize = 92

	// SupportedVersion is the only save-image version accepted.
	SupportedVersion = 2

	// MaxDataLen bounds the header's data_len. libvirt writes the domain XML,
	// the cookie and 64 KiB of padding there; anything larger than this is
	// treated as corruption rather than allocated.
	MaxDataLen = 16 << 20

	// RewritePadding is the number of zero bytes Rewrite appends after the
	// XML and cookie, as libvirt does when it writes an image.
	RewritePadding = 64 << 10
)

const (
	magicSave = "LibvirtQemudSave"
	magicPart = "LibvirtQemudPart"
	magicLen  = 16

	// Field offsets within the header.
	offVersion      = 16
	offDataLen      = 20
	offWasRunning   = 24
	offFormat       = 28
	offCookieOffset = 32

	streamMagic   = "QEVM"
	streamVersion = 3
	streamHeadLen = 8 // magic + version
)

// formatNames are libvirt's names for the header's compressed field.
// (libvirt 9.0 knows 0-5; later versions add 6, "sparse", which is a
// mapped-ram stream, not a compressed one.)
var formatNames = []string{"raw", "gzip", "bzip2", "xz", "lzop", "zstd", "sparse"}

func formatName(f uint32) string {
	if int64(f) < int64(len(formatNames)) {
		return fmt.Sprintf("%d (%s)", f, formatNames[f])
	}
	return fmt.Sprintf("%d (unknown)", f)
}

// Header holds the header fields of a save image, as numbers in host byte
// order. Format is the header's "compressed" field (0 = raw).
type Header struct {
	Version      uint32
	DataLen      uint32
	WasRunning   uint32
	Format       uint32
	CookieOffset uint32
}

// Image describes a validated save image.
type Image struct {
	Header Header
	// XML is the domain XML, without its terminating NUL; never empty and
	// never containing a NUL byte.
	XML []byte
	// Cookie is the save cookie (XML), without its terminating NUL; nil when
	// the image has none (Header.CookieOffset == 0).
	Cookie []byte
	// StreamOffset is the offset of the QEMU migration stream, always
	// HeaderSize + Header.DataLen.
	StreamOffset int64
	// Size is the size of the whole file; the stream is
	// Size - StreamOffset bytes long (at least 8).
	Size int64
}

// StreamLen returns the length of the migration stream in bytes.
func (im *Image) StreamLen() int64 { return im.Size - im.StreamOffset }

// Read parses and validates the save image of size bytes readable from r.
//
// It reads the header, the data_len bytes of data and the first 8 bytes of
// the migration stream, nothing else. Its only allocation proportional to the
// input is the data buffer, which is allocated only after data_len has been
// checked against MaxDataLen and against size. XML and Cookie share that
// buffer (with capacities clipped, so appending to one does not overwrite
// the other).
//
// A file that is not a finished, raw, version-2, host-byte-order save image
// with well-formed data and a QEVM migration stream is refused with an error
// wrapping ErrFormat; so is r ending before size. Other read errors are
// returned wrapped with context but do not wrap ErrFormat.
func Read(r io.ReaderAt, size int64) (*Image, error) {
	if size < 0 {
		return nil, fmt.Errorf("invalid size %d", size)
	}
	if size < magicLen {
		return nil, fmt.Errorf("%w: file is %d bytes, too short for a save-image header", ErrFormat, size)
	}

	var hb [HeaderSize]byte
	head := hb[:min(size, HeaderSize)]
	if err := readAt(r, head, 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	switch magic := string(hb[:magicLen]); magic {
	case magicSave:
	case magicPart:
		return nil, fmt.Errorf("%w: image is unfinished (magic %q): libvirt is still writing it, or the save failed", ErrFormat, magicPart)
	default:
		return nil, fmt.Errorf("%w: bad magic %q, want %q", ErrFormat, magic, magicSave)
	}
	if size < HeaderSize {
		return nil, fmt.Errorf("%w: header truncated: file is %d bytes, header is %d", ErrFormat, size, HeaderSize)
	}

	ne := binary.NativeEndian
	h := Header{
		Version:      ne.Uint32(hb[offVersion:]),
		DataLen:      ne.Uint32(hb[offDataLen:]),
		WasRunning:   ne.Uint32(hb[offWasRunning:]),
		Format:       ne.Uint32(hb[offFormat:]),
		CookieOffset: ne.Uint32(hb[offCookieOffset:]),
	}
	if h.Version != SupportedVersion {
		// Like libvirt, look at a too-large version byte-swapped: if that
		// makes sense, the image came from a host of the other byte order.
		// Say so, but refuse it too: only host-order images are supported.
		if h.Version > SupportedVersion {
			if sw := bits.ReverseBytes32(h.Version); sw <= SupportedVersion {
				return nil, fmt.Errorf("%w: header is in foreign byte order (version %d when byte-swapped): written on a host of other endianness", ErrFormat, sw)
			}
		}
		return nil, fmt.Errorf("%w: unsupported save-image version %d, want %d", ErrFormat, h.Version, SupportedVersion)
	}
	if h.WasRunning > 1 {
		return nil, fmt.Errorf("%w: invalid was_running %d, want 0 or 1", ErrFormat, h.WasRunning)
	}
	switch {
	case h.Format == 0:
	case h.Format <= 5:
		return nil, fmt.Errorf("%w: migration stream is compressed with %s; only raw images are supported", ErrFormat, formatNames[h.Format])
	default:
		return nil, fmt.Errorf("%w: unsupported save-image format %s; only raw images are supported", ErrFormat, formatName(h.Format))
	}
	if h.DataLen > MaxDataLen {
		return nil, fmt.Errorf("%w: data_len %d exceeds the %d-byte limit", ErrFormat, h.DataLen, MaxDataLen)
	}
	streamOff := int64(HeaderSize) + int64(h.DataLen)
	if streamOff > size {
		return nil, fmt.Errorf("%w: data (%d bytes at offset %d) extends beyond the end of the file (%d bytes)", ErrFormat, h.DataLen, HeaderSize, size)
	}

	data := make([]byte, h.DataLen)
	if err := readAt(r, data, HeaderSize); err != nil {
		return nil, fmt.Errorf("read data: %w", err)
	}
	xml, cookie, err := parseData(data, h.CookieOffset)
	if err != nil {
		return nil, err
	}

	switch n := size - streamOff; {
	case n == 0:
		return nil, fmt.Errorf("%w: no migration stream: file ends right after the data at offset %d", ErrFormat, streamOff)
	case n < streamHeadLen:
		return nil, fmt.Errorf("%w: migration stream truncated to %d bytes", ErrFormat, n)
	}
	var sh [streamHeadLen]byte
	if err := readAt(r, sh[:], streamOff); err != nil {
		return nil, fmt.Errorf("read migration stream header: %w", err)
	}
	if string(sh[:4]) != streamMagic {
		return nil, fmt.Errorf("%w: migration stream at offset %d starts with % x, not %q", ErrFormat, streamOff, sh[:4], streamMagic)
	}
	if v := binary.BigEndian.Uint32(sh[4:]); v != streamVersion {
		return nil, fmt.Errorf("%w: unsupported migration stream version %d, want %d", ErrFormat, v, streamVersion)
	}

	return &Image{
		Header:       h,
		XML:          xml,
		Cookie:       cookie,
		StreamOffset: streamOff,
		Size:         size,
	}, nil
}

// parseData splits the header data into the XML and the cookie and checks
// that the rest is zero padding.
func parseData(data []byte, cookieOffset uint32) (xml, cookie []byte, err error) {
	n := bytes.IndexByte(data, 0)
	if n < 0 {
		return nil, nil, fmt.Errorf("%w: domain XML is not NUL-terminated within data_len %d", ErrFormat, len(data))
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("%w: domain XML is empty", ErrFormat)
	}
	xml = data[:n:n]
	rest := n + 1
	if cookieOffset != 0 {
		if int64(cookieOffset) != int64(rest) {
			return nil, nil, fmt.Errorf("%w: cookie offset %d does not follow the %d-byte XML (want %d)", ErrFormat, cookieOffset, n, rest)
		}
		m := bytes.IndexByte(data[rest:], 0)
		if m < 0 {
			return nil, nil, fmt.Errorf("%w: save cookie at offset %d is not NUL-terminated within data_len %d", ErrFormat, cookieOffset, len(data))
		}
		cookie = data[rest : rest+m : rest+m]
		rest += m + 1
	}
	for i, b := range data[rest:] {
		if b != 0 {
			return nil, nil, fmt.Errorf("%w: non-zero byte 0x%02x in the padding at data offset %d", ErrFormat, b, rest+i)
		}
	}
	return xml, cookie, nil
}

// readAt fills p from r at off. Reaching the end of r early means the file
// is shorter than the size it was said to have: that is refused with
// ErrFormat.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: file truncated: unexpected end of file at offset %d", ErrFormat, off+int64(n))
	}
	return err
}

// Open opens the file at path and returns Read's result for it. It refuses
// (with ErrFormat) anything but a regular file, without blocking on FIFOs.
func Open(path string) (*Image, error) {
	f, im, err := openImage(path)
	if err != nil {
		return nil, fmt.Errorf("saveimage: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("saveimage: close %s: %w", path, err)
	}
	return im, nil
}

// openImage opens and validates the image at path, returning the open file
// (for the caller to close) with its description. Its errors name path but
// have no package prefix.
func openImage(path string) (*os.File, *Image, error) {
	// Stat first so that device nodes are never opened; O_NONBLOCK keeps a
	// FIFO swapped in between from blocking the open, and the Stat of the
	// open file is the one that counts.
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w: not a regular file (mode %s)", path, ErrFormat, st.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: not a regular file (mode %s)", path, ErrFormat, st.Mode())
	}
	im, err := Read(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, im, nil
}
