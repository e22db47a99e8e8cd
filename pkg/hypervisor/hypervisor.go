// Package hypervisor defines the Driver interface that the rest of gale uses
// to manage domains, networks and guest agents. It holds no cgo and no logic
// beyond types: implementations live in subpackages (libvirt for real hosts,
// fake for unit tests of controllers).
package hypervisor

import (
	"context"
	"net"
	"time"

	"github.com/galevm/gale/pkg/errdefs"
)

// Sentinel errors. Implementations wrap them with context; callers match
// them with errors.Is.
var (
	// ErrNotFound: the named domain or network does not exist.
	ErrNotFound = errdefs.New(errdefs.NotFound, "not found")
	// ErrExists: a domain or network with that name already exists.
	ErrExists = errdefs.New(errdefs.Conflict, "already exists")
	// ErrUnavailable: the hypervisor connection is down (e.g. libvirtd restarting).
	ErrUnavailable = errdefs.New(errdefs.Unavailable, "hypervisor unavailable")
	// ErrAgentUnavailable: the guest agent did not answer (not running yet, or not installed).
	ErrAgentUnavailable = errdefs.New(errdefs.Conflict, "guest agent unavailable")
	// ErrInvalidSpec: a DomainSpec or NetworkSpec failed validation before any side effect.
	ErrInvalidSpec = errdefs.New(errdefs.Invalid, "invalid spec")
	// ErrBadSavedState: a saved state file cannot be restored as gale
	// expects (not a save image, unfinished, truncated, compressed, or of
	// a shape gale does not rewrite). Nothing was defined or started.
	ErrBadSavedState = errdefs.New(errdefs.Invalid, "saved state unusable")
)

// Accel is the CPU accelerator a domain runs with.
type Accel string

const (
	// AccelAuto picks KVM when the host can run ordinary guests, else TCG.
	AccelAuto Accel = "auto"
	// AccelKVM is hardware virtualization (<domain type='kvm'>).
	AccelKVM Accel = "kvm"
	// AccelTCG is QEMU's software emulation (<domain type='qemu'>).
	AccelTCG Accel = "tcg"
)

// Firmware is the boot firmware of a domain.
type Firmware string

const (
	FirmwareBIOS Firmware = "bios"
	FirmwareUEFI Firmware = "uefi"
)

// DefaultTCGCPUModel is the guest CPU under TCG unless a spec names another.
// qemu64 (x86-64 baseline) is the cheapest to emulate: a Debian guest reaches
// cloud-init done about 7 s sooner with it than with "max", whose AVX paths
// are slow under emulation (docs/benchmarks.md). Guests that need x86-64-v2
// (e.g. RHEL 9 and its rebuilds) must name a model such as "Nehalem" or "max".
const DefaultTCGCPUModel = "qemu64"

// DomainState is the run state of a domain as gale reports it.
type DomainState string

const (
	StateRunning      DomainState = "running"
	StateShutoff      DomainState = "shutoff"
	StatePaused       DomainState = "paused"
	StateShuttingDown DomainState = "shutting-down"
	StateCrashed      DomainState = "crashed"
	StateUnknown      DomainState = "unknown"
)

// MetadataNamespace is the XML namespace of gale's <metadata> element in domain XML.
const MetadataNamespace = "https://gale.dev/xmlns/domain/1"

// Metadata is what gale records inside a domain's XML so that a restarted
// daemon can adopt the domain (or flag it) without its own database.
type Metadata struct {
	// ID is gale's stable identifier for the VM (not the libvirt UUID).
	ID string `xml:"id,omitempty"`
	// Image is the template the VM's disk was made from.
	Image string `xml:"image,omitempty"`
	// Set names the scale set or pool the VM belongs to, if any.
	Set string `xml:"set,omitempty"`
	// Parent is the saved parent a clone was restored from, if any.
	Parent string `xml:"parent,omitempty"`
	// CreatedAt is when gale defined the domain.
	CreatedAt time.Time `xml:"created,omitempty"`
}

// DiskDevice is how a disk appears to the guest.
type DiskDevice string

const (
	DeviceDisk  DiskDevice = "disk"
	DeviceCDROM DiskDevice = "cdrom"
)

// Disk is one disk attached to a domain. Format is always explicit; drivers
// never let libvirt or QEMU probe it.
type Disk struct {
	Path     string     // absolute path of the image file
	Format   string     // "qcow2" or "raw"; required
	Device   DiskDevice // disk or cdrom
	Bus      string     // "virtio" (default for disks), "sata" (default for cdroms)
	Target   string     // guest device name, e.g. "vda", "sda"; required
	ReadOnly bool
}

// NIC is one network interface attached to a libvirt network.
type NIC struct {
	Network string // libvirt network name; required
	MAC     string // e.g. "52:54:00:12:34:56"; empty lets the driver generate one
	Model   string // "virtio" when empty
}

