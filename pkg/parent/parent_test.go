package parent

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/fake"
	"github.com/galevm/gale/pkg/vm"
)

// fileDisks makes overlays as small files naming their backing file.
type fileDisks struct{}

func (fileDisks) CreateOverlay(_ context.Context, path, backing, _ string, _ int64) error {
	return os.WriteFile(path, []byte("overlay of "+backing), 0o600)
}
func (fileDisks) Info(context.Context, string, string) (disk.Info, error) { return disk.Info{}, nil }

// readyGuest answers the guest-agent calls of a boot to ready: cloud-init
// done, and every other command succeeds. It counts the boots it saw.
type readyGuest struct {
	mu    sync.Mutex
	drops int
}

func (g *readyGuest) exec(_ context.Context, _ string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	last := ""
	if len(req.Args) > 0 {
		last = req.Args[len(req.Args)-1]
	}
	switch last {
	case "/run/cloud-init/status.json":
		return hypervisor.ExecResult{Stdout: []byte(`{"v1":{"init-local":{"start":1},"init":{"start":2},"modules-config":{"start":3},"modules-final":{"start":4}}}`)}, nil
	case "/run/cloud-init/result.json":
		return hypervisor.ExecResult{Stdout: []byte(`{"v1":{"datasource":"NoCloud","errors":[]}}`)}, nil
	case settleScript:
		g.drops++
	}
	return hypervisor.ExecResult{}, nil
}

type usage map[string][]string

func (u usage) ClonesOf(_ context.Context, name string) ([]string, error) { return u[name], nil }

type env struct {
	m     *Manager
	drv   *fake.Driver
	guest *readyGuest
	req   vm.CreateRequest
	use   usage
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := fake.New()
	_, cidr, _ := net.ParseCIDR("192.168.50.0/24")
	if err := d.CreateNetwork(context.Background(), hypervisor.NetworkSpec{Name: "testnet", Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
		t.Fatal(err)
	}
	g := &readyGuest{}
	d.SetAgentExec(g.exec)
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "debian-12.qcow2")
	if err := os.WriteFile(tmpl, []byte("template"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := usage{}
	m := &Manager{Engine: &vm.Engine{Driver: d, Disks: fileDisks{}, Dir: filepath.Join(dir, "parents")}, Usage: u}
	req := vm.CreateRequest{
		Name: "web", Template: vm.Template{Name: "debian-12", Path: tmpl, Format: disk.FormatQCOW2},
		MemoryMiB: 512, Network: "testnet", UserData: []byte("#cloud-config\n{}\n"),
	}
	return &env{m: m, drv: d, guest: g, req: req, use: u}
}

func TestKeyNamesTheModel(t *testing.T) {
	e := newEnv(t)
	base := Key(withDefaults(e.req))
	same := e.req
	same.Name = "other-name"
	if Key(withDefaults(same)) != base {
		t.Error("the VM's name changed the model key")
	}
	for what, edit := range map[string]func(*vm.CreateRequest){
		"memory":    func(r *vm.CreateRequest) { r.MemoryMiB = 1024 },
		"user-data": func(r *vm.CreateRequest) { r.UserData = []byte("#cloud-config\npackages: [jq]\n") },
		"image":     func(r *vm.CreateRequest) { r.Template.Path = "/var/lib/gale/images/debian-12-new.qcow2" },
		"network":   func(r *vm.CreateRequest) { r.Network = "lab" },
		"keys":      func(r *vm.CreateRequest) { r.SSHKeys = []string{"ssh-ed25519 AAAA x"} },
		"disk":      func(r *vm.CreateRequest) { r.DiskBytes = 8 << 30 },
	} {
		r := e.req
		edit(&r)
		if Key(withDefaults(r)) == base {
			t.Errorf("a change of %s kept the model key", what)
		}
	}
}

func TestEnsureBuildsOnceAndSaves(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, ok, err := e.m.Lookup(ctx, e.req); ok || err != nil {
		t.Fatalf("Lookup before a build = %v, %v", ok, err)
	}
	var wg sync.WaitGroup
	refs := make([]vm.ParentRef, 3)
	errs := make([]error, 3)
	for i := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refs[i], errs[i] = e.m.Ensure(ctx, e.req, nil)
		}()
	}
	wg.Wait()
	for i := range refs {
		if errs[i] != nil || refs[i] != refs[0] {
			t.Fatalf("Ensure %d = %+v, %v; first %+v", i, refs[i], errs[i], refs[0])
		}
	}
	if e.guest.drops != 1 {
		t.Fatalf("%d parents booted for one model, want 1", e.guest.drops)
	}
	ref := refs[0]
	if _, err := e.drv.Get(ctx, ref.Name); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("the parent's domain is still defined after the save: %v", err)
	}
	st, err := os.Stat(ref.DiskPath)
	if err != nil || st.Mode().Perm() != 0o444 {
		t.Errorf("parent disk: %v, mode %v; want frozen 0444", err, st.Mode())
	}
	if fi, err := os.Stat(ref.StatePath); err != nil || fi.Size() != ref.StateBytes || ref.MAC == "" || ref.InstanceID == "" {
		t.Errorf("state %v, ref %+v", err, ref)
	}
	got, ok, err := e.m.Lookup(ctx, e.req)
	if !ok || err != nil || got != ref {
		t.Errorf("Lookup after the build = %+v, %v, %v", got, ok, err)
	}
	list, err := e.m.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != ref.Name || list[0].MemoryMiB != 512 {
		t.Errorf("List = %+v, %v", list, err)
	}
}

func TestFailedBuildLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.drv.FailNext("Save", errors.New("non-migratable device"))
	if _, err := e.m.Ensure(context.Background(), e.req, nil); err == nil {
		t.Fatal("Ensure succeeded with a failing save")
	}
	ents, _ := os.ReadDir(e.m.Engine.Dir)
	doms, _ := e.drv.List(context.Background())
	if len(ents) != 0 || len(doms) != 0 {
		t.Fatalf("left after a failed build: dirs %v, domains %v", ents, doms)
	}
}

func TestRemoveRefusesWhileClonesExist(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ref, err := e.m.Ensure(ctx, e.req, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.use[ref.Name] = []string{"web-1"}
	if err := e.m.Remove(ctx, ref.Name); !errors.Is(err, ErrInUse) {
		t.Fatalf("Remove with a clone = %v, want ErrInUse", err)
	}
	if _, err := os.Stat(ref.StatePath); err != nil {
		t.Fatalf("a refused Remove harmed the parent: %v", err)
	}
	delete(e.use, ref.Name)
	if err := e.m.Remove(ctx, ref.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(ref.StatePath)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("parent files left: %v", err)
	}
	for _, bad := range []string{"../x", "web", "gale-parent-nope"} {
		if err := e.m.Remove(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q) = %v, want ErrNotFound", bad, err)
		}
	}
}

func TestCleanRemovesUnfinishedBuilds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ref, err := e.m.Ensure(ctx, e.req, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An interrupted build: a running parent domain and its directory, no record.
	other := e.req
	other.MemoryMiB = 768
	other.Name = NameOf(Key(withDefaults(other)))
	if _, err := e.m.Engine.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	// A directory without a domain or record.
	if err := os.MkdirAll(filepath.Join(e.m.Engine.Dir, NamePrefix+"deadbeef0000"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Clean(ctx); err != nil {
		t.Fatal(err)
	}
	doms, _ := e.drv.List(ctx)
	ents, _ := os.ReadDir(e.m.Engine.Dir)
	if len(doms) != 0 || len(ents) != 1 || ents[0].Name() != ref.Name {
		t.Fatalf("after Clean: domains %v, dirs %v; want only the built parent's directory", doms, ents)
	}
	if _, ok, _ := e.m.Lookup(ctx, e.req); !ok {
		t.Fatal("Clean removed a built parent")
	}
}

// TestPruneRemovesParentsOfRebuiltImages: when an image is rebuilt (a new
// file for the same name), the parent of the old file goes once it has no
// clones, even while the old file is still there.
func TestPruneRemovesParentsOfRebuiltImages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old, err := e.m.Ensure(ctx, e.req, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := e.req // another model of the same image file: kept
	other.MemoryMiB = 768
	if _, err := e.m.Ensure(ctx, other, nil); err != nil {
		t.Fatal(err)
	}
	e.use[old.Name] = []string{"web-1"}
	rebuilt := e.req
	rebuilt.Template.Path = filepath.Join(filepath.Dir(e.req.Template.Path), "debian-12-v2.qcow2")
	if err := os.WriteFile(rebuilt.Template.Path, []byte("template v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.m.Ensure(ctx, rebuilt, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The other model's parent is of the old file too: superseded as well.
	list, _ := e.m.List(ctx)
	if len(list) != 2 {
		t.Fatalf("after the rebuild: %+v; want the parent with a clone and the new one", list)
	}
	delete(e.use, old.Name)
	removed, err := e.m.Prune(ctx, DefaultKeep)
	if err != nil || len(removed) != 1 || removed[0] != old.Name {
		t.Fatalf("Prune = %v, %v; want %s removed", removed, err, old.Name)
	}
	if _, ok, _ := e.m.Lookup(ctx, rebuilt); !ok || fresh.Name == old.Name {
		t.Fatal("the new image's parent was pruned")
	}
}

func TestPruneRemovesParentsOfGoneImages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old, err := e.m.Ensure(ctx, e.req, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The image is rebuilt: a new file, a new model, a new parent.
	newer := e.req
	newer.Template.Path = filepath.Join(filepath.Dir(e.req.Template.Path), "debian-12-v2.qcow2")
	if err := os.WriteFile(newer.Template.Path, []byte("template v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.req.Template.Path); err != nil {
		t.Fatal(err)
	}
	e.use[old.Name] = []string{"web-1"} // still used: kept
	if _, err := e.m.Ensure(ctx, newer, nil); err != nil {
		t.Fatal(err)
	}
	if list, _ := e.m.List(ctx); len(list) != 2 {
		t.Fatalf("a parent with clones was pruned: %+v", list)
	}
	delete(e.use, old.Name)
	removed, err := e.m.Prune(ctx, DefaultKeep)
	if err != nil || len(removed) != 1 || removed[0] != old.Name {
		t.Fatalf("Prune = %v, %v; want %s removed", removed, err, old.Name)
	}
}
