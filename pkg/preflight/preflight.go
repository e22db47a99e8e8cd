// Package preflight inspects a raw disk image imported from a physical
// server (lift-and-shift) and says whether it will boot and be managed as a
// gale VM: partition table, root filesystem, operating system, virtio
// drivers in the initramfs, device names that change under virtio, guest
// agent, cloud-init and serial console. Prepare fixes what it can in place.
//
// The image is untrusted. It is never mounted, loop-mounted or chrooted
// into: partition tables are read in Go (go-diskfs), filesystem types are
// identified by superblock magic in Go, and ext2/3/4 filesystems are read and
// written with e2fsprogs' debugfs on the image file itself, addressing a
// partition by byte offset ("image?offset=N"). Every external tool runs
// under a timeout and `prlimit --as=1073741824 --cpu=60`; initramfs
// archives are listed in Go, with zstd, xz and lz4 decompression done by
// those binaries under the same limits. Other root filesystems (xfs, btrfs,
// LVM, LUKS, md RAID) are reported as not inspected: they need libguestfs.
package preflight

// Severity grades a Finding.
type Severity string

// Severities, from good to bad. Only SeverityFail makes Report.Ready false.
const (
	SeverityOK   Severity = "ok"
	SeverityInfo Severity = "info"
	SeverityWarn Severity = "warn"
	SeverityFail Severity = "fail"
)

// Check names used in Finding.Check and Change.Check.
const (
	CheckPartitions      = "partitions"
	CheckRootFilesystem  = "root-filesystem"
	CheckOS              = "os"
	CheckVirtioInitramfs = "virtio-initramfs"
	CheckDeviceNames     = "device-names"
	CheckGuestAgent      = "guest-agent"
	CheckCloudInit       = "cloud-init"
	CheckSerialConsole   = "serial-console"
)

// Finding is the outcome of one check. Detail says what was found, in one
// line a person can read; Fix, set for warn and fail findings (and for some
// info ones), says what to do about it.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Detail   string   `json:"detail"`
	Fix      string   `json:"fix,omitempty"`
}

// Report is what Inspect found in an image. Fields that could not be
// determined are left at their zero values; Findings says why.
type Report struct {
	// PartitionTable is "gpt", "mbr" or "none" (a filesystem on the whole
	// disk, or nothing recognisable).
	PartitionTable string `json:"partitionTable"`
	// Firmware is "bios" or "uefi" when the layout shows how the disk
	// boots (a BIOS boot partition or MBR boot code, or an EFI system
	// partition without them), "" when it does not.
	Firmware string `json:"firmware,omitempty"`
	// OS is PRETTY_NAME from /etc/os-release (or /usr/lib/os-release).
	OS string `json:"os,omitempty"`
	// RootPartition is the 1-based number of the partition holding the root
	// filesystem, as Linux numbers it (MBR logical partitions from 5); 0
	// means the whole disk, or no root was found (then RootFS is "").
	RootPartition int `json:"rootPartition"`
	// RootFS is the root filesystem's type: ext2, ext3, ext4, xfs, btrfs,
	// lvm, luks, raid, ntfs, ...
	RootFS string `json:"rootFS,omitempty"`
	// BootPartition is the partition number of a separate /boot, 0 when
	// /boot is on the root filesystem.
	BootPartition int `json:"bootPartition,omitempty"`
	// Kernels are the installed kernel versions: directories under
	// /lib/modules (or /usr/lib/modules) that hold modules.dep or
	// modules.builtin, oldest first.
	Kernels []string `json:"kernels,omitempty"`
	// CloudInit is true when cloud-init is installed (/usr/bin/cloud-init).
	CloudInit bool `json:"cloudInit"`
	// GuestAgent is true when qemu-guest-agent is installed
	// (/usr/sbin/qemu-ga or /usr/bin/qemu-ga).
	GuestAgent bool `json:"guestAgent"`
	// Findings are the checks' outcomes in a fixed order: partitions,
	// root-filesystem, os, virtio-initramfs, device-names, guest-agent,
	// cloud-init, serial-console. Checks that need the root filesystem are
	// absent when it could not be inspected.
	Findings []Finding `json:"findings"`
}

// Ready reports whether no finding failed: the image is expected to boot
// under gale as it is. Warnings may still need attention.
func (r *Report) Ready() bool {
	for _, f := range r.Findings {
		if f.Severity == SeverityFail {
			return false
		}
	}
	return true
}

// Finding returns the first finding of the named check, and whether there
// was one.
func (r *Report) Finding(check string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.Check == check {
			return f, true
		}
	}
	return Finding{}, false
}

// Change is one fix Prepare made or could not make. Applied is false when
// the fix was needed but not made; Detail then says why and what to do.
type Change struct {
	Check   string `json:"check"`
	Detail  string `json:"detail"`
	Applied bool   `json:"applied"`
}
