package inspect

import (
	"errors"
	"fmt"
)

// ErrRefused is matched (errors.Is) by every error that rejects an image
// because of what it is or contains. Other errors (I/O failures, a missing
// qemu-img, a cancelled context) do not match it.
var ErrRefused = errors.New("image refused")

// Reason classifies a refusal.
type Reason string

// Reasons for refusing an image.
const (
	// ReasonNotRegular: the path is not a regular file or block device (a
	// symbolic link, directory, FIFO, socket or character device).
	ReasonNotRegular Reason = "not-regular-file"
	// ReasonFormat: the format is not one Inspect accepts, or the file's
	// header does not match the declared format.
	ReasonFormat Reason = "format"
	// ReasonBackingFile: the image depends on another image (a qcow2 backing
	// file, a VMDK parent, a VHD/VHDX/VDI differencing disk).
	ReasonBackingFile Reason = "backing-file"
	// ReasonDataFile: a qcow2 image keeps its data in an external file.
	ReasonDataFile Reason = "data-file"
	// ReasonExternalFile: a VMDK descriptor names extent files.
	ReasonExternalFile Reason = "external-file"
	// ReasonTooLarge: the virtual size exceeds Limits.MaxVirtualSize.
	ReasonTooLarge Reason = "too-large"
	// ReasonEmpty: the virtual size is zero.
	ReasonEmpty Reason = "empty"
	// ReasonTruncated: the image's tables point past the end of the file.
	ReasonTruncated Reason = "truncated"
	// ReasonMalformed: a header or table is invalid, or qemu-img cannot
	// open the image in the declared format.
	ReasonMalformed Reason = "malformed"
	// ReasonUnsupported: a valid image using a feature gale does not accept
	// (encryption, unknown incompatible features, legacy VMDK COWD).
	ReasonUnsupported Reason = "unsupported"
	// ReasonLimits: qemu-img info exceeded its time, CPU or memory limits.
	ReasonLimits Reason = "limits"
	// ReasonChanged: the file was replaced or resized during inspection.
	ReasonChanged Reason = "changed"
)

// RefusedError is the error Inspect returns (wrapped with the path and
// format) when it rejects an image. It matches ErrRefused.
type RefusedError struct {
	// Reason classifies the refusal.
	Reason Reason
	// Detail says what was found, for a human. Names read from the image are
	// sanitized: control characters replaced and length capped.
	Detail string
}

func (e *RefusedError) Error() string { return fmt.Sprintf("%v: %s", ErrRefused, e.Detail) }

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// refuse returns a *RefusedError with a formatted detail.
func refuse(reason Reason, format string, args ...any) error {
	return &RefusedError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of a refusal anywhere in err's chain, or ""
// if err is not a refusal.
func ReasonOf(err error) Reason {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}
