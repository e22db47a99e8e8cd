package preflight

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// cpio "newc" format (070701, and 070702 with checksums), the only one the
// Linux kernel unpacks into its initramfs.
const (
	cpioHeaderLen = 110
	cpioTrailer   = "TRAILER!!!"
	// cpioMaxName bounds a member name (PATH_MAX).
	cpioMaxName = 4096
	// cpioMaxEntries bounds the members of one initramfs.
	cpioMaxEntries = 1 << 20
)

// errNotCpio is returned when the data does not start with a newc header.
var errNotCpio = errors.New("not a newc cpio archive")

// isCpioMagic reports whether b starts with a newc magic.
func isCpioMagic(b []byte) bool {
	return len(b) >= 6 && (string(b[:6]) == "070701" || string(b[:6]) == "070702")
}

// cpioEntry is one member of a newc archive.
type cpioEntry struct {
	Name string
	Mode uint32
	Size int64
}

// readCpio reads one newc archive from r up to and including its trailer,
// calling fn for each member (the trailer excluded). Member data is
// skipped, not buffered. r is left just after the trailer's padding; any
// zero padding between archives is for the caller to skip.
func readCpio(r *bufio.Reader, fn func(cpioEntry)) error {
	hdr := make([]byte, cpioHeaderLen)
	for n := 0; ; n++ {
		if n > cpioMaxEntries {
			return fmt.Errorf("cpio: more than %d members", cpioMaxEntries)
		}
		if _, err := io.ReadFull(r, hdr); err != nil {
			if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
				return errNotCpio
			}
			return fmt.Errorf("cpio header: %w", noEOF(err))
		}
		if !isCpioMagic(hdr) {
			if n == 0 {
				return errNotCpio
			}
			return fmt.Errorf("cpio: bad magic %q after %d members", hdr[:6], n)
		}
		field := func(i int) (uint64, error) {
			return strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
		}
		mode, err1 := field(1)
		size, err2 := field(6)
		nameLen, err3 := field(11)
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("cpio header: %w", err)
		}
		if nameLen == 0 || nameLen > cpioMaxName {
			return fmt.Errorf("cpio: name length %d", nameLen)
		}
		name := make([]byte, nameLen)
		if _, err := io.ReadFull(r, name); err != nil {
			return fmt.Errorf("cpio name: %w", noEOF(err))
		}
		if err := skip(r, pad4(cpioHeaderLen+int64(nameLen))); err != nil {
			return fmt.Errorf("cpio name padding: %w", err)
		}
		e := cpioEntry{Name: string(trimNUL(name)), Mode: uint32(mode), Size: int64(size)}
		if err := skip(r, e.Size+pad4(e.Size)); err != nil {
			return fmt.Errorf("cpio data of %s: %w", e.Name, err)
		}
		if e.Name == cpioTrailer {
			return nil
		}
		fn(e)
	}
}

// pad4 returns how many bytes pad n to a multiple of 4.
func pad4(n int64) int64 { return (4 - n%4) % 4 }

func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	k, err := io.CopyN(io.Discard, r, n)
	if k < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
