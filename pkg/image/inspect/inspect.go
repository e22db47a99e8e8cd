package inspect

import (
	"context"
	"fmt"

	"github.com/galevm/gale/pkg/toolrun"
)

// Report describes an image Inspect accepted.
type Report struct {
	// Format is the declared format the image was checked as.
	Format string
	// VirtualSize is the size the guest will see, in bytes, as qemu reports it.
	VirtualSize int64
	// FileSize is the size of the file (or block device) in bytes.
	FileSize int64
	// Sniffed is the format the file's magic numbers look like (see Sniff);
	// for an accepted non-raw image it equals Format.
	Sniffed string
	// Warnings are findings that do not block the import, for the user.
	Warnings []string
}

// Inspector runs Inspect's checks. The zero value is ready to use.
type Inspector struct {
	// QemuImg is the qemu-img executable; empty means "qemu-img" from PATH.
	QemuImg string
	// Runner runs qemu-img; nil means toolrun.Exec, which runs it under
	// prlimit and never without it.
	Runner toolrun.Runner
}

// Inspect is Inspector{}.Inspect.
func Inspect(ctx context.Context, path, format string, lim Limits) (Report, error) {
	return Inspector{}.Inspect(ctx, path, format, lim)
}

// Inspect checks the image at path, declared as format (one of Formats), and
// returns its report, or an error. An error matching ErrRefused (with a
// *RefusedError in its chain naming the reason) means the image must not be
// imported; other errors mean it could not be inspected.
//
// path must name a regular file or a block device, and is opened without
// following a final symbolic link: pass a resolved path. Alternatively it
// may name one of the calling process's open descriptors, as
// /proc/self/fd/N, /proc/<pid>/fd/N or /dev/fd/N, which is followed to the
// file the caller opened; qemu-img is then given /proc/<pid>/fd/N, so the
// descriptor must stay open until Inspect returns. The steps are:
//
//  1. open the file (O_NOFOLLOW, never blocking) and refuse other types;
//  2. check the format's headers and tables in pure Go, before qemu-img ever
//     opens the file: backing, data and extent files, parents of
//     differencing disks, unknown features, the declared virtual size, and
//     tables or data that lie past the end of the file (truncation);
//  3. run qemu-img info -f <format> under prlimit (Limits.AddressSpace,
//     Limits.CPUSeconds) and Limits.Timeout;
//  4. cross-check qemu's answer: the same format, no backing or data file,
//     VMDK extents only in the file itself, 0 < virtual size <=
//     Limits.MaxVirtualSize;
//  5. verify the path still names the same file with the same size.
//
// A raw image gets no header checks: whatever its first bytes look like,
// it is only ever opened as raw. When Sniff says it looks like another
// format, Report.Warnings says so.
func (in Inspector) Inspect(ctx context.Context, path, format string, lim Limits) (Report, error) {
	rep, err := in.inspect(ctx, path, format, lim.withDefaults())
	if err != nil {
		return Report{}, fmt.Errorf("inspect %s as %s: %w", path, format, err)
	}
	return rep, nil
}

func (in Inspector) inspect(ctx context.Context, path, format string, lim Limits) (Report, error) {
	check, ok := checkers[format]
	if !ok {
		return Report{}, refuse(ReasonFormat, "format %q is not accepted for import (accepted: %v)", format, Formats)
	}
	abs, err := absPath(path)
	if err != nil {
		return Report{}, err
	}
	img, err := openImage(abs)
	if err != nil {
		return Report{}, err
	}
	defer img.f.Close()

	rep := Report{Format: format, FileSize: img.size}
	if rep.Sniffed, err = Sniff(img.f, img.size); err != nil {
		return Report{}, err
	}
	if format == FormatRaw {
		if rep.Sniffed != FormatRaw {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("looks like %s but imported as raw as asked; the header is not interpreted", rep.Sniffed))
		}
	} else if rep.Sniffed != format {
		return Report{}, refuse(ReasonFormat, "declared %s but the file looks like %s", format, rep.Sniffed)
	}
	f, err := check(ctx, img.f, img.size, lim)
	if err != nil {
		return Report{}, err
	}
	rep.Warnings = append(rep.Warnings, f.warnings...)

	info, err := in.runInfo(ctx, format, img.qemuPath, lim)
	if err != nil {
		return Report{}, err
	}
	if rep.VirtualSize, err = crossCheck(info, format, img.qemuPath, lim); err != nil {
		return Report{}, err
	}
	if err := img.unchanged(abs); err != nil {
		return Report{}, err
	}
	return rep, nil
}
