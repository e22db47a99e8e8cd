package inspect

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// image is an open image file and what was learned when opening it.
type image struct {
	f    *os.File
	info fs.FileInfo
	size int64
	// qemuPath is the path qemu-img is given.
	qemuPath string
	// stat is os.Lstat, or os.Stat for a descriptor path (see ownDescriptor).
	stat func(string) (fs.FileInfo, error)
}

// openImage opens path for reading and refuses anything but a regular file
// or a block device.
//
// A path is opened without following a final symbolic link. The type is
// checked with lstat before opening, so opening cannot have a device's side
// effects or block on a FIFO, and again with fstat on the open file, so a
// path swapped in between is caught. O_NONBLOCK keeps the open itself from
// blocking should a FIFO be swapped in anyway.
//
// A path naming one of this process's own open descriptors (see
// ownDescriptor) is the exception: it is followed, to the file the caller
// opened, and checked the same way.
func openImage(path string) (*image, error) {
	img := &image{qemuPath: path, stat: os.Lstat}
	open := openNoFollow
	if p, ok := ownDescriptor(path); ok {
		img.qemuPath, img.stat, open = p, os.Stat, openFollow
	}
	before, err := img.stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat image: %w", err)
	}
	if err := checkType(before.Mode()); err != nil {
		return nil, err
	}
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	img.f = f
	if img.info, err = f.Stat(); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat open image: %w", err)
	}
	if err := checkType(img.info.Mode()); err != nil {
		f.Close()
		return nil, err
	}
	if !os.SameFile(before, img.info) {
		f.Close()
		return nil, refuse(ReasonChanged, "the path was replaced while it was being opened")
	}
	if img.size, err = fileSize(f, img.info); err != nil {
		f.Close()
		return nil, err
	}
	return img, nil
}

// fdPath matches /proc/self/fd/N, /proc/PID/fd/N and /dev/fd/N.
var fdPath = regexp.MustCompile(`^/(?:proc/(self|[1-9][0-9]*)/fd|dev/fd)/([0-9]+)$`)

// ownDescriptor reports whether path names one of this process's open file
// descriptors, and returns the form of it a child process can open too,
// /proc/<pid>/fd/<n>. Such paths let a caller inspect a file it opened
// itself (say with openat2 and RESOLVE_BENEATH) without naming it again.
func ownDescriptor(path string) (string, bool) {
	m := fdPath.FindStringSubmatch(path)
	if m == nil || (m[1] != "" && m[1] != "self" && m[1] != strconv.Itoa(os.Getpid())) {
		return "", false
	}
	return fmt.Sprintf("/proc/%d/fd/%s", os.Getpid(), m[2]), true
}

// openFollow opens path read-only, following symbolic links, without
// blocking.
func openFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	return f, nil
}

// openNoFollow opens path read-only without following a final symbolic
// link (refused) and without blocking, whatever the file is.
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, refuse(ReasonNotRegular, "is a symbolic link; pass the resolved path")
		}
		return nil, fmt.Errorf("open image: %w", err)
	}
	return f, nil
}

// checkType refuses every file type but regular files and block devices.
func checkType(m fs.FileMode) error {
	switch {
	case m.IsRegular():
		return nil
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0:
		return nil
	case m&fs.ModeSymlink != 0:
		return refuse(ReasonNotRegular, "is a symbolic link; pass the resolved path")
	case m.IsDir():
		return refuse(ReasonNotRegular, "is a directory")
	case m&fs.ModeNamedPipe != 0:
		return refuse(ReasonNotRegular, "is a FIFO")
	case m&fs.ModeSocket != 0:
		return refuse(ReasonNotRegular, "is a socket")
	case m&fs.ModeCharDevice != 0:
		return refuse(ReasonNotRegular, "is a character device")
	default:
		return refuse(ReasonNotRegular, "is not a regular file or block device (mode %v)", m)
	}
}

// fileSize returns the size of a regular file, or of a block device (whose
// stat size is 0) by seeking to its end.
func fileSize(f *os.File, fi fs.FileInfo) (int64, error) {
	if fi.Mode().IsRegular() {
		return fi.Size(), nil
	}
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("size of block device: %w", err)
	}
	return n, nil
}

// unchanged verifies that path still names the file img has open, with the
// same size, after qemu-img (which opens it by path) has looked at it.
func (img *image) unchanged(path string) error {
	now, err := img.stat(path)
	if err != nil {
		return fmt.Errorf("stat image again: %w", err)
	}
	if !os.SameFile(now, img.info) {
		return refuse(ReasonChanged, "the path was replaced during inspection")
	}
	size, err := fileSize(img.f, now)
	if err != nil {
		return err
	}
	if size != img.size {
		return refuse(ReasonChanged, "the file changed size during inspection (%d -> %d bytes)", img.size, size)
	}
	return nil
}

// absPath validates p and makes it absolute, so qemu-img can mistake it
// neither for an option nor for a protocol prefix ("nbd:", "json:").
func absPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("path %q contains NUL", p)
	}
	return filepath.Abs(p)
}
