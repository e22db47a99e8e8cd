package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/guestid"
	"github.com/galevm/gale/pkg/hypervisor"
)

// fixedParent is a ParentSource with one parent, made by hand on the fake
// driver the way pkg/parent makes one: boot, save, undefine.
type fixedParent struct {
	ref     ParentRef
	ensured int
}

func (f *fixedParent) Lookup(context.Context, CreateRequest) (ParentRef, bool, error) {
	return f.ref, f.ref.Name != "", nil
}

func (f *fixedParent) Ensure(context.Context, CreateRequest, func(string)) (ParentRef, error) {
	f.ensured++
	if f.ref.Name == "" {
		return ParentRef{}, errors.New("no parent can be built here")
	}
	return f.ref, nil
}

// saveParent boots a parent domain on h's fake driver, saves it and
// undefines it, and returns its reference.
func saveParent(t *testing.T, h *harness) ParentRef {
	t.Helper()
	ctx := context.Background()
	pe := &Engine{Driver: h.drv, Disks: h.eng.Disks, Dir: filepath.Join(t.TempDir(), "parents")}
	req, _, err := h.svc.engineRequest(api.CreateVMRequest{Name: "gale-parent-0123456789ab", Image: "debian-12"})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := pe.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(inst.Dir, "state.sav")
	if err := h.drv.Save(ctx, inst.Name, state); err != nil {
		t.Fatal(err)
	}
	if err := pe.Delete(ctx, inst.Name, DeleteOptions{KeepDisk: true}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(state)
	return ParentRef{Name: inst.Name, StatePath: state, StateBytes: st.Size(), DiskPath: inst.DiskPath, MAC: inst.MAC, InstanceID: inst.ID}
}

func newCloneHarness(t *testing.T) (*harness, *fixedParent) {
	t.Helper()
	h := newHarness(t)
	p := &fixedParent{}
	h.cfg.Parents = p
	h.svc = h.newService(t)
	p.ref = saveParent(t, h)
	return h, p
}

func TestCreateClonesFromSavedParent(t *testing.T) {
	h, p := newCloneHarness(t)
	ctx := context.Background()
	op, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "web", Image: "debian-12"})
	if err != nil {
		t.Fatal(err)
	}
	done, evs := h.wait(t, op)
	if done.Status != api.OpSucceeded {
		t.Fatalf("op = %+v", done)
	}
	if got, want := strings.Join(stages(evs), " "), "disk seed restore identity ready address"; got != want {
		t.Fatalf("stages = %q, want %q", got, want)
	}
	vm, err := h.svc.Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if vm.Made != api.MadeClone || vm.Parent != p.ref.Name || vm.State != api.StateRunning || vm.CloudInit != api.CloudInitDone {
		t.Fatalf("vm = %+v", vm)
	}
	if vm.MAC == p.ref.MAC || vm.ID == p.ref.InstanceID {
		t.Fatalf("clone kept the parent's MAC or id: %+v", vm)
	}
	spec, ok := h.drv.Spec("web")
	if !ok || spec.NICs[0].MAC != vm.MAC || spec.Disks[0].Path != h.eng.Paths("web").DiskPath || spec.Metadata.Parent != p.ref.Name {
		t.Fatalf("clone domain = %+v", spec)
	}
	// One guest-agent call made it distinct, with its identity in it.
	var script string
	for _, e := range h.guest.execs {
		if e.Path == "/bin/sh" && len(e.Args) == 1 && e.Args[0] == "-s" {
			script = string(e.Stdin)
		}
	}
	if !strings.Contains(script, vm.MAC) || !strings.Contains(script, vm.ID) || !strings.Contains(script, p.ref.MAC) {
		t.Fatalf("identity script does not carry the clone's MAC and id:\n%.400s", script)
	}
	if p.ensured != 0 {
		t.Fatalf("auto mode built a parent")
	}
}