// DomainSpec is the complete, typed description of a domain gale defines.
type DomainSpec struct {
	Name      string // libvirt domain name; must be a DNS label
	UUID      string // optional; generated when empty
	VCPUs     int
	MemoryMiB int
	Accel     Accel    // AccelKVM or AccelTCG; AccelAuto is resolved by the driver
	Firmware  Firmware // BIOS when empty
	Disks     []Disk
	NICs      []NIC
	// SerialLog, when set, is a host file that receives everything the guest
	// writes to its serial console (the console stays attachable).
	SerialLog string
	// GuestAgent adds the virtio-serial channel org.qemu.guest_agent.0.
	GuestAgent bool
	// CPUModel is the QEMU CPU model under TCG; empty means DefaultTCGCPUModel.
	// KVM guests always get the host's CPU.
	CPUModel string
	// GenID adds a VM generation ID device (<genid/>): a restored clone
	// gets a new ID, which tells the guest kernel to reseed its random
	// number generator.
	GenID    bool
	Metadata Metadata
}

// CloneSpec is how a domain restored from a saved state differs from the
// domain that was saved: everything not named here (size, devices, their
// order, the guest's memory and CPU state) is the saved domain's.
type CloneSpec struct {
	// Name of the new domain; must be free.
	Name string
	// UUID of the new domain; generated when empty.
	UUID string
	// Disks maps the target device of each of the saved domain's disks
	// (e.g. "vda") to the file that takes its place. Every disk must be
	// listed: a clone never writes to its parent's files.
	Disks map[string]string
	// MACs are the new MAC addresses of the saved domain's NICs, in order,
	// one per NIC. The guest keeps using the saved MAC until it is told
	// otherwise (the NIC's state comes from the saved memory).
	MACs []string
	// SerialLog is the host file that receives the clone's serial console.
	SerialLog string
	// Metadata replaces the saved domain's gale metadata.
	Metadata Metadata
}

// Domain is a domain as listed by the driver.
type Domain struct {
	Name      string
	UUID      string
	State     DomainState
	VCPUs     int
	MemoryMiB int
	// Metadata is nil when the domain carries no gale metadata (not gale's).
	Metadata *Metadata
	// MACs of the domain's interfaces, in order.
	MACs []string
}

// DomainStats is one domain's counters from a bulk stats call. Counters are
// cumulative since the domain (its QEMU process) started, so they go back
// to zero when it restarts; a field the hypervisor did not report is zero.
type DomainStats struct {
	Name string
	// Running is true for a running (or blocked) domain; false when it is
	// shut off, paused, crashed or shutting down.
	Running bool
	// VCPUs is the number of online vCPUs (the maximum when the
	// hypervisor reports no per-vCPU state, e.g. for a stopped domain).
	VCPUs int
	// CPUTime is the total CPU time the domain has used (libvirt's
	// cpu.time: vCPUs plus QEMU's own threads).
	CPUTime time.Duration
	// NetRxBytes and NetTxBytes are summed over the domain's interfaces,
	// as the guest sees them (Rx is what the guest received).
	NetRxBytes, NetTxBytes uint64
	// BlockRdBytes and BlockWrBytes are summed over the domain's disks.
	BlockRdBytes, BlockWrBytes uint64
	// MemAvailableKiB and MemUnusedKiB are the guest's balloon.available
	// and balloon.unused, 0 when the guest does not report them (no
	// balloon driver, or stats polling off).
	MemAvailableKiB, MemUnusedKiB uint64
	// MemCurrentKiB is balloon.current: the memory the guest has now.
	MemCurrentKiB uint64
}

// EventKind is the kind of a domain lifecycle event.
type EventKind string

const (
	EventDefined   EventKind = "defined"
	EventUndefined EventKind = "undefined"
	EventStarted   EventKind = "started"
	EventStopped   EventKind = "stopped"
	EventSuspended EventKind = "suspended"
	EventResumed   EventKind = "resumed"
	EventCrashed   EventKind = "crashed"
	EventOther     EventKind = "other"
)

// Event is one domain lifecycle event.
type Event struct {
	Domain string
	Kind   EventKind
	Detail string
	Time   time.Time
}

// ExecRequest is a command to run in the guest through the guest agent.
type ExecRequest struct {
	Path  string   // absolute path of the program in the guest
	Args  []string // arguments, not including the program
	Stdin []byte   // optional
}

// ExecResult is the outcome of a command run through the guest agent.
type ExecResult struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// Signal is non-zero when the command was killed by a signal.
	Signal int
}

// AddressSource says where an address was learned.
type AddressSource string

const (
	SourceLease AddressSource = "lease"
	SourceAgent AddressSource = "agent"
)

// Address is one IP address of a domain.
type Address struct {
	MAC    string
	IP     net.IP
	Prefix int
	Source AddressSource
}

// NetworkMode is how a libvirt network reaches (or does not reach) the outside.
type NetworkMode string

const (
	// NetworkNAT forwards guest traffic out through the host with NAT.
	NetworkNAT NetworkMode = "nat"
	// NetworkIsolated has no <forward>: guests reach each other and the host only.
	NetworkIsolated NetworkMode = "isolated"
	// NetworkOpen is libvirt's <forward mode='open'/>: libvirt adds no
	// firewall rules, so forwarding (a load balancer's frontend reached
	// from other hosts) is left to gale, which keeps the network isolated
	// in its own nftables table (pkg/network's Isolation).
	NetworkOpen NetworkMode = "open"
)

