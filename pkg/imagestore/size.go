package imagestore

import (
	"io/fs"
	"syscall"
)

// Allocated is the space the file described by fi takes on disk (a sparse
// file takes less than its length), falling back to its length.
func Allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
