package vm

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/fake"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/store"
)

type stubImages struct{ tmpl Template }

func (s stubImages) Resolve(name string) (ResolvedImage, error) {
	if name != "debian-12" {
		return ResolvedImage{}, errors.New("unknown image: " + ErrInvalid.Error())
	}
	return ResolvedImage{Template: s.tmpl, CPUs: 1, MemoryMiB: 512, DiskBytes: 1 << 30}, nil
}

func testKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

type stubHost struct{ mem, disk int64 }

func (h stubHost) MemAvailableBytes() (int64, error) { return h.mem, nil }
func (h stubHost) FreeDiskBytes() (int64, error)     { return h.disk, nil }

// guest scripts the fake guest agent: cloud-init status and result files.
type guest struct {
	mu     sync.Mutex
	result string // result.json content; "" = not done yet
	tail   string
	execs  []hypervisor.ExecRequest
}

func (g *guest) exec(_ context.Context, _ string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.execs = append(g.execs, req)
	arg := ""
	if len(req.Args) > 0 {
		arg = req.Args[len(req.Args)-1]
	}
	switch {
	case req.Path == "/bin/cat" && arg == statusJSONPath:
		return hypervisor.ExecResult{Stdout: []byte(`{"v1":{"init-local":{"start":1},"init":{"start":2},"modules-config":{"start":3},"modules-final":{"start":4}}}`)}, nil
	case req.Path == "/bin/cat" && arg == resultJSONPath:
		if g.result == "" {
			return hypervisor.ExecResult{ExitCode: 1, Stderr: []byte("No such file")}, nil
		}
		return hypervisor.ExecResult{Stdout: []byte(g.result)}, nil
	case req.Path == "/usr/bin/tail", req.Path == "/bin/cat" && arg == outputLogPath:
		return hypervisor.ExecResult{Stdout: []byte(g.tail)}, nil
	}
	return hypervisor.ExecResult{Stdout: []byte("ran " + req.Path)}, nil
}

type harness struct {
	svc   *Service
	drv   *fake.Driver
	store *store.Store
	eng   *Engine
	guest *guest
	cfg   ServiceConfig
}

const okResult = `{"v1":{"datasource":"NoCloud","errors":[]}}`

func newHarness(t *testing.T) *harness {
	t.Helper()
	readyPollInterval = 10 * time.Millisecond
	e, d, tmpl := newTestEngine(t)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &guest{result: okResult, tail: "cloud-init output tail"}
	d.SetAgentExec(g.exec)
	d.SetAddresses("web", []hypervisor.Address{{IP: net.ParseIP("192.168.50.10"), Source: hypervisor.SourceLease}})
	h := &harness{drv: d, store: st, eng: e, guest: g}
	h.cfg = ServiceConfig{
		Engine: e, Store: st, Ops: operation.New(0, nil), Images: stubImages{tmpl},
		Host: stubHost{mem: 4 << 30, disk: 100 << 30}, DefaultNetwork: "testnet",
		SSHKeys:      []string{testKey(t)},
		StallTimeout: 5 * time.Second, AddressTimeout: 200 * time.Millisecond,
	}
	h.svc = h.newService(t)
	return h
}

