package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// LockFile is the name of the lock file inside the data directory.
const LockFile = "galed.lock"

// DirLock is an exclusive flock on DATADIR/galed.lock, held until Unlock.
type DirLock struct {
	f    *os.File
	path string
}

// Path returns the lock file's path.
func (l *DirLock) Path() string { return l.path }

// Lock takes the exclusive lock on dir/galed.lock, creating dir and the file
// if needed. It retries a non-blocking flock until timeout; when another
// process keeps it, the error wraps ErrLocked and names the lock file and the
// PID recorded in it. On success the file holds this process's PID.
func Lock(dir string, timeout time.Duration) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: %s is held by %s; is another galed running?", ErrLocked, path, holder(path))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		_ = f.Sync()
	}
	return &DirLock{f: f, path: path}, nil
}

// holder describes the process named in the lock file.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "an unknown process"
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return "an unknown process"
	}
	return "pid " + strconv.Itoa(pid)
}

// Unlock releases the lock. The file stays (removing it would race with a
// process that has just opened it).
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	err := l.f.Close()
	l.f = nil
	return err
}
