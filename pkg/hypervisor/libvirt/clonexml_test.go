package libvirt

import (
	"errors"
	"os"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/galevm/gale/pkg/hypervisor"
)

func savedLiveXML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/saved-live-domain.xml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cloneSpec() hypervisor.CloneSpec {
	return hypervisor.CloneSpec{
		Name:      "web-2",
		UUID:      "11111111-2222-4333-8444-555555555555",
		Disks:     map[string]string{"vda": "/var/lib/gale/vms/web-2/disk.qcow2", "vdb": "/var/lib/gale/vms/web-2/seed.iso"},
		MACs:      []string{"52:54:00:CC:DD:02"},
		SerialLog: "/var/lib/gale/vms/web-2/console.log",
		Metadata:  hypervisor.Metadata{ID: "i-clone", Image: "debian-12", Parent: "gale-parent-0123456789ab"},
	}
}

// TestCloneXMLRewritesIdentityOnly checks that a clone's XML differs from the
// saved domain in its identity and host-side paths, and nowhere the guest's
// saved state depends on.
func TestCloneXMLRewritesIdentityOnly(t *testing.T) {
	saved := savedLiveXML(t)
	out, err := cloneXML(saved, cloneSpec())
	if err != nil {
		t.Fatalf("cloneXML: %v", err)
	}
	var got, orig libvirtxml.Domain
	if err := got.Unmarshal(out); err != nil {
		t.Fatalf("clone XML does not parse: %v\n%s", err, out)
	}
	if err := orig.Unmarshal(saved); err != nil {
		t.Fatal(err)
	}
	if got.Name != "web-2" || got.UUID != "11111111-2222-4333-8444-555555555555" || got.ID != nil {
		t.Errorf("identity: name %q uuid %q id %v", got.Name, got.UUID, got.ID)
	}
	if got.GenID == nil || got.GenID.Value != "" {
		t.Errorf("genid = %+v, want a new one chosen by libvirt (empty element)", got.GenID)
	}
	d := got.Devices
	if d.Disks[0].Source.File.File != "/var/lib/gale/vms/web-2/disk.qcow2" || d.Disks[1].Source.File.File != "/var/lib/gale/vms/web-2/seed.iso" {
		t.Errorf("disk sources: %s, %s", d.Disks[0].Source.File.File, d.Disks[1].Source.File.File)
	}
	for i, dk := range d.Disks {
		if dk.BackingStore != nil || dk.Source.Index != 0 {
			t.Errorf("disk %d keeps the saved backing chain or index: %+v", i, dk.BackingStore)
		}
		if dk.Address == nil || *dk.Address.PCI.Slot != *orig.Devices.Disks[i].Address.PCI.Slot {
			t.Errorf("disk %d PCI address changed", i)
		}
	}
	if d.Disks[1].ReadOnly == nil {
		t.Error("seed disk lost readonly")
	}
	nic := d.Interfaces[0]
	if nic.MAC.Address != "52:54:00:cc:dd:02" || nic.Target != nil {
		t.Errorf("nic: mac %q target %+v", nic.MAC.Address, nic.Target)
	}
	if nic.Source.Network.Network != "gale" {
		t.Errorf("nic network = %q", nic.Source.Network.Network)
	}
	if d.Serials[0].Log.File != "/var/lib/gale/vms/web-2/console.log" || d.Serials[0].Source.Pty.Path != "" {
		t.Errorf("serial: %+v %+v", d.Serials[0].Log, d.Serials[0].Source.Pty)
	}
	if d.Consoles[0].TTY != "" {
		t.Errorf("console tty kept: %q", d.Consoles[0].TTY)
	}
	if p := d.Channels[0].Source.UNIX.Path; p != "" {
		t.Errorf("agent socket path kept: %q", p)
	}
	if !strings.Contains(out, "i-clone") || strings.Contains(out, "i-parent") || !strings.Contains(out, "gale-parent-0123456789ab") {
		t.Errorf("metadata not replaced:\n%s", out)
	}
	if got.Memory.Value != orig.Memory.Value || got.VCPU.Value != orig.VCPU.Value || got.OS.Type.Machine != orig.OS.Type.Machine ||
		got.CPU.Model.Value != orig.CPU.Model.Value {
		t.Error("size, machine type or CPU model changed")
	}
	if strings.Contains(out, "gale-parent-0123456789ab/disk.qcow2") || strings.Contains(out, "vnet3") || strings.Contains(out, "/dev/pts/4") {
		t.Errorf("clone XML still names the parent's host resources:\n%s", out)
	}
}

func TestCloneXMLGeneratesUUID(t *testing.T) {
	spec := cloneSpec()
	spec.UUID = ""
	a, err := cloneXML(savedLiveXML(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cloneXML(savedLiveXML(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	var da, db libvirtxml.Domain
	_ = da.Unmarshal(a)
	_ = db.Unmarshal(b)
	if da.UUID == "" || da.UUID == db.UUID || strings.Contains(a, "6a1d1f0e-8d2b-4c55-9a4e-0f4b9d8c2e11") {
		t.Errorf("uuids %q %q: want two new, different ones", da.UUID, db.UUID)
	}
}

func TestCloneXMLRefuses(t *testing.T) {
	saved := savedLiveXML(t)
	uefi := strings.Replace(saved, "<os>", "<os firmware='efi'>", 1)
	tests := []struct {
		name  string
		saved string
		edit  func(*hypervisor.CloneSpec)
		want  error
	}{
		{"not XML", "LibvirtQemudSave", nil, hypervisor.ErrBadSavedState},
		{"UEFI guest", uefi, nil, hypervisor.ErrBadSavedState},
		{"bad name", saved, func(s *hypervisor.CloneSpec) { s.Name = "../x" }, hypervisor.ErrInvalidSpec},
		{"missing disk file", saved, func(s *hypervisor.CloneSpec) { delete(s.Disks, "vdb") }, hypervisor.ErrInvalidSpec},
		{"unknown disk", saved, func(s *hypervisor.CloneSpec) { s.Disks["vdc"] = "/x" }, hypervisor.ErrInvalidSpec},
		{"relative disk path", saved, func(s *hypervisor.CloneSpec) { s.Disks["vda"] = "disk.qcow2" }, hypervisor.ErrInvalidSpec},
		{"too many MACs", saved, func(s *hypervisor.CloneSpec) { s.MACs = append(s.MACs, "52:54:00:00:00:09") }, hypervisor.ErrBadSavedState},
		{"bad MAC", saved, func(s *hypervisor.CloneSpec) { s.MACs = []string{"zz"} }, hypervisor.ErrInvalidSpec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := cloneSpec()
			if tt.edit != nil {
				tt.edit(&spec)
			}
			_, err := cloneXML(tt.saved, spec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
