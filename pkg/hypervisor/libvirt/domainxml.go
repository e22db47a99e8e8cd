package libvirt

import (
	"crypto/rand"
	"fmt"
	"net"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/galevm/gale/pkg/hypervisor"
)

// Machine is the QEMU machine type of every domain gale defines.
const Machine = "q35"

// agentChannel is the virtio-serial port name qemu-guest-agent listens on.
const agentChannel = "org.qemu.guest_agent.0"

// virtType returns libvirt's domain type for a resolved accelerator.
func virtType(a hypervisor.Accel) string {
	if a == hypervisor.AccelKVM {
		return "kvm"
	}
	return "qemu"
}

// randomMAC returns a random locally administered address in QEMU's
// 52:54:00 prefix.
func randomMAC() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate MAC: %w", err)
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]), nil
}

// withDefaults returns a copy of spec with every NIC's MAC filled in and
// normalized to lowercase, and Accel resolved (AccelAuto or empty -> auto).
func withDefaults(spec hypervisor.DomainSpec, auto hypervisor.Accel) (hypervisor.DomainSpec, error) {
	if spec.Accel == "" || spec.Accel == hypervisor.AccelAuto {
		spec.Accel = auto
	}
	nics := make([]hypervisor.NIC, len(spec.NICs))
	for i, n := range spec.NICs {
		if n.MAC == "" {
			mac, err := randomMAC()
			if err != nil {
				return spec, err
			}
			n.MAC = mac
		} else {
			hw, err := net.ParseMAC(n.MAC)
			if err != nil {
				return spec, fmt.Errorf("nic %d: bad MAC %q: %w", i, n.MAC, hypervisor.ErrInvalidSpec)
			}
			n.MAC = hw.String()
		}
		nics[i] = n
	}
	spec.NICs = nics
	return spec, nil
}

// domainXML builds the libvirt domain for a validated spec whose Accel is
// resolved (kvm or tcg) and whose NICs all have MACs (see withDefaults).
//
// Choices: machine q35; on KVM the host CPU is passed through, under TCG the
// CPU is mode "maximum" (QEMU's -cpu max: everything TCG can emulate, which
// modern distribution kernels need beyond qemu64's baseline); disks always
// carry an explicit driver type; cdroms sit on SATA, read-only; a pty serial
// console (logged to SerialLog when set); a virtio RNG fed from /dev/urandom
// (guest entropy for ssh host keys is slow under TCG otherwise); a virtio
// memballoon; on_crash destroy.
func domainXML(spec hypervisor.DomainSpec) (*libvirtxml.Domain, error) {
	if spec.Accel != hypervisor.AccelKVM && spec.Accel != hypervisor.AccelTCG {
		return nil, fmt.Errorf("domain %q: accelerator %q is not resolved: %w", spec.Name, spec.Accel, hypervisor.ErrInvalidSpec)
	}
	meta, err := marshalMetadata(spec.Metadata)
	if err != nil {
		return nil, err
	}
	port0 := uint(0)
	dom := &libvirtxml.Domain{
		Type:          virtType(spec.Accel),
		Name:          spec.Name,
		UUID:          spec.UUID,
		Metadata:      &libvirtxml.DomainMetadata{XML: meta},
		Memory:        &libvirtxml.DomainMemory{Value: uint(spec.MemoryMiB), Unit: "MiB"},
		CurrentMemory: &libvirtxml.DomainCurrentMemory{Value: uint(spec.MemoryMiB), Unit: "MiB"},
		VCPU:          &libvirtxml.DomainVCPU{Placement: "static", Value: uint(spec.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Arch: "x86_64", Machine: Machine, Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
		},
		Features: &libvirtxml.DomainFeatureList{
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		CPU:        cpuXML(spec.Accel, spec.CPUModel),
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port0},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port0},
			}},
			RNGs: []libvirtxml.DomainRNG{{
				Model:   "virtio",
				Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "virtio"},
			// No USB controller: nothing gale attaches needs one, and an
			// emulated xHCI costs boot time under TCG.
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
		},
	}
	if spec.GenID {
		dom.GenID = &libvirtxml.DomainGenID{} // libvirt picks the ID
	}
	if spec.Firmware == hypervisor.FirmwareUEFI {
		dom.OS.Firmware = "efi"
	}
	if spec.SerialLog != "" {
		dom.Devices.Serials[0].Log = &libvirtxml.DomainChardevLog{File: spec.SerialLog, Append: "off"}
	}
	for _, d := range spec.Disks {
		dom.Devices.Disks = append(dom.Devices.Disks, diskXML(d))
	}
	for i, n := range spec.NICs {
		if n.MAC == "" {
			return nil, fmt.Errorf("domain %q: nic %d has no MAC", spec.Name, i)
		}
		model := n.Model
		if model == "" {
			model = "virtio"
		}
		dom.Devices.Interfaces = append(dom.Devices.Interfaces, libvirtxml.DomainInterface{
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: strings.ToLower(n.MAC)},
			Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: n.Network}},
			Model:  &libvirtxml.DomainInterfaceModel{Type: model},
		})
	}
	if spec.GuestAgent {
		dom.Devices.Channels = append(dom.Devices.Channels, libvirtxml.DomainChannel{
			// No path: libvirt picks one under its own directory.
			Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
			Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: agentChannel}},
		})
	}
	return dom, nil
}

// cpuXML picks the guest CPU: the host's under KVM; under TCG the named
// model, hypervisor.DefaultTCGCPUModel when empty, or everything QEMU can
// emulate for "max".
func cpuXML(a hypervisor.Accel, model string) *libvirtxml.DomainCPU {
	if a == hypervisor.AccelKVM {
		return &libvirtxml.DomainCPU{Mode: "host-passthrough", Check: "none"}
	}
	switch model {
	case "max", "maximum":
		return &libvirtxml.DomainCPU{Mode: "maximum", Check: "none"}
	case "":
		model = hypervisor.DefaultTCGCPUModel
	}
	return &libvirtxml.DomainCPU{Mode: "custom", Match: "exact", Check: "none",
		Model: &libvirtxml.DomainCPUModel{Value: model, Fallback: "forbid"}}
}

// diskXML renders one disk. The driver type is always explicit so QEMU
// never probes the format of an image a guest could have written.
func diskXML(d hypervisor.Disk) libvirtxml.DomainDisk {
	device := d.Device
	if device == "" {
		device = hypervisor.DeviceDisk
	}
	bus := d.Bus
	if bus == "" {
		bus = "virtio"
		if device == hypervisor.DeviceCDROM {
			bus = "sata"
		}
	}
	disk := libvirtxml.DomainDisk{
		Device: string(device),
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: d.Format},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: d.Path}},
		Target: &libvirtxml.DomainDiskTarget{Dev: d.Target, Bus: bus},
	}
	if d.ReadOnly || device == hypervisor.DeviceCDROM {
		disk.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
	}
	if device == hypervisor.DeviceDisk && disk.ReadOnly == nil {
		disk.Driver.Discard = "unmap"
	}
	return disk
}
