package hypervisor

import (
	"fmt"
	"net"
	"path/filepath"
)

// MinMemoryMiB is the smallest memory size a DomainSpec may ask for.
const MinMemoryMiB = 64

// maxBridgeLen is the longest Linux network interface name (IFNAMSIZ-1).
const maxBridgeLen = 15

// ValidateDomainSpec checks spec before any side effect. It returns an error
// wrapping ErrInvalidSpec that names the first problem found. AccelAuto and an
// empty Accel are accepted (drivers resolve them).
func ValidateDomainSpec(spec DomainSpec) error {
	if err := ValidateName(spec.Name); err != nil {
		return fmt.Errorf("domain: %w", err)
	}
	if spec.VCPUs < 1 {
		return fmt.Errorf("domain %q: vcpus must be at least 1, got %d: %w", spec.Name, spec.VCPUs, ErrInvalidSpec)
	}
	if spec.MemoryMiB < MinMemoryMiB {
		return fmt.Errorf("domain %q: memory must be at least %d MiB, got %d: %w", spec.Name, MinMemoryMiB, spec.MemoryMiB, ErrInvalidSpec)
	}
	switch spec.Accel {
	case "", AccelAuto, AccelKVM, AccelTCG:
	default:
		return fmt.Errorf("domain %q: unknown accelerator %q: %w", spec.Name, spec.Accel, ErrInvalidSpec)
	}
	switch spec.Firmware {
	case "", FirmwareBIOS, FirmwareUEFI:
	default:
		return fmt.Errorf("domain %q: unknown firmware %q: %w", spec.Name, spec.Firmware, ErrInvalidSpec)
	}
	targets := map[string]bool{}
	for i, d := range spec.Disks {
		if d.Path == "" || !filepath.IsAbs(d.Path) {
			return fmt.Errorf("domain %q: disk %d: path %q must be absolute: %w", spec.Name, i, d.Path, ErrInvalidSpec)
		}
		if d.Format != "qcow2" && d.Format != "raw" {
			return fmt.Errorf("domain %q: disk %d: format %q must be qcow2 or raw: %w", spec.Name, i, d.Format, ErrInvalidSpec)
		}
		if d.Target == "" {
			return fmt.Errorf("domain %q: disk %d: target is required: %w", spec.Name, i, ErrInvalidSpec)
		}
		if targets[d.Target] {
			return fmt.Errorf("domain %q: disk %d: duplicate target %q: %w", spec.Name, i, d.Target, ErrInvalidSpec)
		}
		targets[d.Target] = true
		switch d.Device {
		case "", DeviceDisk, DeviceCDROM:
		default:
			return fmt.Errorf("domain %q: disk %d: unknown device %q: %w", spec.Name, i, d.Device, ErrInvalidSpec)
		}
	}
	for i, n := range spec.NICs {
		if n.Network == "" {
			return fmt.Errorf("domain %q: nic %d: network is required: %w", spec.Name, i, ErrInvalidSpec)
		}
		if n.MAC != "" {
			if _, err := net.ParseMAC(n.MAC); err != nil {
				return fmt.Errorf("domain %q: nic %d: bad MAC %q: %w", spec.Name, i, n.MAC, ErrInvalidSpec)
			}
		}
	}
	return nil
}

// ValidateNetworkSpec checks spec before any side effect. It returns an error
// wrapping ErrInvalidSpec. CIDR must be an IPv4 host address with a prefix of
// at most /30; DHCPStart and DHCPEnd must be both set or both nil.
func ValidateNetworkSpec(spec NetworkSpec) error {
	if err := ValidateName(spec.Name); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	switch spec.Mode {
	case NetworkNAT, NetworkIsolated, NetworkOpen:
	default:
		return fmt.Errorf("network %q: mode %q must be nat, isolated or open: %w", spec.Name, spec.Mode, ErrInvalidSpec)
	}
	if len(spec.Bridge) > maxBridgeLen {
		return fmt.Errorf("network %q: bridge name %q is longer than %d characters: %w", spec.Name, spec.Bridge, maxBridgeLen, ErrInvalidSpec)
	}
	if spec.CIDR == nil || spec.CIDR.IP.To4() == nil {
		return fmt.Errorf("network %q: an IPv4 CIDR is required: %w", spec.Name, ErrInvalidSpec)
	}
	if ones, bits := spec.CIDR.Mask.Size(); bits != 32 || ones > 30 || ones < 8 {
		return fmt.Errorf("network %q: prefix /%d must be between /8 and /30: %w", spec.Name, ones, ErrInvalidSpec)
	}
	if (spec.DHCPStart == nil) != (spec.DHCPEnd == nil) {
		return fmt.Errorf("network %q: set both DHCPStart and DHCPEnd or neither: %w", spec.Name, ErrInvalidSpec)
	}
	if spec.DHCPStart != nil {
		for _, ip := range []net.IP{spec.DHCPStart, spec.DHCPEnd} {
			if ip.To4() == nil || !spec.CIDR.Contains(ip) {
				return fmt.Errorf("network %q: DHCP address %s is not inside %s: %w", spec.Name, ip, spec.CIDR, ErrInvalidSpec)
			}
		}
	}
	return nil
}
