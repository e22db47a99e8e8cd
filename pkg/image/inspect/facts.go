package inspect

import (
	"context"
	"io"
)

// facts is what a format's header checks learned.
type facts struct {
	// warnings are findings that do not block the import.
	warnings []string
}

// checker checks one format's headers and tables in pure Go.
type checker func(ctx context.Context, r io.ReaderAt, size int64, lim Limits) (facts, error)

// checkers maps each accepted format to its header checks.
var checkers = map[string]checker{
	FormatRaw:   func(context.Context, io.ReaderAt, int64, Limits) (facts, error) { return facts{}, nil },
	FormatQCOW2: checkQCOW2,
	FormatVMDK:  checkVMDK,
	FormatVPC:   checkVPC,
	FormatVHDX:  checkVHDX,
	FormatVDI:   checkVDI,
}

// checkVirtualSize refuses a declared virtual size that is zero or above
// the limit. n is unsigned because headers store it so.
func checkVirtualSize(n uint64, lim Limits) error {
	switch {
	case n == 0:
		return refuse(ReasonEmpty, "virtual size is 0")
	case n > uint64(lim.MaxVirtualSize):
		return tooLarge(n, lim)
	}
	return nil
}

func tooLarge(n uint64, lim Limits) error {
	shown := "more than 8 EiB"
	if n <= 1<<63-1 {
		shown = humanSize(int64(n))
	}
	return refuse(ReasonTooLarge, "virtual size %s exceeds the limit of %s", shown, humanSize(lim.MaxVirtualSize))
}