// NetworkSpec describes a libvirt network with DHCP.
type NetworkSpec struct {
	Name   string
	Mode   NetworkMode
	Bridge string     // bridge device name; generated when empty
	CIDR   *net.IPNet // host address and prefix, e.g. 192.168.150.1/24
	// DHCPStart and DHCPEnd bound the DHCP range; derived from CIDR when nil.
	DHCPStart, DHCPEnd net.IP
}

// Network is a libvirt network as listed by the driver.
type Network struct {
	Name   string
	Mode   NetworkMode
	Bridge string
	CIDR   string
	Active bool
}

// Driver is what gale needs from a hypervisor. Every method honours ctx's
// deadline where the underlying call can block, returns ErrUnavailable
// (wrapped) when the connection is down, and ErrNotFound (wrapped) for an
// unknown name. Implementations must be safe for concurrent use.
type Driver interface {
	// Accel returns the accelerator the driver uses when a spec asks for AccelAuto.
	Accel() Accel

	// Define creates a persistent domain from spec. It returns ErrExists when
	// the name is taken and ErrInvalidSpec when spec is incomplete; it leaves
	// nothing defined on error.
	Define(ctx context.Context, spec DomainSpec) error
	// Start boots a defined domain. Starting a running domain is not an error.
	Start(ctx context.Context, name string) error
	// Shutdown asks the guest to power off (ACPI) and waits up to timeout, then
	// forces it off. Shutting down a stopped domain is not an error.
	Shutdown(ctx context.Context, name string, timeout time.Duration) error
	// Destroy forces the domain off at once. Destroying a stopped domain is not an error.
	Destroy(ctx context.Context, name string) error
	// Undefine removes a stopped domain's definition (and its NVRAM, if any).
	// It never deletes disk images.
	Undefine(ctx context.Context, name string) error
	// List returns all domains with one hypervisor list call.
	List(ctx context.Context) ([]Domain, error)
	// States returns the run state of every domain, by name, with one
	// hypervisor call and nothing else: the cheap path for listings.
	States(ctx context.Context) (map[string]DomainState, error)
	// Get returns one domain.
	Get(ctx context.Context, name string) (Domain, error)
	// AllStats returns the counters of every domain (running or not) with
	// one hypervisor call, never one per domain (libvirt: one
	// Connect.GetAllDomainStats with STATE, CPU_TOTAL, VCPU, INTERFACE,
	// BLOCK and BALLOON). A domain that vanishes during the call is left out.
	AllStats(ctx context.Context) ([]DomainStats, error)
	// Events streams lifecycle events until ctx is done. The channel is
	// closed when ctx ends; events survive reconnects to the hypervisor.
	Events(ctx context.Context) (<-chan Event, error)

	// AgentPing returns nil when the guest agent answers within ctx's deadline,
	// ErrAgentUnavailable (wrapped) when it does not.
	AgentPing(ctx context.Context, name string) error
	// AgentExec runs a command in the guest and waits for it within ctx's deadline.
	AgentExec(ctx context.Context, name string, req ExecRequest) (ExecResult, error)
	// Addresses returns the domain's IP addresses: from the DHCP leases of its
	// networks first, then from the guest agent. Empty, not an error, when
	// nothing is known yet.
	Addresses(ctx context.Context, name string) ([]Address, error)
	// ReleaseLeases drops the DHCP leases the domain's interfaces hold in
	// their networks, so a deleted VM leaves none behind. Call it while the
	// domain is off and still defined; no leases is not an error.
	ReleaseLeases(ctx context.Context, name string) error

	// CreateNetwork defines and starts a network (autostart on).
	CreateNetwork(ctx context.Context, spec NetworkSpec) error
	// DeleteNetwork stops and undefines a network.
	DeleteNetwork(ctx context.Context, name string) error
	// ListNetworks returns all networks.
	ListNetworks(ctx context.Context) ([]Network, error)
	// GetNetwork returns one network.
	GetNetwork(ctx context.Context, name string) (Network, error)
	// StartNetwork starts a defined network that is not active (e.g. after
	// libvirtd came up without network autostart) and turns its autostart
	// on. An active network is left as it is; an unknown one is ErrNotFound.
	StartNetwork(ctx context.Context, name string) error

	// Save writes the state of the running domain name to path, a new file
	// that must not exist, and stops the domain; it stays defined. On error
	// the domain keeps running and no file is left at path.
	Save(ctx context.Context, name, path string) error
	// Restore makes a new persistent domain from the state saved at
	// statePath, with the identity of spec, and resumes it where it was
	// saved. A rewritten copy of the state is written in workDir and
	// removed before Restore returns; statePath is only read. A state file
	// Restore cannot use is ErrBadSavedState (wrapped), a taken name
	// ErrExists; on any error nothing is left defined or running.
	Restore(ctx context.Context, statePath string, spec CloneSpec, workDir string) error

	// Close releases the connection. The driver is unusable afterwards.
	Close() error
}
