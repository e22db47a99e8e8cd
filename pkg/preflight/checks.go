package preflight

import (
	"fmt"
	"sort"
	"strings"
)

// Fix texts shared by several findings.
const (
	fixPrepare         = "run import with --prepare"
	fixDeviceNames     = "use UUID= or LABEL=, or run import with --prepare"
	fixInitramfsByHand = "on the server before imaging, add virtio_blk, virtio_pci and virtio_scsi to /etc/initramfs-tools/modules and run update-initramfs -u -k all (Debian, Ubuntu), or run dracut -f --regenerate-all --add-drivers \"virtio_blk virtio_pci virtio_scsi\" (RHEL, SUSE)"
	fixInitramfs       = "run import with --prepare (needs virt-customize from libguestfs-tools); or, " + fixInitramfsByHand
	fixNotInspected    = "inspect it with virt-inspector (libguestfs-tools); import with --prepare can still add virtio drivers and agents when virt-customize is installed"
)

// report turns the inspection into a Report.
func (in *inspection) report() *Report {
	r := &Report{PartitionTable: in.layout.Table, Firmware: in.layout.firmware()}
	r.Findings = append(r.Findings, in.checkPartitions())
	if in.root != nil {
		r.RootPartition, r.RootFS = in.root.Index, in.root.FS
	}
	r.Findings = append(r.Findings, in.checkRoot()...)
	if in.guest == nil {
		return r
	}
	if in.guest.boot != nil {
		r.BootPartition = in.guest.boot.part
	}
	r.OS = in.osName()
	for _, k := range in.kernels {
		r.Kernels = append(r.Kernels, k.Version)
	}
	r.CloudInit, r.GuestAgent = in.cloudInit, in.guestAgent
	r.Findings = append(r.Findings,
		in.checkOS(),
		in.checkVirtio(),
		in.checkDeviceNames(),
		in.checkGuestAgent(),
		in.checkCloudInit(),
		in.checkSerial(),
	)
	return r
}

func (in *inspection) checkPartitions() Finding {
	l := in.layout
	f := Finding{Check: CheckPartitions, Severity: SeverityOK}
	if len(l.Parts) == 0 {
		f.Severity = SeverityFail
		if l.Table == tableNone {
			f.Detail = "no partition table, and no filesystem recognised on the whole disk"
		} else {
			f.Detail = l.Table + " partition table with no partitions"
		}
		f.Fix = "check that the image is the server's boot disk, converted to raw"
		return f
	}
	var parts []string
	var beyond []string
	for _, p := range l.Parts {
		fs := p.FS
		if fs == "" {
			fs = "unknown"
		}
		if p.Index == 0 {
			parts = append(parts, fs+" on the whole disk ("+humanSize(p.Size)+")")
		} else {
			parts = append(parts, fmt.Sprintf("%d %s (%s)", p.Index, fs, humanSize(p.Size)))
		}
		if p.Beyond {
			beyond = append(beyond, fmt.Sprint(p.Index))
		}
	}
	table := l.Table
	if table == tableNone {
		table = "no partition table"
	}
	f.Detail = table + ": " + strings.Join(parts, ", ")
	if fw := l.firmware(); fw != "" {
		f.Detail += "; boots with " + strings.ToUpper(fw) + " firmware"
	}
	if len(beyond) > 0 {
		f.Severity = SeverityWarn
		what := "partition " + beyond[0] + " runs"
		if len(beyond) > 1 {
			what = "partitions " + strings.Join(beyond, ", ") + " run"
		}
		f.Detail += fmt.Sprintf("; %s past the end of the image (%s): the image is truncated", what, humanSize(l.Size))
		f.Fix = "import the whole disk"
	}
	return f
}

