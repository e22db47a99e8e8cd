package libvirt

import (
	"crypto/rand"
	"fmt"
	"net"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/galevm/gale/pkg/hypervisor"
)

// cloneXML rewrites the domain XML of a saved state (saved) into the XML of
// a clone with spec's identity. It changes only what makes the domain a
// different machine on the host (name, UUID, disk files, MACs, console log,
// generation ID, gale metadata) and what libvirt must choose anew for it
// (agent socket and pty paths, tap device names, disk backing chains, which
// libvirt reads from the clone's own disk headers). Everything the guest's
// saved state depends on (devices, their order and addresses, sizes) is
// kept. The saved domain must be one gale could have made: every disk a
// file, every disk listed in spec.Disks, one MAC per NIC; anything else is
// hypervisor.ErrBadSavedState.
func cloneXML(saved string, spec hypervisor.CloneSpec) (string, error) {
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(saved); err != nil {
		return "", fmt.Errorf("%w: parse saved domain XML: %w", hypervisor.ErrBadSavedState, err)
	}
	if err := hypervisor.ValidateName(spec.Name); err != nil {
		return "", fmt.Errorf("clone name: %w: %w", hypervisor.ErrInvalidSpec, err)
	}
	meta, err := marshalMetadata(spec.Metadata)
	if err != nil {
		return "", err
	}
	if dom.OS != nil && (dom.OS.NVRam != nil || dom.OS.Loader != nil || dom.OS.Firmware != "") {
		// A UEFI guest's variable store is a per-domain file the clone
		// would have to share or lose: not cloned.
		return "", fmt.Errorf("%w: saved domain boots with UEFI firmware", hypervisor.ErrBadSavedState)
	}
	dom.Name = spec.Name
	dom.UUID = spec.UUID
	if dom.UUID == "" {
		if dom.UUID, err = newUUID(); err != nil {
			return "", err
		}
	}
	dom.ID = nil
	dom.Metadata = &libvirtxml.DomainMetadata{XML: meta}
	if dom.GenID != nil {
		dom.GenID = &libvirtxml.DomainGenID{} // a new ID: the guest reseeds its RNG
	}
	if dom.Devices == nil {
		return "", fmt.Errorf("%w: saved domain has no devices", hypervisor.ErrBadSavedState)
	}
	devs := dom.Devices
	if err := cloneDisks(devs, spec.Disks); err != nil {
		return "", err
	}
	if len(devs.Interfaces) != len(spec.MACs) {
		return "", fmt.Errorf("%w: saved domain has %d NICs, clone spec gives %d MACs",
			hypervisor.ErrBadSavedState, len(devs.Interfaces), len(spec.MACs))
	}
	for i := range devs.Interfaces {
		hw, err := net.ParseMAC(spec.MACs[i])
		if err != nil {
			return "", fmt.Errorf("nic %d: bad MAC %q: %w", i, spec.MACs[i], hypervisor.ErrInvalidSpec)
		}
		devs.Interfaces[i].MAC = &libvirtxml.DomainInterfaceMAC{Address: hw.String()}
		devs.Interfaces[i].Target = nil // libvirt names the tap device
	}
	for i := range devs.Serials {
		s := &devs.Serials[i]
		if s.Source != nil && s.Source.Pty != nil {
			s.Source.Pty.Path = ""
		}
		if s.Log != nil || spec.SerialLog != "" {
			s.Log = nil
			if spec.SerialLog != "" {
				s.Log = &libvirtxml.DomainChardevLog{File: spec.SerialLog, Append: "off"}
			}
		}
	}
	for i := range devs.Consoles {
		c := &devs.Consoles[i]
		c.TTY = ""
		if c.Source != nil && c.Source.Pty != nil {
			c.Source.Pty.Path = ""
		}
	}
	for i := range devs.Channels {
		ch := &devs.Channels[i]
		if ch.Source != nil && ch.Source.UNIX != nil && ch.Source.UNIX.Mode == "bind" {
			ch.Source.UNIX.Path = "" // libvirt makes one under the new domain's directory
		}
	}
	out, err := dom.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal clone XML: %w", err)
	}
	return out, nil
}

// cloneDisks points every disk at its file in files, keyed by target
// device, and drops the saved backing chains.
func cloneDisks(devs *libvirtxml.DomainDeviceList, files map[string]string) error {
	seen := make(map[string]bool, len(devs.Disks))
	for i := range devs.Disks {
		d := &devs.Disks[i]
		if d.Target == nil || d.Target.Dev == "" {
			return fmt.Errorf("%w: saved disk %d has no target", hypervisor.ErrBadSavedState, i)
		}
		dev := d.Target.Dev
		if d.Source == nil || d.Source.File == nil {
			return fmt.Errorf("%w: saved disk %s is not a file", hypervisor.ErrBadSavedState, dev)
		}
		path, ok := files[dev]
		if !ok {
			return fmt.Errorf("%w: clone spec gives no file for disk %s", hypervisor.ErrInvalidSpec, dev)
		}
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%w: disk %s: path %q is not absolute", hypervisor.ErrInvalidSpec, dev, path)
		}
		d.Source.File = &libvirtxml.DomainDiskSourceFile{File: path}
		d.Source.Index = 0
		d.BackingStore = nil
		seen[dev] = true
	}
	for dev := range files {
		if !seen[dev] {
			return fmt.Errorf("%w: saved domain has no disk %s", hypervisor.ErrInvalidSpec, dev)
		}
	}
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate UUID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
