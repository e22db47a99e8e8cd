package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/fake"
	"github.com/galevm/gale/pkg/network"
	"github.com/galevm/gale/pkg/store"
)

func TestDoctorChecks(t *testing.T) {
	ctx := context.Background()
	up := fake.New()
	_, cidr, _ := net.ParseCIDR("192.168.150.0/24")
	if err := up.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: "gale-default", Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
		t.Fatal(err)
	}
	inactive := fake.New()
	if err := inactive.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: "gale-default", Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
		t.Fatal(err)
	}
	inactive.SetNetworkActive("gale-default", false)
	down := fake.New()
	down.SetDown(true)

	kvmOpen := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(kvmOpen, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		check     api.Check
		wantOK    bool
		wantInFix string
	}{
		{"libvirt up", checkLibvirt(ctx, up, "test:///"), true, ""},
		{"libvirt down", checkLibvirt(ctx, down, "test:///"), false, "libvirtd"},
		{"/dev/kvm with mode 0600", checkDevKVM(kvmOpen), false, "chmod 0660"},
		{"no /dev/kvm", checkDevKVM(filepath.Join(t.TempDir(), "none")), true, ""},
		{"PVM-only host", checkAccel(tcgDriver(), hypervisor.HostProbe{DevKVM: true, Modules: map[string]bool{"kvm_pvm": true}}), true, "kvm_intel"},
		{"default network present", checkNetwork(ctx, up, "gale-default"), true, ""},
		{"default network missing", checkNetwork(ctx, up, "nope"), false, "gale network create nope"},
		{"default network inactive", checkNetwork(ctx, inactive, "gale-default"), false, "net-start gale-default"},
		{"disk space", checkDiskSpace(t.TempDir()), true, ""},
		{"no image on disk", checkImages(ctx, lister{{Name: "debian-12", Kind: api.ImageKindBuild}}), false, "gale image build debian-12"},
		{"image on disk", checkImages(ctx, lister{{Name: "debian-12", Kind: api.ImageKindBuild, Present: true}}), true, ""},
		{"bad catalog file", checkImages(ctx, lister{{Name: "x", Present: true}, {Name: "y", Error: "y.yaml: boot: bad"}}), false, "y.yaml"},
		{"missing group", checkGroup("gale-no-such-group"), false, "groupadd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.check.OK != tt.wantOK {
				t.Errorf("OK = %v, want %v (detail %q)", tt.check.OK, tt.wantOK, tt.check.Detail)
			}
			if tt.check.Detail == "" {
				t.Error("no detail")
			}
			if tt.wantInFix != "" && !strings.Contains(tt.check.Fix, tt.wantInFix) {
				t.Errorf("fix = %q, want it to mention %q", tt.check.Fix, tt.wantInFix)
			}
		})
	}
}

func tcgDriver() hypervisor.Driver {
	d := fake.New()
	d.SetAccel(hypervisor.AccelTCG)
	return d
}

// lister is a fixed image list.
type lister []api.Image

func (l lister) List(context.Context) ([]api.Image, error) { return l, nil }

// TestEnsureDefaultNetworkStartsInactive: at start galed starts its default
// network when libvirtd left it defined but inactive, whether or not it may
// create it.
func TestEnsureDefaultNetworkStartsInactive(t *testing.T) {
	for _, create := range []bool{true, false} {
		t.Run(fmt.Sprintf("create=%v", create), func(t *testing.T) {
			ctx := context.Background()
			d := fake.New()
			_, cidr, _ := net.ParseCIDR("192.168.150.1/24")
			if err := d.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: "gale-default", Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
				t.Fatal(err)
			}
			d.SetNetworkActive("gale-default", false)
			st, err := store.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			log := logrus.New()
			log.SetOutput(io.Discard)
			nets, err := network.New(network.Config{Driver: d, Store: st, Log: log})
			if err != nil {
				t.Fatal(err)
			}
			dn := NetworkConfig{Name: "gale-default", Mode: api.NetworkIsolated, CIDR: "192.168.150.1/24", Create: &create}
			if err := ensureDefaultNetwork(ctx, nets, dn, log); err != nil {
				t.Fatal(err)
			}
			if n, _ := d.GetNetwork(ctx, "gale-default"); !n.Active {
				t.Fatal("default network still inactive")
			}
		})
	}
}
