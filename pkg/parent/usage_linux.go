package parent

import (
	"os"
	"syscall"
)

// diskUsage is the space path's blocks take on disk (0 when unknown).
func diskUsage(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Blocks * 512
	}
	return st.Size()
}
