package vm

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/store"
)

// crashState builds what a galed that died after `steps` steps of a create
// (phase creating) or delete (phase deleting) leaves behind. Create steps:
// row, dir, disk, seed, define, start. Delete steps undo them in reverse.
func crashState(t *testing.T, h *harness, name, phase string, have int) {
	t.Helper()
	ctx := context.Background()
	inst := h.eng.Paths(name)
	if err := h.store.PutVM(ctx, store.VM{Name: name, Image: "debian-12", Network: "testnet", Phase: phase, State: phase, Desired: store.DesiredRunning}); err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return os.MkdirAll(inst.Dir, 0o755) },
		func() error { return os.WriteFile(inst.DiskPath, []byte("disk"), 0o600) },
		func() error { return os.WriteFile(inst.SeedPath, []byte("seed"), 0o600) },
		func() error {
			return h.drv.Define(ctx, hypervisor.DomainSpec{
				Name: name, VCPUs: 1, MemoryMiB: 256, GuestAgent: true,
				Disks:    []hypervisor.Disk{{Path: inst.DiskPath, Format: "qcow2", Target: "vda"}},
				NICs:     []hypervisor.NIC{{Network: "testnet"}},
				Metadata: hypervisor.Metadata{ID: "i-x", Image: "debian-12"},
			})
		},
		func() error { return h.drv.Start(ctx, name) },
	}
	for _, s := range steps[:have] {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
}

func assertGoneAndReusable(t *testing.T, h *harness, svc *Service, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := h.drv.Get(ctx, name); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("domain leaked: %v", err)
	}
	if _, err := os.Stat(h.eng.Paths(name).Dir); !os.IsNotExist(err) {
		t.Errorf("directory leaked: %v", err)
	}
	if _, err := h.store.GetVM(ctx, name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("row leaked: %v", err)
	}
	h.svc = svc
	op, err := svc.Create(ctx, api.CreateVMRequest{Name: name, Image: "debian-12"})
	if err != nil {
		t.Fatalf("name %q not reusable: %v", name, err)
	}
	if done, _ := h.wait(t, op); done.Status != api.OpSucceeded {
		t.Fatalf("re-create: %+v", done)
	}
}

func TestReconcileAfterCrashBetweenSteps(t *testing.T) {
	stepNames := []string{"row", "dir", "disk", "seed", "define", "start"}
	for _, phase := range []string{store.PhaseCreating, store.PhaseDeleting} {
		for have := 0; have <= 5; have++ {
			t.Run(phase+" after "+stepNames[have], func(t *testing.T) {
				h := newHarness(t)
				crashState(t, h, "web", phase, have)
				svc := h.newService(t) // the restarted galed
				rep, err := svc.Reconcile(context.Background(), ReconcileOptions{StartStopped: true})
				if err != nil {
					t.Fatal(err)
				}
				list := rep.RolledBack
				if phase == store.PhaseDeleting {
					list = rep.Deleted
				}
				if !slices.Equal(list, []string{"web"}) || len(rep.Failed) != 0 {
					t.Fatalf("report = %+v", rep)
				}
				assertGoneAndReusable(t, h, svc, "web")
			})
		}
	}
}

func TestReconcileCrashDuringCreateOperation(t *testing.T) {
	// A create that fails in the middle of engine.Create with the process
	// "dying" (the service closed before the row is cleaned) must not leak.
	h := newHarness(t)
	ctx := context.Background()
	h.drv.SetAgentPing(func(context.Context, string) error { return hypervisor.ErrAgentUnavailable })
	if _, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "web", Image: "debian-12"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	h.svc.Close() // galed stops while the guest boots
	row, err := h.store.GetVM(ctx, "web")
	if err != nil || row.State != api.StateCreating || row.Phase != store.PhaseNone {
		t.Fatalf("row after shutdown = %+v, %v", row, err)
	}
	svc := h.newService(t)
	rep, err := svc.Reconcile(ctx, ReconcileOptions{StartStopped: true})
	if err != nil || !slices.Equal(rep.Resumed, []string{"web"}) {
		t.Fatalf("report = %+v, %v", rep, err)
	}
	// The create resumes: once the guest answers, it finishes as usual.
	vm, _ := svc.Get(ctx, "web")
	if vm.State != api.StateCreating || vm.Operation == "" {
		t.Fatalf("vm right after reconcile = %+v, want creating under a resumed operation", vm)
	}
	h.drv.SetAgentPing(nil)
	h.svc = svc
	if done, _ := h.wait(t, api.Operation{ID: vm.Operation}); done.Status != api.OpSucceeded || done.Kind != "create" {
		t.Fatalf("resumed operation = %+v", done)
	}
	vm, _ = svc.Get(ctx, "web")
	if vm.State != api.StateRunning || vm.CloudInit != api.CloudInitDone || vm.Error != "" || len(vm.Addresses) == 0 {
		t.Fatalf("vm after the resumed create = %+v", vm)
	}
	// A second reconcile finds nothing to do.
	if rep, err := svc.Reconcile(ctx, ReconcileOptions{StartStopped: true}); err != nil || len(rep.Resumed)+len(rep.Updated)+len(rep.Failed) != 0 {
		t.Fatalf("second reconcile = %+v, %v", rep, err)
	}
}

