package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/toolrun"
)

// maxInfoOutput caps qemu-img info's JSON; a sane image's is a few KiB.
const maxInfoOutput = 4 << 20

// infoSpec is how qemu-img info runs on an image under inspection:
//
//	prlimit --as=<bytes> --cpu=<seconds> -- qemu-img info --output=json -f <format> <abs path>
//
// under lim.Timeout, with its output capped. lim must have its defaults
// applied.
func (in Inspector) infoSpec(format, absPath string, lim Limits) toolrun.Spec {
	qemuImg := in.QemuImg
	if qemuImg == "" {
		qemuImg = "qemu-img"
	}
	return toolrun.Spec{
		Argv:            []string{qemuImg, "info", "--output=json", "-f", format, absPath},
		Timeout:         lim.Timeout,
		MaxAddressSpace: lim.AddressSpace,
		MaxCPUTime:      time.Duration(lim.CPUSeconds) * time.Second,
		MaxOutput:       maxInfoOutput,
	}
}

// qemuInfo is the subset of `qemu-img info --output=json` that is checked.
type qemuInfo struct {
	VirtualSize         *int64 `json:"virtual-size"`
	Filename            string `json:"filename"`
	Format              string `json:"format"`
	BackingFilename     string `json:"backing-filename"`
	FullBackingFilename string `json:"full-backing-filename"`
	FormatSpecific      struct {
		Type string `json:"type"`
		Data struct {
			DataFile *string `json:"data-file"`
			Extents  []struct {
				Filename string `json:"filename"`
			} `json:"extents"`
		} `json:"data"`
	} `json:"format-specific"`
}

// runInfo runs qemu-img info under lim and parses its output. A failure
// caused by the image (qemu-img exits non-zero, is killed by a limit or
// times out) is a refusal; a failure to run it at all, or the caller's
// context ending, is not.
func (in Inspector) runInfo(ctx context.Context, format, absPath string, lim Limits) (qemuInfo, error) {
	var info qemuInfo
	runner := in.Runner
	if runner == nil {
		runner = toolrun.Exec{}
	}
	out, err := runner.Run(ctx, in.infoSpec(format, absPath, lim))
	if err != nil {
		msg := sanitize([]byte(strings.TrimSpace(string(out.Stderr))))
		var te *toolrun.Error
		isTool := errors.As(err, &te)
		switch {
		case ctx.Err() != nil:
			return info, fmt.Errorf("qemu-img info: %w", ctx.Err())
		case errors.Is(err, toolrun.ErrTimeout):
			return info, refuse(ReasonLimits, "qemu-img info did not finish within %v", lim.Timeout)
		case errors.Is(err, toolrun.ErrOutputTooLarge):
			return info, refuse(ReasonLimits, "qemu-img info wrote more than %s", humanSize(maxInfoOutput))
		case isTool && te.Signal() != 0:
			return info, refuse(ReasonLimits, "qemu-img info was killed (signal: %v; limits: address space %s, CPU %ds)",
				te.Signal(), humanSize(lim.AddressSpace), lim.CPUSeconds)
		case isTool && te.ExitCode() > 0:
			return info, refuse(ReasonMalformed, "qemu-img cannot open it as %s: %s", format, msg)
		default:
			return info, fmt.Errorf("qemu-img info: %w", err)
		}
	}
	if err := json.Unmarshal(out.Stdout, &info); err != nil {
		return info, fmt.Errorf("parse qemu-img info output: %w", err)
	}
	return info, nil
}

// crossCheck verifies qemu's view of the image: the declared format, no
// backing or data file, every VMDK extent in the image file itself, and a
// virtual size within (0, lim.MaxVirtualSize].
func crossCheck(info qemuInfo, format, absPath string, lim Limits) (int64, error) {
	switch {
	case info.Format != format:
		return 0, refuse(ReasonFormat, "qemu-img opened it as %q, not %q", sanitize([]byte(info.Format)), format)
	case info.BackingFilename != "" || info.FullBackingFilename != "":
		return 0, refuse(ReasonBackingFile, "has a backing file (%q)", sanitize([]byte(info.BackingFilename+info.FullBackingFilename)))
	case info.FormatSpecific.Data.DataFile != nil:
		return 0, refuse(ReasonDataFile, "has an external data file (%q)", sanitize([]byte(*info.FormatSpecific.Data.DataFile)))
	case info.VirtualSize == nil:
		return 0, fmt.Errorf("parse qemu-img info output: no virtual-size")
	}
	for _, e := range info.FormatSpecific.Data.Extents {
		if e.Filename != absPath {
			return 0, refuse(ReasonExternalFile, "qemu reads an extent from another file (%q)", sanitize([]byte(e.Filename)))
		}
	}
	n := *info.VirtualSize
	switch {
	case n <= 0:
		return 0, refuse(ReasonEmpty, "virtual size is %d", n)
	case n > lim.MaxVirtualSize:
		return 0, tooLarge(uint64(n), lim)
	}
	return n, nil
}
