package imageservice

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Caller is who asked for an import, from the socket's peer credentials.
type Caller struct {
	UID   int
	Known bool // false: credentials unavailable; treated as not root
}

// openSource opens the file an import names, for reading, without ever
// following a symlink out of the import area:
//   - root may name any absolute path; the last element must not be a
//     symlink (pass the file it points to);
//   - anyone else may only name files they own below the import area, and
//     the path is resolved beneath it (a symlink that leads outside is
//     refused).
//
// The result must be a regular file or a block device (a FIFO or a
// directory is refused without blocking).
func (s *Service) openSource(path string, who Caller) (*os.File, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, fmt.Errorf("%w: source %q must be an absolute, clean path", ErrInvalid, path)
	}
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOFOLLOW
	var f *os.File
	if who.Known && who.UID == 0 {
		fd, err := unix.Open(path, flags, 0)
		if err != nil {
			return nil, sourceError(path, err)
		}
		f = os.NewFile(uintptr(fd), path)
	} else {
		area := s.cfg.ImportDir
		rel, err := filepath.Rel(area, path)
		if area == "" || err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("%w: only root may import %s; put the file in the import area %s, or stream it: gale image import - --name NAME --format FORMAT < FILE", ErrInvalid, path, orNone(area))
		}
		dir, err := unix.Open(area, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open import area: %w", err)
		}
		defer unix.Close(dir)
		// Symlinks that stay inside the area are followed; one that leads
		// out fails with EXDEV.
		fd, err := unix.Openat2(dir, rel, &unix.OpenHow{
			Flags:   uint64(flags &^ unix.O_NOFOLLOW),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != nil {
			if errors.Is(err, unix.EXDEV) {
				return nil, fmt.Errorf("%w: %s leads out of the import area %s", ErrInvalid, path, area)
			}
			return nil, sourceError(path, err)
		}
		f = os.NewFile(uintptr(fd), path)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	// The import area is shared by group gale: a member imports only the
	// files they own, never another member's.
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && !(who.Known && who.UID == 0) && int(sys.Uid) != who.UID {
		f.Close()
		return nil, fmt.Errorf("%w: %s belongs to another user; import your own files", ErrInvalid, path)
	}
	if m := st.Mode(); !m.IsRegular() && m&os.ModeDevice == 0 || m&os.ModeCharDevice != 0 {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file or block device (%s)", ErrInvalid, path, st.Mode().Type())
	}
	// Reads block normally from here on.
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

func sourceError(path string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		if to, rerr := filepath.EvalSymlinks(path); rerr == nil {
			return fmt.Errorf("%w: %s is a symlink; name the file it points to (%s) if that is what you mean", ErrInvalid, path, to)
		}
		return fmt.Errorf("%w: %s is a symlink; name the file it points to", ErrInvalid, path)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: %s does not exist", ErrInvalid, path)
	}
	return fmt.Errorf("%w: open %s: %w", ErrInvalid, path, err)
}

func orNone(s string) string {
	if s == "" {
		return "(none configured)"
	}
	return s
}

// fdPath names an open file of this process so that a child (qemu-img,
// debugfs) opens the very same file, whatever happens to its path.
func fdPath(f *os.File) string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
}