// newService returns a fresh Service over the same store, driver and disks,
// as a restarted galed would have.
func (h *harness) newService(t *testing.T) *Service {
	t.Helper()
	cfg := h.cfg
	cfg.Ops = operation.New(0, nil)
	s, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func (h *harness) wait(t *testing.T, op api.Operation) (api.Operation, []api.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var evs []api.Event
	if err := h.svc.FollowOperation(ctx, op.ID, func(ev api.Event) error { evs = append(evs, ev); return nil }); err != nil {
		t.Fatalf("follow %s: %v", op.ID, err)
	}
	got, err := h.svc.Operation(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got, evs
}

func stages(evs []api.Event) []string {
	var out []string
	for _, e := range evs {
		if !e.Done {
			out = append(out, e.Stage)
		}
	}
	return out
}

func TestCreateReachesReady(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	op, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "web", Image: "debian-12", SSHKeys: []string{testKey(t)}})
	if err != nil {
		t.Fatal(err)
	}
	done, evs := h.wait(t, op)
	if done.Status != api.OpSucceeded {
		t.Fatalf("op = %+v", done)
	}
	want := "disk seed define boot booting agent init-local init modules-config modules-final ready address"
	if got := strings.Join(stages(evs), " "); got != want {
		t.Fatalf("stages = %q, want %q", got, want)
	}
	vm, err := h.svc.Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if vm.State != api.StateRunning || vm.CloudInit != api.CloudInitDone || len(vm.Addresses) != 1 || vm.MemoryMiB != 512 || vm.ID == "" || vm.Network != "testnet" {
		t.Fatalf("vm = %+v", vm)
	}
	list, err := h.svc.List(ctx)
	if err != nil || len(list) != 1 || list[0].Addresses[0] != "192.168.50.10" {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func TestCreateRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.guest.result = "" // keep "busy" in progress
	busy, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "busy", Image: "debian-12"})
	if err != nil {
		t.Fatal(err)
	}
	_ = busy
	tests := []struct {
		name string
		req  api.CreateVMRequest
		want error
	}{
		{"bad name", api.CreateVMRequest{Name: "Bad_Name", Image: "debian-12"}, ErrInvalid},
		{"no image", api.CreateVMRequest{Name: "a"}, ErrInvalid},
		{"unknown network", api.CreateVMRequest{Name: "a", Image: "debian-12", Network: "nope"}, ErrInvalid},
		{"too much memory", api.CreateVMRequest{Name: "a", Image: "debian-12", MemoryMiB: 8192}, ErrInsufficient},
		{"too big disk", api.CreateVMRequest{Name: "a", Image: "debian-12", DiskBytes: 1 << 40}, ErrInsufficient},
		{"same name in progress", api.CreateVMRequest{Name: "busy", Image: "debian-12"}, ErrExists},
		{"bad user-data", api.CreateVMRequest{Name: "a", Image: "debian-12", UserData: []byte("#cloud-config\n- a list\n")}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.svc.Create(ctx, tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Create = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("force skips admission", func(t *testing.T) {
		op, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "big", Image: "debian-12", MemoryMiB: 8192, Force: true})
		if err != nil || op.ID == "" {
			t.Fatalf("Create with force = %v", err)
		}
	})
	h.guest.mu.Lock()
	h.guest.result = okResult
	h.guest.mu.Unlock()
}

func TestCreateEngineFailureRemovesRow(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.drv.FailNext("Start", errors.New("qemu died"))
	op, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "web", Image: "debian-12"})
	if err != nil {
		t.Fatal(err)
	}
	done, _ := h.wait(t, op)
	if done.Status != api.OpFailed || !strings.Contains(done.Error, "qemu died") {
		t.Fatalf("op = %+v", done)
	}
	if _, err := h.svc.Get(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after failed create: %v", err)
	}
	if _, err := os.Stat(h.eng.Paths("web").Dir); !os.IsNotExist(err) {
		t.Fatalf("directory left: %v", err)
	}
	op, err = h.svc.Create(ctx, api.CreateVMRequest{Name: "web", Image: "debian-12"})
	if err != nil {
		t.Fatalf("name not reusable: %v", err)
	}
	if done, _ := h.wait(t, op); done.Status != api.OpSucceeded {
		t.Fatalf("retry = %+v", done)
	}
}

func TestCreateCloudInitFailureKeepsVM(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.guest.result = `{"v1":{"errors":["('scripts_user', RuntimeError('Runparts: 1 failures'))"]}}`
	op, err := h.svc.Create(ctx, api.CreateVMRequest{Name: "web", Image: "debian-12"})
	if err != nil {
		t.Fatal(err)
	}
	done, evs := h.wait(t, op)
	last := evs[len(evs)-1]
	if done.Status != api.OpFailed || !strings.Contains(last.Error, "scripts_user") || last.Detail != "cloud-init output tail" {
		t.Fatalf("op = %+v, last event %+v", done, last)
	}
	vm, err := h.svc.Get(ctx, "web")
	if err != nil || vm.State != api.StateFailed || vm.CloudInit != api.CloudInitError || !strings.Contains(vm.Error, "scripts_user") {
		t.Fatalf("vm = %+v, %v", vm, err)
	}
}

func TestCreateStalls(t *testing.T) {
	h := newHarness(t)
	h.cfg.StallTimeout = 200 * time.Millisecond
	h.svc = h.newService(t)
	h.drv.SetAgentPing(func(context.Context, string) error { return hypervisor.ErrAgentUnavailable })
	op, err := h.svc.Create(context.Background(), api.CreateVMRequest{Name: "web", Image: "debian-12"})
	if err != nil {
		t.Fatal(err)
	}
	done, _ := h.wait(t, op)
	if done.Status != api.OpFailed || !strings.Contains(done.Error, "no progress") || !strings.Contains(done.Error, `"booting"`) {
		t.Fatalf("op = %+v", done)
	}
	vm, _ := h.svc.Get(context.Background(), "web")
	if vm.State != api.StateFailed {
		t.Fatalf("state = %s, want failed (kept for inspection)", vm.State)
	}
}

