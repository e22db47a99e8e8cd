package inspect

import "time"

// Defaults for Limits fields left at zero.
const (
	// DefaultMaxVirtualSize is 2 TiB: the disks of the servers gale lifts
	// are rarely larger, and an image claiming more is far more likely to be
	// a mistake or an attempt to fill the host than a real disk. Callers that
	// import bigger disks raise Limits.MaxVirtualSize explicitly.
	DefaultMaxVirtualSize int64 = 2 << 40
	// DefaultTimeout bounds qemu-img info's wall-clock time. It only reads
	// headers and tables, and takes milliseconds on a sane image.
	DefaultTimeout = 30 * time.Second
	// DefaultAddressSpace is qemu-img info's address-space limit (prlimit
	// --as), 1 GiB as in OpenStack.
	DefaultAddressSpace int64 = 1 << 30
	// DefaultCPUSeconds is qemu-img info's CPU-time limit (prlimit --cpu).
	DefaultCPUSeconds = 30
)

// Limits bound what an image may claim and what inspecting it may cost.
// Zero or negative fields mean the corresponding default.
type Limits struct {
	// MaxVirtualSize is the largest virtual size accepted, in bytes.
	MaxVirtualSize int64
	// Timeout bounds qemu-img info's wall-clock time.
	Timeout time.Duration
	// AddressSpace is qemu-img info's address-space limit in bytes.
	AddressSpace int64
	// CPUSeconds is qemu-img info's CPU-time limit in seconds.
	CPUSeconds int
}

// withDefaults returns l with zero or negative fields set to the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxVirtualSize <= 0 {
		l.MaxVirtualSize = DefaultMaxVirtualSize
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.AddressSpace <= 0 {
		l.AddressSpace = DefaultAddressSpace
	}
	if l.CPUSeconds <= 0 {
		l.CPUSeconds = DefaultCPUSeconds
	}
	return l
}
