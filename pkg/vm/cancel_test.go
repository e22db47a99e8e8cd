package vm

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/network"
)

// blockingPull resolves every image as one that must be downloaded first,
// with a download that lasts until it is cancelled.
type blockingPull struct{ tmpl Template }

func (b blockingPull) Resolve(string) (ResolvedImage, error) {
	t := b.tmpl
	t.Pending = true
	return ResolvedImage{Template: t, CPUs: 1, MemoryMiB: 512, Fetch: func(ctx context.Context, progress func(string)) error {
		progress("0 B")
		<-ctx.Done()
		return ctx.Err()
	}}, nil
}

// TestDeleteCancelsCreate: deleting a VM whose create is running cancels
// the create (status cancelled, its undo run), then deletes, leaving no row,
// domain or files, wherever the create was.
func TestDeleteCancelsCreate(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, h *harness) *Service // starts a create of "web" that does not end on its own
		stage string                                  // the create's stage when the delete arrives
	}{
		{"waiting for ready", func(t *testing.T, h *harness) *Service {
			h.drv.SetAgentPing(func(context.Context, string) error { return hypervisor.ErrAgentUnavailable })
			if _, err := h.svc.Create(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12"}); err != nil {
				t.Fatal(err)
			}
			return h.svc
		}, string(StageBooting)},
		{"pulling its image", func(t *testing.T, h *harness) *Service {
			h.cfg.Images = blockingPull{h.cfg.Images.(stubImages).tmpl}
			svc := h.newService(t)
			if _, err := svc.Create(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12"}); err != nil {
				t.Fatal(err)
			}
			return svc
		}, StagePull},
		{"resumed by reconcile after a restart", func(t *testing.T, h *harness) *Service {
			h.drv.SetAgentPing(func(context.Context, string) error { return hypervisor.ErrAgentUnavailable })
			if _, err := h.svc.Create(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12"}); err != nil {
				t.Fatal(err)
			}
			waitStage(t, h.svc, string(StageBooting))
			h.svc.Close() // galed stops while the guest boots
			svc := h.newService(t)
			if rep, err := svc.Reconcile(context.Background(), ReconcileOptions{}); err != nil || len(rep.Resumed) != 1 {
				t.Fatalf("reconcile = %+v, %v", rep, err)
			}
			return svc
		}, string(StageBooting)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			h.svc = tt.setup(t, h)
			create := waitStage(t, h.svc, tt.stage)

			del, err := h.svc.Delete(ctx, "web", DeleteOptions{})
			if err != nil {
				t.Fatalf("Delete = %v, want it to cancel the create", err)
			}
			if done, _ := h.wait(t, api.Operation{ID: create}); done.Status != api.OpCancelled || done.Kind != "create" {
				t.Fatalf("create ended %+v, want cancelled", done)
			}
			if done, _ := h.wait(t, del); done.Status != api.OpSucceeded {
				t.Fatalf("delete ended %+v", done)
			}
			if _, err := h.svc.Get(ctx, "web"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after delete = %v, want ErrNotFound", err)
			}
			if _, err := h.drv.Get(ctx, "web"); !errors.Is(err, hypervisor.ErrNotFound) {
				t.Fatalf("domain after delete: %v", err)
			}
			if _, err := os.Stat(h.eng.Paths("web").Dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("directory after delete: %v", err)
			}
		})
	}
}

// waitStage waits until VM web's operation has reached stage and returns its ID.
func waitStage(t *testing.T, svc *Service, stage string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := svc.Get(context.Background(), "web"); err == nil && v.Operation != "" {
			if op, err := svc.Operation(context.Background(), v.Operation); err == nil && op.Stage == stage {
				return op.ID
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the operation on web never reached stage %q", stage)
	return ""
}

// TestCreateStartsInactiveNetwork: a create on a network that libvirtd left
// defined but inactive starts the network instead of failing at boot.
func TestCreateStartsInactiveNetwork(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	nets, err := network.New(network.Config{Driver: h.drv, Store: h.store})
	if err != nil {
		t.Fatal(err)
	}
	h.cfg.Networks = nets
	h.svc = h.newService(t)
	h.drv.SetNetworkActive("testnet", false)
	op, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "web", Image: "debian-12"})
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := h.wait(t, op); done.Status != api.OpSucceeded {
		t.Fatalf("create = %+v", done)
	}
	if n, _ := h.drv.GetNetwork(ctx, "testnet"); !n.Active {
		t.Fatal("network still inactive")
	}
}

// TestReconcileStartsInactiveNetwork: a VM recorded as running whose
// domain stopped while its network went inactive is started again by
// reconcile, which starts the network first; without a network starter the
// start fails as libvirt's would.
func TestReconcileStartsInactiveNetwork(t *testing.T) {
	for _, tt := range []struct {
		name         string
		withNetworks bool
		wantRunning  bool
	}{
		{name: "network started first", withNetworks: true, wantRunning: true},
		{name: "no network starter", withNetworks: false, wantRunning: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			if tt.withNetworks {
				nets, err := network.New(network.Config{Driver: h.drv, Store: h.store})
				if err != nil {
					t.Fatal(err)
				}
				h.cfg.Networks = nets
			}
			h.cfg.StartRetries = 1 // a start that fails need not be retried here
			h.svc = h.newService(t)
			op, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "web", Image: "debian-12"})
			if err != nil {
				t.Fatal(err)
			}
			if done, _ := h.wait(t, op); done.Status != api.OpSucceeded {
				t.Fatalf("create = %+v", done)
			}
			if err := h.drv.Destroy(ctx, "web"); err != nil {
				t.Fatal(err)
			}
			h.drv.SetNetworkActive("testnet", false)

			rep, err := h.svc.Reconcile(ctx, ReconcileOptions{StartStopped: true})
			if err != nil {
				t.Fatal(err)
			}
			dom, err := h.drv.Get(ctx, "web")
			if err != nil {
				t.Fatal(err)
			}
			if running := dom.State == hypervisor.StateRunning; running != tt.wantRunning {
				t.Errorf("web running = %v, want %v (report %+v)", running, tt.wantRunning, rep)
			}
			if n, _ := h.drv.GetNetwork(ctx, "testnet"); n.Active != tt.withNetworks {
				t.Errorf("network active = %v, want %v", n.Active, tt.withNetworks)
			}
		})
	}
}
