package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// CleanBuilds removes the work directories (".build-<name>-*") that builds
// killed before their clean-up left in cacheDir, and returns what it
// removed. A directory whose template's build lock is held belongs to a
// running build and is left alone, so it is safe to call while other
// processes build.
func CleanBuilds(cacheDir string) ([]string, error) {
	dirs, err := filepath.Glob(filepath.Join(cacheDir, ".build-*"))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, dir := range dirs {
		base := strings.TrimPrefix(filepath.Base(dir), ".build-")
		i := strings.LastIndexByte(base, '-')
		if i <= 0 {
			continue
		}
		name := base[:i]
		unlock, err := tryLock(filepath.Join(cacheDir, "."+name+".lock"))
		if err != nil {
			continue // a build of name runs, or the lock cannot be read
		}
		err = removeTree(dir)
		unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

// tryLock takes the flock on path without waiting.
func tryLock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
