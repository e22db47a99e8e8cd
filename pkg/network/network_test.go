package network

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/fake"
	"github.com/galevm/gale/pkg/store"
)

func newService(t *testing.T) (*Service, *fake.Driver, *store.Store) {
	t.Helper()
	d := fake.New()
	_, cidr, _ := net.ParseCIDR("192.168.150.1/24")
	if err := d.CreateNetwork(context.Background(), hypervisor.NetworkSpec{Name: "gale-default", Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := logrus.New()
	log.SetOutput(io.Discard)
	s, err := New(Config{Driver: d, Store: st, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return s, d, st
}

// TestEnsureActive: galed's network left inactive by a libvirtd that came
// up without network autostart is started again.
func TestEnsureActive(t *testing.T) {
	tests := []struct {
		name        string
		network     string
		inactive    bool
		wantStarted bool
		wantErr     error
	}{
		{"active", "gale-default", false, false, nil},
		{"defined but inactive", "gale-default", true, true, nil},
		{"missing", "nope", false, false, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, d, _ := newService(t)
			ctx := context.Background()
			if tt.inactive {
				d.SetNetworkActive(tt.network, false)
			}
			started, err := s.EnsureActive(ctx, tt.network)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || started != tt.wantStarted {
				t.Fatalf("EnsureActive = %v, %v; want %v, %v", started, err, tt.wantStarted, tt.wantErr)
			}
			if tt.wantErr == nil {
				if n, _ := d.GetNetwork(ctx, tt.network); !n.Active {
					t.Fatalf("network %s inactive after EnsureActive", tt.network)
				}
			}
		})
	}
}

func TestEnsure(t *testing.T) {
	s, d, _ := newService(t)
	ctx := context.Background()
	d.SetNetworkActive("gale-default", false)
	if created, err := s.Ensure(ctx, "gale-default", "isolated", "192.168.150.1/24"); err != nil || created {
		t.Fatalf("Ensure existing = %v, %v", created, err)
	}
	if n, _ := d.GetNetwork(ctx, "gale-default"); !n.Active {
		t.Fatal("Ensure left the existing network inactive")
	}
	if created, err := s.Ensure(ctx, "lab", "nat", "10.9.0.1/24"); err != nil || !created {
		t.Fatalf("Ensure new = %v, %v", created, err)
	}
}

func TestCreateDeleteRefusals(t *testing.T) {
	s, _, st := newService(t)
	ctx := context.Background()
	if err := st.InsertVM(ctx, store.VM{Name: "web", Network: "gale-default", State: api.StateRunning}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		kind errdefs.Kind
	}{
		{"bad mode", func() error {
			_, err := s.Create(ctx, api.CreateNetworkRequest{Name: "n", Mode: "bridge", CIDR: "10.0.0.1/24"})
			return err
		}, errdefs.Invalid},
		{"bad cidr", func() error {
			_, err := s.Create(ctx, api.CreateNetworkRequest{Name: "n", Mode: "nat", CIDR: "300.1.1.1/24"})
			return err
		}, errdefs.Invalid},
		{"taken name", func() error {
			_, err := s.Create(ctx, api.CreateNetworkRequest{Name: "gale-default", Mode: "nat", CIDR: "10.0.0.1/24"})
			return err
		}, errdefs.Conflict},
		{"in use", func() error { return s.Delete(ctx, "gale-default") }, errdefs.Conflict},
		{"unknown", func() error { return s.Delete(ctx, "nope") }, errdefs.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); errdefs.KindOf(err) != tt.kind {
				t.Fatalf("err = %v (kind %s), want kind %s", err, errdefs.KindOf(err), tt.kind)
			}
		})
	}
}
