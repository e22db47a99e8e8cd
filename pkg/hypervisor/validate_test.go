package hypervisor

import (
	"errors"
	"net"
	"testing"
)

func TestValidateDomainSpec(t *testing.T) {
	good := func() DomainSpec {
		return DomainSpec{
			Name: "vm1", VCPUs: 1, MemoryMiB: 512,
			Disks: []Disk{{Path: "/var/lib/gale/vm1.qcow2", Format: "qcow2", Target: "vda"}},
			NICs:  []NIC{{Network: "default"}},
		}
	}
	tests := []struct {
		name   string
		mutate func(*DomainSpec)
		ok     bool
	}{
		{"valid", func(*DomainSpec) {}, true},
		{"no disks", func(s *DomainSpec) { s.Disks = nil }, true},
		{"bad name", func(s *DomainSpec) { s.Name = "VM" }, false},
		{"zero vcpus", func(s *DomainSpec) { s.VCPUs = 0 }, false},
		{"too little memory", func(s *DomainSpec) { s.MemoryMiB = 63 }, false},
		{"relative disk", func(s *DomainSpec) { s.Disks[0].Path = "vm1.qcow2" }, false},
		{"no format", func(s *DomainSpec) { s.Disks[0].Format = "" }, false},
		{"vmdk format", func(s *DomainSpec) { s.Disks[0].Format = "vmdk" }, false},
		{"no target", func(s *DomainSpec) { s.Disks[0].Target = "" }, false},
		{"duplicate target", func(s *DomainSpec) { s.Disks = append(s.Disks, s.Disks[0]) }, false},
		{"nic without network", func(s *DomainSpec) { s.NICs[0].Network = "" }, false},
		{"bad mac", func(s *DomainSpec) { s.NICs[0].MAC = "zz" }, false},
		{"bad accel", func(s *DomainSpec) { s.Accel = "xen" }, false},
		{"bad firmware", func(s *DomainSpec) { s.Firmware = "coreboot" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.mutate(&s)
			err := ValidateDomainSpec(s)
			if tt.ok != (err == nil) {
				t.Fatalf("ValidateDomainSpec = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error %v does not wrap ErrInvalidSpec", err)
			}
		})
	}
}

func TestNetworkAddressing(t *testing.T) {
	cidr := func(s string) *net.IPNet {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip.To4()
		return n
	}
	tests := []struct {
		name                   string
		spec                   NetworkSpec
		host, start, end       string
		prefix                 int
		validErr, addressedErr bool
	}{
		{name: "host .1", spec: NetworkSpec{Name: "n", Mode: NetworkIsolated, CIDR: cidr("192.168.150.1/24")},
			host: "192.168.150.1", prefix: 24, start: "192.168.150.2", end: "192.168.150.254"},
		{name: "network address", spec: NetworkSpec{Name: "n", Mode: NetworkNAT, CIDR: cidr("10.0.0.0/16")},
			host: "10.0.0.1", prefix: 16, start: "10.0.0.2", end: "10.0.255.254"},
		{name: "explicit range", spec: NetworkSpec{Name: "n", Mode: NetworkNAT, CIDR: cidr("10.1.2.1/24"),
			DHCPStart: net.ParseIP("10.1.2.100"), DHCPEnd: net.ParseIP("10.1.2.200")},
			host: "10.1.2.1", prefix: 24, start: "10.1.2.100", end: "10.1.2.200"},
		{name: "range outside", spec: NetworkSpec{Name: "n", Mode: NetworkNAT, CIDR: cidr("10.1.2.1/24"),
			DHCPStart: net.ParseIP("10.1.3.100"), DHCPEnd: net.ParseIP("10.1.2.200")}, validErr: true},
		{name: "no room", spec: NetworkSpec{Name: "n", Mode: NetworkNAT, CIDR: cidr("10.1.2.2/30")},
			addressedErr: true},
		{name: "no cidr", spec: NetworkSpec{Name: "n", Mode: NetworkNAT}, validErr: true},
		{name: "bad mode", spec: NetworkSpec{Name: "n", Mode: "bridge", CIDR: cidr("10.1.2.1/24")}, validErr: true},
		{name: "long bridge", spec: NetworkSpec{Name: "n", Mode: NetworkNAT, Bridge: "a-very-long-bridge", CIDR: cidr("10.1.2.1/24")}, validErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateNetworkSpec(tt.spec)
			if tt.validErr {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("ValidateNetworkSpec = %v, want ErrInvalidSpec", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ValidateNetworkSpec: %v", err)
			}
			host, prefix, start, end, err := NetworkAddressing(tt.spec)
			if tt.addressedErr {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("NetworkAddressing = %v, want ErrInvalidSpec", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NetworkAddressing: %v", err)
			}
			if host.String() != tt.host || prefix != tt.prefix || start.String() != tt.start || end.String() != tt.end {
				t.Fatalf("got %s/%d %s-%s, want %s/%d %s-%s", host, prefix, start, end, tt.host, tt.prefix, tt.start, tt.end)
			}
		})
	}
}
