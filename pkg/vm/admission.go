package vm

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Host reports the resources the admission check compares a request with.
type Host interface {
	// MemAvailableBytes is the host's MemAvailable.
	MemAvailableBytes() (int64, error)
	// FreeDiskBytes is the space available to galed where VM disks live.
	FreeDiskBytes() (int64, error)
}

// HostResources reads /proc/meminfo and statfs(DiskDir).
type HostResources struct {
	DiskDir string
	// MeminfoPath defaults to /proc/meminfo.
	MeminfoPath string
}

// MemAvailableBytes implements Host.
func (h HostResources) MemAvailableBytes() (int64, error) {
	path := h.MeminfoPath
	if path == "" {
		path = "/proc/meminfo"
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read memory info: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse MemAvailable in %s: %w", path, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemAvailable in %s", path)
}

// FreeDiskBytes implements Host. DiskDir or its nearest existing parent is measured.
func (h HostResources) FreeDiskBytes() (int64, error) {
	dir := h.DiskDir
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return int64(st.Bavail) * int64(st.Bsize), nil
		}
		parent := dir[:max(strings.LastIndex(dir, "/"), 1)]
		if !os.IsNotExist(err) || parent == dir || dir == "" {
			return 0, fmt.Errorf("statfs %s: %w", h.DiskDir, err)
		}
		dir = parent
	}
}

// admit refuses a VM the host cannot hold: memory beyond MemAvailable, or a
// disk larger than the free space (overlays are thin, so this is the worst
// case). The error wraps ErrInsufficient and says how to override.
func admit(h Host, memoryMiB int, diskBytes int64) error {
	mem, err := h.MemAvailableBytes()
	if err != nil {
		return err
	}
	if want := int64(memoryMiB) << 20; want > mem {
		return fmt.Errorf("%w: %d MiB of memory requested, %d MiB available on the host (use force to create anyway)",
			ErrInsufficient, memoryMiB, mem>>20)
	}
	free, err := h.FreeDiskBytes()
	if err != nil {
		return err
	}
	if diskBytes > free {
		return fmt.Errorf("%w: a %d MiB disk requested, %d MiB free in the data directory (use force to create anyway)",
			ErrInsufficient, diskBytes>>20, free>>20)
	}
	return nil
}
