package vm

import "context"

// ResolvedImage is a template ready to create VMs from, with its defaults.
type ResolvedImage struct {
	Template  Template
	CPUs      int
	MemoryMiB int
	DiskBytes int64
	// Readiness says how to tell that a VM from the image is ready; the
	// zero value means cloud-init.
	Readiness ReadyCheck
	// Fetch, when set, downloads the image first: Template.Path does not
	// exist yet. Create calls it in the operation's "pull" stage, passing
	// progress messages on. It must be safe to call concurrently (callers
	// for the same image share one download).
	Fetch func(ctx context.Context, progress func(msg string)) error
}

// Readiness modes.
const (
	ReadyCloudInit = "cloud-init" // cloud-init finished without errors (default)
	ReadyAgent     = "agent"      // the guest agent answers
	ReadyTCP       = "tcp"        // a TCP port on the guest's address accepts connections
	ReadyBoot      = "boot"       // the domain runs; the guest has nothing to ask
)

// ReadyCheck is how gale decides that a VM is ready.
type ReadyCheck struct {
	Mode string // one of the Ready* modes; "" means ReadyCloudInit
	Port int    // with ReadyTCP
}

// ImageResolver turns an image name from a create request into a template.
type ImageResolver interface {
	// Resolve returns the image called name. An unknown or unbuilt image is
	// an error wrapping ErrInvalid whose text says what to do.
	Resolve(name string) (ResolvedImage, error)
}
