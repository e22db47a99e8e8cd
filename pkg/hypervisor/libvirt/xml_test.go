package libvirt

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/internal/testtool"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// xmlSpecs are the domain specs the XML tests render.
func xmlSpecs() map[string]hypervisor.DomainSpec {
	base := func(name string, accel hypervisor.Accel) hypervisor.DomainSpec {
		return hypervisor.DomainSpec{
			Name: name, UUID: "0b6f2a52-5a0c-4d8e-9f39-0e5f3c7c2a11",
			VCPUs: 1, MemoryMiB: 1024, Accel: accel,
			Disks: []hypervisor.Disk{{Path: "/var/lib/gale/disks/" + name + ".qcow2", Format: "qcow2", Target: "vda"}},
			NICs:  []hypervisor.NIC{{Network: "gale-test", MAC: "52:54:00:AA:bb:01"}},
			Metadata: hypervisor.Metadata{
				ID: "vm-" + name, Image: "debian-12",
				CreatedAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
			},
		}
	}
	tcgMinimal := base("tcg-minimal", hypervisor.AccelTCG)
	tcgMinimal.Metadata = hypervisor.Metadata{}

	kvmSeedAgent := base("kvm-seed-agent", hypervisor.AccelKVM)
	kvmSeedAgent.VCPUs = 2
	kvmSeedAgent.Disks = append(kvmSeedAgent.Disks, hypervisor.Disk{
		Path: "/var/lib/gale/seeds/kvm-seed-agent.iso", Format: "raw", Device: hypervisor.DeviceCDROM, Target: "sda",
	})
	kvmSeedAgent.GuestAgent = true
	kvmSeedAgent.SerialLog = "/var/log/gale/kvm-seed-agent.serial.log"

	tcgMultiNIC := base("tcg-multi-nic", hypervisor.AccelTCG)
	tcgMultiNIC.NICs = append(tcgMultiNIC.NICs,
		hypervisor.NIC{Network: "gale-backend", MAC: "52:54:00:aa:bb:02"},
		hypervisor.NIC{Network: "gale-mgmt", MAC: "52:54:00:aa:bb:03", Model: "e1000"})
	tcgMultiNIC.GuestAgent = true
	tcgMultiNIC.Metadata.Set = "web"
	tcgMultiNIC.CPUModel = "Nehalem"

	uefi := base("tcg-uefi-raw", hypervisor.AccelTCG)
	uefi.Firmware = hypervisor.FirmwareUEFI
	uefi.Disks = []hypervisor.Disk{
		{Path: "/srv/import/server.raw", Format: "raw", Target: "vda"},
		{Path: "/srv/import/data.qcow2", Format: "qcow2", Target: "vdb", ReadOnly: true},
		{Path: "/srv/seed.iso", Format: "raw", Device: hypervisor.DeviceCDROM, Target: "sda"},
	}
	uefi.NICs = nil
	uefi.CPUModel = "max"

	return map[string]hypervisor.DomainSpec{
		"tcg-minimal":    tcgMinimal,
		"kvm-seed-agent": kvmSeedAgent,
		"tcg-multi-nic":  tcgMultiNIC,
		"tcg-uefi-raw":   uefi,
	}
}