func TestCreateNeverClonesWhenAskedNot(t *testing.T) {
	h, p := newCloneHarness(t)
	op, err := h.svc.Create(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12", Clone: api.CloneNever})
	if err != nil {
		t.Fatal(err)
	}
	done, evs := h.wait(t, op)
	vm, _ := h.svc.Get(context.Background(), "web")
	if done.Status != api.OpSucceeded || vm.Made != api.MadeColdBoot || strings.Contains(strings.Join(stages(evs), " "), "restore") || p.ensured != 0 {
		t.Fatalf("op %+v, vm %+v, stages %v", done, vm, stages(evs))
	}
}

// TestCreateFallsBackToBoot: a state file that cannot be restored is
// refused, the clone's files are removed and the VM is booted, with the
// reason as a stage.
func TestCreateFallsBackToBoot(t *testing.T) {
	for _, damage := range []string{"truncated", "not a saved state"} {
		t.Run(damage, func(t *testing.T) {
			h, p := newCloneHarness(t)
			switch damage {
			case "truncated":
				if err := os.Truncate(p.ref.StatePath, 10); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.WriteFile(p.ref.StatePath, make([]byte, p.ref.StateBytes), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			op, err := h.svc.Create(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12", Clone: api.CloneAlways})
			if err != nil {
				t.Fatal(err)
			}
			done, evs := h.wait(t, op)
			vm, _ := h.svc.Get(context.Background(), "web")
			if done.Status != api.OpSucceeded || vm.Made != api.MadeColdBoot || vm.Parent != "" {
				t.Fatalf("op %+v, vm %+v", done, vm)
			}
			var reason string
			for _, e := range evs {
				if e.Stage == StageCloneFallback {
					reason = e.Message
				}
			}
			if !strings.Contains(reason, "saved state unusable") {
				t.Fatalf("fallback reason = %q; stages %v", reason, stages(evs))
			}
			if got := strings.Join(stages(evs), " "); !strings.HasSuffix(got, "disk seed define boot booting agent init-local init modules-config modules-final ready address") {
				t.Fatalf("stages after the fallback = %q", got)
			}
		})
	}
}

// TestCloneHookFailureKeepsVM: a failing per-clone hook fails the create,
// keeps the VM for inspection and does not boot another.
func TestCloneHookFailureKeepsVM(t *testing.T) {
	h, _ := newCloneHarness(t)
	h.drv.SetAgentExec(func(ctx context.Context, name string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error) {
		if req.Path == "/bin/sh" && len(req.Args) == 1 && req.Args[0] == "-s" {
			return hypervisor.ExecResult{ExitCode: guestid.HookFailedExit, Stderr: []byte("per-clone hook 10-register failed with status 1")}, nil
		}
		return h.guest.exec(ctx, name, req)
	})
	op, err := h.svc.Create(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12"})
	if err != nil {
		t.Fatal(err)
	}
	done, _ := h.wait(t, op)
	vm, _ := h.svc.Get(context.Background(), "web")
	if done.Status != api.OpFailed || !strings.Contains(done.Error, "10-register") || vm.State != api.StateFailed || vm.Made != api.MadeClone {
		t.Fatalf("op %+v, vm %+v", done, vm)
	}
	if _, err := h.drv.Get(context.Background(), "web"); err != nil {
		t.Fatalf("the failed clone was not kept: %v", err)
	}
}

func TestCreateRefusesReservedNamesAndCloneModes(t *testing.T) {
	h, _ := newCloneHarness(t)
	for _, req := range []api.CreateVMRequest{
		{Name: "gale-parent-0123456789ab", Image: "debian-12"},
		{Name: "web", Image: "debian-12", Clone: "sometimes"},
	} {
		if _, err := h.svc.Create(context.Background(), req); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%+v) = %v, want ErrInvalid", req, err)
		}
	}
	if _, err := h.drv.Get(context.Background(), "web"); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("a refused create left a domain: %v", err)
	}
}

// TestProvisionReturnsAReadyClone: the fleets' call builds the model's
// parent when there is none, and returns the VM ready, as a clone.
func TestProvisionReturnsAReadyClone(t *testing.T) {
	h, p := newCloneHarness(t)
	vm, err := h.svc.Provision(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if vm.State != api.StateRunning || vm.Made != api.MadeClone || len(vm.Addresses) != 1 || p.ensured != 1 {
		t.Fatalf("vm %+v, parents ensured %d", vm, p.ensured)
	}
	if _, err := h.svc.Provision(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12"}, ""); !errors.Is(err, ErrExists) {
		t.Fatalf("a second Provision of the name = %v, want ErrExists", err)
	}
}

// TestUEFIModelsAreBooted: a UEFI guest is never cloned (its variable store
// is the domain's own); the create says so and boots.
func TestUEFIModelsAreBooted(t *testing.T) {
	h, p := newCloneHarness(t)
	tmpl := h.cfg.Images.(stubImages).tmpl
	tmpl.Firmware = hypervisor.FirmwareUEFI
	h.cfg.Images = stubImages{tmpl}
	h.svc = h.newService(t)
	op, err := h.svc.Create(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12", Clone: api.CloneAlways})
	if err != nil {
		t.Fatal(err)
	}
	done, evs := h.wait(t, op)
	vm, _ := h.svc.Get(context.Background(), "web")
	var reason string
	for _, e := range evs {
		if e.Stage == StageCloneFallback {
			reason = e.Message
		}
	}
	if done.Status != api.OpSucceeded || vm.Made != api.MadeColdBoot || p.ensured != 0 || !strings.Contains(reason, "UEFI") {
		t.Fatalf("op %+v, vm %+v, ensured %d, reason %q", done, vm, p.ensured, reason)
	}
}