func (in *inspection) checkRoot() []Finding {
	f := Finding{Check: CheckRootFilesystem}
	switch {
	case in.root == nil:
		f.Severity = SeverityFail
		f.Detail = "no root filesystem found: no ext2/3/4 filesystem holds /etc/os-release or /etc/fstab, and no partition is xfs, btrfs, LVM, LUKS or RAID"
		f.Fix = "check that the image is the server's boot disk"
		return append([]Finding{f}, in.problemFindings()...)
	case in.guest == nil:
		f.Severity = SeverityWarn
		f.Detail = fmt.Sprintf("not inspected: %s root filesystems need libguestfs (virt-inspector) (%s)", in.root.FS, where(in.root.Index))
		f.Fix = fixNotInspected
		return append([]Finding{f}, in.problemFindings()...)
	}
	e := in.guest.root
	f.Severity = SeverityOK
	f.Detail = fmt.Sprintf("%s (%s), UUID %s", e.kind, where(e.part), e.super.uuid())
	if lbl := e.super.label(); lbl != "" {
		f.Detail += ", label " + lbl
	}
	if b := in.guest.boot; b != nil {
		f.Detail += fmt.Sprintf("; /boot is %s on partition %d", b.kind, b.part)
	}
	out := []Finding{f}
	for _, x := range []*extFS{in.guest.root, in.guest.boot} {
		if x != nil && x.super.needsRecovery() {
			out = append(out, Finding{Check: CheckRootFilesystem, Severity: SeverityWarn,
				Detail: fmt.Sprintf("%s on %s was not cleanly unmounted: its journal is replayed at first boot, and what preflight read may be out of date", x.kind, where(x.part)),
				Fix:    "run import with --prepare, which replays the journal first, or image the server shut down"})
		}
	}
	if in.bootFS != nil {
		out = append(out, Finding{Check: CheckRootFilesystem, Severity: SeverityWarn,
			Detail: fmt.Sprintf("/boot is %s on partition %d: not inspected (needs libguestfs), so the initramfs and bootloader checks cover only the root filesystem", in.bootFS.FS, in.bootFS.Index),
			Fix:    fixNotInspected})
	}
	if in.bootMissing != "" {
		out = append(out, Finding{Check: CheckRootFilesystem, Severity: SeverityWarn,
			Detail: fmt.Sprintf("fstab mounts /boot from %s, which is not in this image", in.bootMissing),
			Fix:    "import the disk that holds /boot too"})
	}
	return append(out, in.problemFindings()...)
}

// problemFindings reports files that could not be read.
func (in *inspection) problemFindings() []Finding {
	if len(in.problems) == 0 {
		return nil
	}
	p := in.problems
	more := ""
	if len(p) > 5 {
		more = fmt.Sprintf(" (and %d more)", len(p)-5)
		p = p[:5]
	}
	return []Finding{{Check: CheckRootFilesystem, Severity: SeverityWarn,
		Detail: "could not read: " + strings.Join(p, "; ") + more,
		Fix:    "check the filesystem (e2fsck -fn on a copy of the partition)"}}
}

func (in *inspection) osName() string {
	if in.osRelease == nil {
		return ""
	}
	if p := in.osRelease["PRETTY_NAME"]; p != "" {
		return p
	}
	return strings.TrimSpace(in.osRelease["NAME"] + " " + in.osRelease["VERSION"])
}

func (in *inspection) checkOS() Finding {
	f := Finding{Check: CheckOS, Severity: SeverityOK}
	name := in.osName()
	if name == "" {
		f.Severity = SeverityWarn
		f.Detail = "no /etc/os-release or /usr/lib/os-release: distribution unknown"
		f.Fix = "check that the root filesystem is a Linux system's"
		name = "unknown distribution"
	} else {
		f.Detail = name
	}
	if len(in.kernels) == 0 {
		f.Severity = SeverityWarn
		f.Detail += "; no installed kernel under /lib/modules"
		if f.Fix == "" {
			f.Fix = "check that the image holds an installed system"
		}
		return f
	}
	var vs []string
	for _, k := range in.kernels {
		vs = append(vs, k.Version)
	}
	f.Detail += "; kernels " + strings.Join(vs, ", ")
	return f
}

// kernelVirtio grades one kernel's virtio drivers at boot.
func kernelVirtio(k kernel) (Severity, string) {
	have := func(m string) (bool, string) {
		if k.Builtin[m] {
			return true, m + " (built in)"
		}
		if k.Contents != nil && k.Contents.Modules[m] {
			return true, m
		}
		return false, ""
	}
	var found []string
	blk, s := have("virtio_blk")
	if blk {
		found = append(found, s)
	}
	scsi, s := have("virtio_scsi")
	if scsi {
		found = append(found, s)
	}
	pci, s := have("virtio_pci")
	if pci {
		found = append(found, s)
	}
	source := "no initramfs (looked for " + strings.ReplaceAll(strings.Join(initramfsNames, ", "), "%s", k.Version) + ")"
	if k.Initramfs != "" {
		source = "initramfs " + k.Initramfs
		if k.Contents != nil {
			source += " (" + strings.Join(k.Contents.Formats, " + ") + ")"
		}
	}
	desc := k.Version + ": "
	if len(found) > 0 {
		desc += strings.Join(found, ", ") + " in " + source
	} else {
		desc += "no virtio_blk or virtio_scsi in " + source
	}
	switch {
	case k.Contents == nil && k.Err != nil && !blk:
		return SeverityWarn, desc + "; could not list it: " + k.Err.Error()
	case blk && pci:
		return SeverityOK, desc
	case blk:
		return SeverityWarn, desc + "; virtio_pci is missing, so the virtio disk may not appear"
	case scsi:
		return SeverityWarn, desc + "; gale attaches disks with virtio-blk, which needs virtio_blk"
	}
	return SeverityFail, desc
}