func TestStallContextResetsOnProgress(t *testing.T) {
	ctx, touch, stop := stallContext(context.Background(), 100*time.Millisecond)
	defer stop()
	for i := 0; i < 6; i++ { // 300ms of steady progress: no stall
		time.Sleep(50 * time.Millisecond)
		touch("stage")
		if ctx.Err() != nil {
			t.Fatalf("stalled despite progress after %d steps", i)
		}
	}
	select {
	case <-ctx.Done():
		if !errors.Is(context.Cause(ctx), ErrStalled) {
			t.Fatalf("cause = %v", context.Cause(ctx))
		}
	case <-time.After(time.Second):
		t.Fatal("no stall without progress")
	}
}

func createReady(t *testing.T, h *harness, name string) {
	t.Helper()
	op, err := h.svc.Create(context.Background(), api.CreateVMRequest{Name: name, Image: "debian-12"})
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := h.wait(t, op); done.Status != api.OpSucceeded {
		t.Fatalf("create %s: %+v", name, done)
	}
}

func TestPowerDeleteExecLogs(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	createReady(t, h, "web")
	steps := []struct {
		name  string
		do    func() (api.Operation, error)
		state string
	}{
		{"stop", func() (api.Operation, error) { return h.svc.Stop(ctx, "web", api.StopVMRequest{}) }, api.StateStopped},
		{"start", func() (api.Operation, error) { return h.svc.Start(ctx, "web") }, api.StateRunning},
		{"force stop", func() (api.Operation, error) { return h.svc.Stop(ctx, "web", api.StopVMRequest{Force: true}) }, api.StateStopped},
		{"restart", func() (api.Operation, error) { return h.svc.Restart(ctx, "web", api.StopVMRequest{}) }, api.StateRunning},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			op, err := st.do()
			if err != nil {
				t.Fatal(err)
			}
			if done, _ := h.wait(t, op); done.Status != api.OpSucceeded {
				t.Fatalf("op = %+v", done)
			}
			if vm, _ := h.svc.Get(ctx, "web"); vm.State != st.state {
				t.Fatalf("state = %s, want %s", vm.State, st.state)
			}
		})
	}
	t.Run("exec relative via env", func(t *testing.T) {
		res, err := h.svc.Exec(ctx, "web", api.ExecRequest{Command: []string{"uname", "-a"}})
		if err != nil || string(res.Stdout) != "ran /usr/bin/env" {
			t.Fatalf("Exec = %+v, %v", res, err)
		}
		last := h.guest.execs[len(h.guest.execs)-1]
		if strings.Join(last.Args, " ") != "uname -a" {
			t.Fatalf("args = %v", last.Args)
		}
	})
	t.Run("exec empty", func(t *testing.T) {
		if _, err := h.svc.Exec(ctx, "web", api.ExecRequest{}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Exec = %v", err)
		}
	})
	t.Run("logs", func(t *testing.T) {
		b, err := h.svc.Logs(ctx, "web")
		if err != nil || string(b) != "cloud-init output tail" {
			t.Fatalf("Logs = %q, %v", b, err)
		}
	})
	t.Run("exec stopped", func(t *testing.T) {
		_ = h.drv.Destroy(ctx, "web")
		if _, err := h.svc.Exec(ctx, "web", api.ExecRequest{Command: []string{"true"}}); !errors.Is(err, ErrNotRunning) {
			t.Fatalf("Exec = %v", err)
		}
	})
	t.Run("logs fall back to the serial console", func(t *testing.T) {
		if _, err := h.svc.Logs(ctx, "web"); err == nil {
			t.Fatal("Logs without agent or console log succeeded")
		}
		console := h.svc.cfg.Engine.Paths("web").ConsoleLog
		if err := os.WriteFile(console, []byte("Booting Linux"), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := h.svc.Logs(ctx, "web")
		if err != nil || !strings.HasPrefix(string(b), "# serial console of web") || !strings.HasSuffix(string(b), "Booting Linux") {
			t.Fatalf("Logs = %q, %v", b, err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		op, err := h.svc.Delete(ctx, "web", DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if done, _ := h.wait(t, op); done.Status != api.OpSucceeded {
			t.Fatalf("op = %+v", done)
		}
		if _, err := h.svc.Get(ctx, "web"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get = %v", err)
		}
		if _, err := h.svc.Delete(ctx, "web", DeleteOptions{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second Delete = %v", err)
		}
	})
}