func TestReconcileAdoptsBreaksAndStarts(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	createReady(t, h, "keep")
	createReady(t, h, "gone")
	createReady(t, h, "stopped")
	// "gone" loses its domain behind galed's back; its files stay.
	_ = h.drv.Destroy(ctx, "gone")
	_ = h.drv.Undefine(ctx, "gone")
	// "stopped" should run but is shut off (host reboot).
	_ = h.drv.Destroy(ctx, "stopped")
	// An orphan gale domain and a foreign one.
	h.drv.AddDomain(hypervisor.Domain{Name: "orphan", State: hypervisor.StateRunning, VCPUs: 2, MemoryMiB: 300,
		Metadata: &hypervisor.Metadata{ID: "i-orphan", Image: "debian-12"}, MACs: []string{"52:54:00:aa:bb:cc"}})
	h.drv.AddDomain(hypervisor.Domain{Name: "foreign"})

	svc := h.newService(t)
	rep, err := svc.Reconcile(ctx, ReconcileOptions{StartStopped: true})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  []string
		want []string
	}{
		{"adopted", rep.Adopted, []string{"orphan"}},
		{"broken", rep.Broken, []string{"gone"}},
		{"started", rep.Started, []string{"stopped"}},
		{"rolled back", rep.RolledBack, nil},
		{"failed", rep.Failed, nil},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !slices.Equal(c.got, c.want) {
				t.Fatalf("got %v, want %v (report %+v)", c.got, c.want, rep)
			}
		})
	}
	states := map[string]string{"keep": api.StateRunning, "gone": api.StateBroken, "stopped": api.StateRunning, "orphan": api.StateRunning}
	list, err := svc.List(ctx)
	if err != nil || len(list) != 4 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	for _, v := range list {
		if v.State != states[v.Name] {
			t.Errorf("%s: state %s, want %s", v.Name, v.State, states[v.Name])
		}
	}
	if _, err := os.Stat(h.eng.Paths("gone").Dir); err != nil {
		t.Errorf("broken VM's files removed: %v", err)
	}
	// Idempotent: a second run does nothing.
	rep, err = svc.Reconcile(ctx, ReconcileOptions{StartStopped: true})
	if err != nil || len(rep.Adopted)+len(rep.Broken)+len(rep.Started)+len(rep.Updated)+len(rep.Failed) != 0 {
		t.Fatalf("second reconcile = %+v, %v", rep, err)
	}
	// The broken VM can still be deleted, which removes its files.
	h.svc = svc
	op, err := svc.Delete(ctx, "gone", DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := h.wait(t, op); done.Status != api.OpSucceeded {
		t.Fatalf("delete broken: %+v", done)
	}
	if _, err := os.Stat(h.eng.Paths("gone").Dir); !os.IsNotExist(err) {
		t.Errorf("files of deleted VM left: %v", err)
	}
}

func TestReconcileUnavailable(t *testing.T) {
	h := newHarness(t)
	h.drv.SetDown(true)
	if _, err := h.svc.Reconcile(context.Background(), ReconcileOptions{}); !errors.Is(err, hypervisor.ErrUnavailable) {
		t.Fatalf("Reconcile = %v", err)
	}
}