func (in *inspection) checkVirtio() Finding {
	f := Finding{Check: CheckVirtioInitramfs}
	if len(in.kernels) == 0 {
		f.Severity = SeverityWarn
		f.Detail = "no installed kernel found, so no initramfs to check"
		f.Fix = fixInitramfs
		return f
	}
	var descs []string
	worstOther := SeverityOK
	var newest Severity
	for i, k := range in.kernels {
		sev, desc := kernelVirtio(k)
		descs = append(descs, desc)
		if i == len(in.kernels)-1 {
			newest = sev
		} else if sev != SeverityOK {
			worstOther = SeverityWarn
		}
	}
	f.Severity = newest
	if newest == SeverityOK && worstOther != SeverityOK {
		f.Severity = SeverityWarn
		descs = append(descs, "older kernels may not boot")
	}
	f.Detail = strings.Join(descs, "; ")
	if f.Severity != SeverityOK {
		f.Fix = fixInitramfs
	}
	return f
}

func (in *inspection) checkDeviceNames() Finding {
	f := Finding{Check: CheckDeviceNames, Severity: SeverityOK}
	var hits []string
	var maps []string
	seen := map[string]bool{}
	hasFstab := false
	for _, c := range in.configs {
		if c.Path == fstabPath {
			hasFstab = true
		}
		for _, r := range findDeviceNames(c.Data) {
			hits = append(hits, fmt.Sprintf("%s:%d %s", c.Path, r.Line, r.Name))
			if r.Virtio != "" && !seen[r.Name] {
				seen[r.Name] = true
				maps = append(maps, r.Name+" becomes "+r.Virtio)
			}
		}
	}
	if len(hits) == 0 {
		f.Detail = "fstab and bootloader configuration name disks by UUID=, LABEL= or other names that do not change under virtio"
		if !hasFstab {
			f.Severity = SeverityWarn
			f.Detail = "no /etc/fstab; bootloader configuration names no disk that changes under virtio"
			f.Fix = "check that the root filesystem is a complete system"
		}
		return f
	}
	sort.Strings(maps)
	f.Severity = SeverityWarn
	f.Detail = "device names that change under virtio: " + strings.Join(hits, ", ")
	if len(maps) > 0 {
		f.Detail += " (" + strings.Join(maps, ", ") + ")"
	}
	f.Fix = fixDeviceNames
	return f
}

func (in *inspection) checkGuestAgent() Finding {
	if in.guestAgent {
		return Finding{Check: CheckGuestAgent, Severity: SeverityOK,
			Detail: "qemu-guest-agent is installed: gale runs commands (vm exec), reads addresses and tells when the VM is up through it"}
	}
	fallback := "cloud-init, then a TCP port (--ready-port)"
	if !in.cloudInit {
		fallback = "a TCP port (--ready-port)"
	}
	return Finding{Check: CheckGuestAgent, Severity: SeverityWarn,
		Detail: "qemu-guest-agent is not installed: gale vm exec will not work, and gale tells the VM is up from " + fallback,
		Fix:    fixPrepare + " (needs virt-customize and the guest's package repositories), or install qemu-guest-agent on the server"}
}

func (in *inspection) checkCloudInit() Finding {
	if in.cloudInit {
		return Finding{Check: CheckCloudInit, Severity: SeverityOK,
			Detail: "cloud-init is installed: gale passes --cloud-init user-data and waits for cloud-init to finish"}
	}
	fallback := "the guest agent, then to a TCP port (--ready-port)"
	if !in.guestAgent {
		fallback = "a TCP port (--ready-port)"
	}
	return Finding{Check: CheckCloudInit, Severity: SeverityInfo,
		Detail: "cloud-init is not installed: --cloud-init user-data is not applied; gale falls back to " + fallback,
		Fix:    fixPrepare + " to install it (needs virt-customize and the guest's package repositories), or pass --ready-port"}
}

func (in *inspection) checkSerial() Finding {
	f := Finding{Check: CheckSerialConsole, Severity: SeverityInfo}
	lines := kernelCmdlines(in.configs)
	var with []string
	for _, c := range lines {
		if hasSerialConsole(c.Args) && !contains(with, c.Path) {
			with = append(with, c.Path)
		}
	}
	switch {
	case len(with) > 0:
		f.Detail = "console=ttyS0 is on the kernel command line (" + strings.Join(with, ", ") + "): gale vm console and vm logs show the boot"
	case len(lines) == 0:
		f.Detail = "no kernel command line found in the bootloader configuration: gale vm console and vm logs need console=ttyS0"
		f.Fix = "add console=ttyS0,115200n8 to the kernel command line"
	default:
		f.Detail = "no console=ttyS0 on the kernel command line: gale vm console and vm logs will show nothing"
		f.Fix = "add console=ttyS0,115200n8 to GRUB_CMDLINE_LINUX in /etc/default/grub and run update-grub (grub2-mkconfig -o /boot/grub2/grub.cfg on RHEL)"
	}
	return f
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// where names a partition, or the whole disk.
func where(index int) string {
	if index == 0 {
		return "the whole disk"
	}
	return fmt.Sprintf("partition %d", index)
}

// humanSize formats a byte count in binary units.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
