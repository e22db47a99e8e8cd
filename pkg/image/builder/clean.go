package builder

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/galevm/gale/pkg/imagestore"
)

// CleanBuilds removes the work directories that builds killed before their
// clean-up left in the image store at cacheDir, and returns what it removed.
// A directory whose template's build lock is held belongs to a running
// build and is left alone, so it is safe to call while other processes
// build.
func CleanBuilds(cacheDir string) ([]string, error) {
	st := imagestore.Store{Dir: cacheDir}
	dirs, err := st.BuildDirs()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, dir := range dirs {
		unlock, err := tryLock(st.BuildLockPath(dir.Name))
		if err != nil {
			continue // a build of dir.Name runs, or the lock cannot be read
		}
		err = removeTree(dir.Path)
		unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir.Path)
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
