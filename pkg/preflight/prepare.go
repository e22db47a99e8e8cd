package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Prepare fixes, in place, what stands between the raw image at rawPath
// and booting as a gale VM, and reports each change it made or could not
// make. rep is Inspect's report for rawPath and chooses the fixes; nil
// makes Prepare inspect first. rep is not modified: run Inspect again to
// see the result.
//
// With debugfs, on ext2/3/4 root and /boot filesystems:
//   - a journal left unreplayed (unclean shutdown, or a running server
//     imaged) is replayed first, since the edits need a consistent
//     filesystem;
//   - device names that change under virtio (/dev/sdXN, /dev/hdXN,
//     /dev/xvdXN, /dev/nvmeCn1pN, /dev/cciss/cCdDpN) become /dev/vdXN in
//     /etc/fstab, the bootloader configurations (grub.cfg, /etc/default/grub,
//     grubenv, menu.lst, extlinux.conf, syslinux.cfg, BLS entries,
//     /etc/kernel/cmdline) and /etc/initramfs-tools/conf.d/resume. Each
//     file keeps its mode, owner, group and extended attributes and is read
//     back. /dev/disk/by-id and by-path names are reported, not rewritten.
//
// With virt-customize, when it is on PATH (one run for all of them):
//   - virtio drivers are added to the initramfs of every installed kernel
//     with the guest's own update-initramfs or dracut, when the
//     virtio-initramfs finding is not ok;
//   - qemu-guest-agent and cloud-init are installed when missing, from the
//     guest's package repositories, which must be reachable.
//
// Without virt-customize those come back as Changes with Applied false,
// saying what to do. The error is for missing host tools, an image that
// cannot be inspected, and a failed edit (the image may then be only
// partly prepared).
func Prepare(ctx context.Context, rawPath string, rep *Report) ([]Change, error) {
	in, err := inspect(ctx, rawPath)
	if err != nil {
		return nil, err
	}
	if rep == nil {
		rep = in.report()
	}
	if in.root == nil {
		return nil, errors.New("prepare: no root filesystem found in the image")
	}
	var changes []Change
	if in.guest != nil {
		replayed, err := in.replayJournals(ctx)
		changes = append(changes, replayed...)
		if err != nil {
			return changes, err
		}
		if len(replayed) > 0 {
			// Files may have changed with the replay.
			if in, err = inspect(ctx, rawPath); err != nil {
				return changes, err
			}
		}
		renamed, err := in.rewriteDeviceNames(ctx)
		changes = append(changes, renamed...)
		if err != nil {
			return changes, err
		}
		if in.bootFS != nil {
			changes = append(changes, Change{Check: CheckDeviceNames,
				Detail: fmt.Sprintf("/boot is %s on partition %d: its bootloader configuration was not checked (needs libguestfs)", in.bootFS.FS, in.bootFS.Index)})
		}
	} else {
		changes = append(changes, Change{Check: CheckDeviceNames,
			Detail: fmt.Sprintf("not checked: %s root filesystems need libguestfs; make sure /etc/fstab and the bootloader configuration do not name /dev/sd*, /dev/hd* or /dev/xvd* devices", in.root.FS)})
	}

	var ops []customization
	if f, ok := rep.Finding(CheckVirtioInitramfs); !ok || f.Severity != SeverityOK {
		ops = append(ops, in.initramfsCustomization())
	}
	if !rep.GuestAgent {
		ops = append(ops, installCustomization(CheckGuestAgent, "qemu-guest-agent", ""))
	}
	if !rep.CloudInit {
		ops = append(ops, installCustomization(CheckCloudInit, "cloud-init",
			"; at first boot it treats the VM as a new instance (new SSH host keys, network configuration from gale)"))
	}
	return append(changes, customize(ctx, in.rawPath, ops)...), nil
}

// replayJournals replays the journal of the root and /boot filesystems
// where it was left unreplayed.
func (in *inspection) replayJournals(ctx context.Context) ([]Change, error) {
	var changes []Change
	for _, e := range []*extFS{in.guest.root, in.guest.boot} {
		if e == nil || !e.super.needsRecovery() {
			continue
		}
		size := in.partSize(e.part)
		if err := replayJournal(ctx, e, size); err != nil {
			return append(changes, Change{Check: CheckRootFilesystem,
				Detail: fmt.Sprintf("could not replay the journal of %s on %s: %v", e.kind, where(e.part), err)}), err
		}
		changes = append(changes, Change{Check: CheckRootFilesystem, Applied: true,
			Detail: fmt.Sprintf("replayed the journal of %s on %s (it was not cleanly unmounted)", e.kind, where(e.part))})
	}
	return changes, nil
}

// partSize returns the size of the partition numbered index.
func (in *inspection) partSize(index int) int64 {
	for _, p := range in.layout.Parts {
		if p.Index == index {
			return p.Size
		}
	}
	return 0
}

// rewriteDeviceNames rewrites unstable device names in the configuration
// files read by the inspection.
func (in *inspection) rewriteDeviceNames(ctx context.Context) ([]Change, error) {
	var changes []Change
	for _, c := range in.configs {
		var manual []string
		for _, r := range findDeviceNames(c.Data) {
			if r.Virtio == "" {
				manual = append(manual, fmt.Sprintf("line %d %s", r.Line, r.Name))
			}
		}
		if len(manual) > 0 {
			changes = append(changes, Change{Check: CheckDeviceNames,
				Detail: c.Path + ": " + strings.Join(manual, ", ") + ": no virtio equivalent; replace with UUID= or LABEL= by hand"})
		}
		data, done := rewriteDeviceNames(c.Data)
		if len(done) == 0 {
			continue
		}
		if strings.HasSuffix(c.Path, "/grubenv") {
			fixed, ok := fixGrubenv(data)
			if !ok {
				changes = append(changes, Change{Check: CheckDeviceNames,
					Detail: c.Path + ": " + strings.Join(done, ", ") + " would not fit the 1024-byte environment block; edit it with grub2-editenv"})
				continue
			}
			data = fixed
		}
		if err := in.guest.writeFile(ctx, c.Path, data); err != nil {
			changes = append(changes, Change{Check: CheckDeviceNames, Detail: c.Path + ": " + err.Error()})
			return changes, fmt.Errorf("prepare %s: %w", c.Path, err)
		}
		changes = append(changes, Change{Check: CheckDeviceNames, Applied: true,
			Detail: c.Path + ": " + strings.Join(done, ", ")})
	}
	return changes, nil
}
