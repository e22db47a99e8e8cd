package preflight

import (
	"bytes"
	"strings"
)

// fstabPath is the filesystem table.
const fstabPath = "/etc/fstab"

// bootConfigPaths are the bootloader configurations read for device names
// and the kernel command line, in the guest's namespace. BLS entries
// (/boot/loader/entries/*.conf) are added by listing their directory.
var bootConfigPaths = []string{
	"/boot/grub/grub.cfg",
	"/boot/grub2/grub.cfg",
	"/etc/default/grub",
	"/boot/grub2/grubenv",
	"/boot/grub/menu.lst",
	"/boot/grub/grub.conf",
	"/boot/extlinux/extlinux.conf",
	"/boot/extlinux.conf",
	"/boot/syslinux/syslinux.cfg",
	"/boot/syslinux.cfg",
	"/etc/kernel/cmdline",
}

// blsEntriesDir holds Boot Loader Specification entries (RHEL 8+, Fedora).
const blsEntriesDir = "/boot/loader/entries"

// deviceConfigPaths are other files that name the boot disk's devices and
// are rewritten with the bootloader configurations.
var deviceConfigPaths = []string{
	"/etc/initramfs-tools/conf.d/resume",
}

// grubenvSize is the fixed size of a GRUB environment block.
const grubenvSize = 1024

// configFile is a configuration file read from the guest.
type configFile struct {
	Path string // guest path
	Data []byte
}

// isBootConfig reports whether the guest path is a bootloader
// configuration (as opposed to fstab or another device file).
func isBootConfig(p string) bool {
	if strings.HasPrefix(p, blsEntriesDir+"/") {
		return true
	}
	for _, b := range bootConfigPaths {
		if b == p {
			return true
		}
	}
	return false
}

// cmdline is one kernel command line found in a bootloader configuration.
type cmdline struct {
	Path string
	Args []string
}

// kernelCmdlines extracts the kernel command lines from bootloader
// configurations: grub's linux/linux16/linuxefi/kernel lines, the
// GRUB_CMDLINE_LINUX* variables, grubenv's kernelopts, syslinux APPEND,
// BLS options and /etc/kernel/cmdline.
func kernelCmdlines(files []configFile) []cmdline {
	var out []cmdline
	for _, f := range files {
		if !isBootConfig(f.Path) {
			continue
		}
		for _, line := range strings.Split(string(f.Data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if args, ok := cmdlineOf(f.Path, line); ok {
				out = append(out, cmdline{Path: f.Path, Args: args})
			}
		}
	}
	return out
}

// cmdlineOf returns the kernel arguments on one configuration line.
func cmdlineOf(p, line string) ([]string, bool) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil, false
	}
	switch {
	case p == "/etc/kernel/cmdline":
		return fields, true
	case p == "/etc/default/grub":
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "GRUB_CMDLINE_LINUX") {
			return nil, false
		}
		return strings.Fields(strings.Trim(value, `"'`)), true
	case p == "/boot/grub2/grubenv":
		value, ok := strings.CutPrefix(line, "kernelopts=")
		return strings.Fields(value), ok
	case strings.HasPrefix(p, blsEntriesDir+"/"):
		if fields[0] == "options" {
			return fields[1:], true
		}
	case strings.Contains(p, "extlinux"), strings.Contains(p, "syslinux"):
		if strings.EqualFold(fields[0], "append") {
			return fields[1:], true
		}
	default: // grub
		switch fields[0] {
		case "linux", "linux16", "linuxefi", "kernel":
			if len(fields) > 1 {
				return fields[2:], true
			}
		}
	}
	return nil, false
}

// hasSerialConsole reports whether args send the console to the first
// serial port.
func hasSerialConsole(args []string) bool {
	for _, a := range args {
		if a == "console=ttyS0" || strings.HasPrefix(a, "console=ttyS0,") {
			return true
		}
	}
	return false
}

// fixGrubenv keeps a GRUB environment block at its fixed size after an
// edit by adjusting its trailing '#' padding. It returns false when the
// edited block no longer fits.
func fixGrubenv(data []byte) ([]byte, bool) {
	body := bytes.TrimRight(data, "#")
	if len(body) > grubenvSize {
		return nil, false
	}
	return append(body, bytes.Repeat([]byte("#"), grubenvSize-len(body))...), true
}

// fstabMountSource returns the device field of the fstab line mounting
// mountpoint, or "".
func fstabMountSource(fstab []byte, mountpoint string) string {
	for _, line := range strings.Split(string(fstab), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") && f[1] == mountpoint {
			return f[0]
		}
	}
	return ""
}