func TestDomainXML(t *testing.T) {
	for name, spec := range xmlSpecs() {
		t.Run(name, func(t *testing.T) {
			if err := hypervisor.ValidateDomainSpec(spec); err != nil {
				t.Fatalf("spec invalid: %v", err)
			}
			spec, err := withDefaults(spec, hypervisor.AccelTCG)
			if err != nil {
				t.Fatal(err)
			}
			dom, err := domainXML(spec)
			if err != nil {
				t.Fatalf("domainXML: %v", err)
			}
			first, err := dom.Marshal()
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}

			// Round trip: Marshal -> Unmarshal -> Marshal is stable.
			var back libvirtxml.Domain
			if err := back.Unmarshal(first); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			second, err := back.Marshal()
			if err != nil {
				t.Fatalf("re-marshal: %v", err)
			}
			if first != second {
				t.Fatalf("XML not stable through a round trip:\n%s\n---\n%s", first, second)
			}

			// What List reads back is what was asked for.
			got, err := domainFromXML(first, 5)
			if err != nil {
				t.Fatalf("domainFromXML: %v", err)
			}
			if got.VCPUs != spec.VCPUs || got.MemoryMiB != spec.MemoryMiB || len(got.MACs) != len(spec.NICs) {
				t.Errorf("read back vcpus=%d mem=%d macs=%v", got.VCPUs, got.MemoryMiB, got.MACs)
			}
			if got.Metadata == nil || *got.Metadata != spec.Metadata {
				t.Errorf("metadata read back as %+v, want %+v", got.Metadata, spec.Metadata)
			}

			checkDomainInvariants(t, spec, first)

			golden := filepath.Join("testdata", "domain-"+name+".xml")
			if *update {
				if err := os.WriteFile(golden, []byte(first+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create): %v", err)
			}
			if strings.TrimSpace(string(want)) != first {
				t.Errorf("XML differs from %s (run with -update if intended):\n%s", golden, first)
			}

			// virt-xml-validate runs xmllint.
			validator := testtool.Need(t, "Debian: libvirt-clients, libxml2-utils", "virt-xml-validate", "xmllint")[0]
			out, err := exec.Command(validator, golden, "domain").CombinedOutput()
			if err != nil {
				t.Fatalf("virt-xml-validate %s: %v\n%s", golden, err, out)
			}
		})
	}
}

// checkDomainInvariants asserts the rules gale relies on.
func checkDomainInvariants(t *testing.T, spec hypervisor.DomainSpec, doc string) {
	t.Helper()
	wantType := map[hypervisor.Accel]string{hypervisor.AccelKVM: "kvm", hypervisor.AccelTCG: "qemu"}[spec.Accel]
	if !strings.HasPrefix(doc, "<domain type=\""+wantType+"\">") {
		t.Errorf("domain type is not %q: %.40s", wantType, doc)
	}
	if n := strings.Count(doc, "<disk "); n != len(spec.Disks) {
		t.Errorf("%d disks, want %d", n, len(spec.Disks))
	}
	// Every disk has an explicit driver format.
	if n := len(regexp.MustCompile(`<driver name="qemu" type="(qcow2|raw)"`).FindAllString(doc, -1)); n != len(spec.Disks) {
		t.Errorf("%d explicit disk formats, want %d", n, len(spec.Disks))
	}
	for _, want := range []string{`<rng model="virtio">`, `<memballoon model="virtio">`, `<serial type="pty">`, `<console type="pty">`, `<on_crash>destroy</on_crash>`} {
		if !strings.Contains(doc, want) {
			t.Errorf("missing %s", want)
		}
	}
	if got := strings.Contains(doc, agentChannel); got != spec.GuestAgent {
		t.Errorf("agent channel present=%v, want %v", got, spec.GuestAgent)
	}
	if spec.SerialLog != "" && !strings.Contains(doc, `<log file="`+spec.SerialLog+`" append="off">`) {
		t.Errorf("serial log missing")
	}
}

func TestWithDefaultsMAC(t *testing.T) {
	spec := hypervisor.DomainSpec{Name: "a", NICs: []hypervisor.NIC{{Network: "n"}, {Network: "n", MAC: "52:54:00:AB:CD:EF"}}}
	got, err := withDefaults(spec, hypervisor.AccelKVM)
	if err != nil {
		t.Fatal(err)
	}
	if got.Accel != hypervisor.AccelKVM {
		t.Errorf("accel = %q, want kvm", got.Accel)
	}
	if !regexp.MustCompile(`^52:54:00(:[0-9a-f]{2}){3}$`).MatchString(got.NICs[0].MAC) {
		t.Errorf("generated MAC %q is not 52:54:00:xx:xx:xx", got.NICs[0].MAC)
	}
	if got.NICs[1].MAC != "52:54:00:ab:cd:ef" {
		t.Errorf("given MAC normalized to %q", got.NICs[1].MAC)
	}
	if spec.NICs[0].MAC != "" {
		t.Error("withDefaults modified the caller's NICs")
	}
	if _, err := domainXML(hypervisor.DomainSpec{Name: "a", Accel: hypervisor.AccelAuto}); !errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Errorf("unresolved accel: err = %v, want ErrInvalidSpec", err)
	}
}
