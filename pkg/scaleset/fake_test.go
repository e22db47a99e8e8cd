package scaleset

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/probe"
	"github.com/galevm/gale/pkg/store"
	"github.com/galevm/gale/pkg/vm"
)

// fakeVMs is an in-memory vm service: Provision makes a running VM with
// the next address at once (or fails for models whose image is "bad"),
// Delete removes it.
type fakeVMs struct {
	mu      sync.Mutex
	vms     map[string]*api.VM
	owners  map[string]string
	next    int
	ops     int
	created []string
	execs   map[string][]string // VM -> commands run
	// provisionDelay makes Provision take this long.
	provisionDelay time.Duration
}

func newFakeVMs() *fakeVMs {
	return &fakeVMs{vms: map[string]*api.VM{}, owners: map[string]string{}, execs: map[string][]string{}}
}

func (f *fakeVMs) Provision(ctx context.Context, req api.CreateVMRequest, owner string) (api.VM, error) {
	if f.provisionDelay > 0 {
		select {
		case <-time.After(f.provisionDelay):
		case <-ctx.Done():
			return api.VM{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vms[req.Name]; ok {
		return api.VM{}, fmt.Errorf("%w: %q", vm.ErrExists, req.Name)
	}
	if req.Image == "bad" {
		return api.VM{}, fmt.Errorf("%w: cloud-init failed", vm.ErrProvision)
	}
	f.next++
	v := &api.VM{Name: req.Name, State: api.StateRunning, Image: req.Image, Addresses: []string{fmt.Sprintf("10.0.0.%d", f.next)},
		Set: vm.SetOf(owner), Made: api.MadeClone, CreatedAt: time.Now()}
	f.vms[req.Name] = v
	f.owners[req.Name] = owner
	f.created = append(f.created, req.Name)
	return *v, nil
}

func (f *fakeVMs) Delete(ctx context.Context, name string, opts vm.DeleteOptions) (api.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vms[name]; !ok {
		return api.Operation{}, fmt.Errorf("%w: %q", vm.ErrNotFound, name)
	}
	if f.owners[name] != opts.Owner {
		return api.Operation{}, fmt.Errorf("%w: %q", vm.ErrOwned, name)
	}
	delete(f.vms, name)
	f.ops++
	return api.Operation{ID: fmt.Sprint(f.ops), Kind: "delete", Status: api.OpSucceeded}, nil
}

func (f *fakeVMs) Restart(ctx context.Context, name string, opts api.StopVMRequest) (api.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vms[name]
	if !ok {
		return api.Operation{}, fmt.Errorf("%w: %q", vm.ErrNotFound, name)
	}
	v.State = api.StateRunning
	f.ops++
	return api.Operation{ID: fmt.Sprint(f.ops), Kind: "restart", Status: api.OpSucceeded}, nil
}

func (f *fakeVMs) FollowOperation(ctx context.Context, id string, fn func(api.Event) error) error {
	return fn(api.Event{Operation: id, Done: true, Status: api.OpSucceeded})
}

func (f *fakeVMs) Operation(ctx context.Context, id string) (api.Operation, error) {
	return api.Operation{ID: id, Status: api.OpSucceeded}, nil
}

func (f *fakeVMs) List(ctx context.Context) ([]api.VM, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]api.VM, 0, len(f.vms))
	for _, v := range f.vms {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b api.VM) int { return compareStrings(a.Name, b.Name) })
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (f *fakeVMs) Exec(ctx context.Context, name string, req api.ExecRequest) (api.ExecResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs[name] = append(f.execs[name], req.Command[len(req.Command)-1])
	return api.ExecResponse{}, nil
}

func (f *fakeVMs) ModelDefaults(req api.CreateVMRequest) (api.CreateVMRequest, error) {
	if req.Image == "" {
		return req, fmt.Errorf("%w: an image is required", vm.ErrInvalid)
	}
	if req.CPUs == 0 {
		req.CPUs = 1
	}
	if req.MemoryMiB == 0 {
		req.MemoryMiB = 1024
	}
	if req.Network == "" {
		req.Network = "testnet"
	}
	return req, nil
}

func (f *fakeVMs) ValidateModel(ctx context.Context, req api.CreateVMRequest) error {
	if req.Image == "unknown" {
		return fmt.Errorf("%w: image %q not found", vm.ErrInvalid, req.Image)
	}
	return nil
}

func (f *fakeVMs) PrepareModel(ctx context.Context, req api.CreateVMRequest, progress func(string)) error {
	if req.Image == "bad" {
		return fmt.Errorf("%w: cloud-init failed in the parent", vm.ErrProvision)
	}
	return f.ValidateModel(ctx, req)
}

func (f *fakeVMs) createdCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.created)
}

// setState changes a VM's state as a libvirt event would.
func (f *fakeVMs) setState(name, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.vms[name]; ok {
		v.State = state
	}
}

func (f *fakeVMs) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.vms, name)
}

func (f *fakeVMs) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.vms {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// fakeLB records the last map of each set.
type fakeLB struct {
	mu   sync.Mutex
	maps map[string][]string
	open map[string]int // address -> open connections
}

func (b *fakeLB) Apply(ctx context.Context, set, network string, rules []api.LBRule, bs []Backend) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.maps == nil {
		b.maps = map[string][]string{}
	}
	names := []string{}
	for _, x := range bs {
		names = append(names, x.Name)
	}
	slices.Sort(names)
	b.maps[set] = names
	return nil
}

func (b *fakeLB) Delete(set string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.maps, set)
	return nil
}

func (b *fakeLB) Sets() ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for s := range b.maps {
		out = append(out, s)
	}
	return out, nil
}

// Connections reports the open connections set with setOpen.
func (b *fakeLB) Connections(addr netip.Addr, port int) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open[addr.String()], nil
}

// ConnectionsByBackend reports the open connections set with setOpen.
func (b *fakeLB) ConnectionsByBackend(port int) (map[netip.Addr]int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[netip.Addr]int{}
	for a, n := range b.open {
		out[netip.MustParseAddr(a)] = n
	}
	return out, nil
}

func (b *fakeLB) setOpen(addr string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open == nil {
		b.open = map[string]int{}
	}
	b.open[addr] = n
}

func (b *fakeLB) backends(set string) ([]string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.maps[set]
	return slices.Clone(m), ok
}

type fakeNets struct{}

func (fakeNets) HostAddress(context.Context, string) (netip.Addr, error) {
	return netip.MustParseAddr("127.0.0.1"), nil
}

// env is a Service over a fresh store with fakes.
type env struct {
	svc   *Service
	vms   *fakeVMs
	lb    *fakeLB
	store *store.Store
	// failing are instance addresses whose probe fails.
	mu      sync.Mutex
	failing map[string]bool
	cfg     Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{vms: newFakeVMs(), lb: &fakeLB{}, store: st, failing: map[string]bool{}}
	e.cfg = Config{Store: st, VMs: e.vms, Balancer: e.lb, Networks: fakeNets{}, Interval: 20 * time.Millisecond,
		HealthyTimeout: 2 * time.Second, Checker: e.check, Log: quiet()}
	e.start(t)
	return e
}

// start starts a Service over e's store, as a (re)started galed would.
func (e *env) start(t *testing.T) {
	t.Helper()
	svc, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	t.Cleanup(svc.Close)
}

func (e *env) check(ctx context.Context, _ probe.Spec, addr netip.Addr) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failing[addr.String()] {
		return fmt.Errorf("connection refused")
	}
	return nil
}

func (e *env) fail(addr string, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failing[addr] = on
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 5*time.Second, what, cond)
}

// eventuallyWithin polls cond until it holds or limit passes.
func eventuallyWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// quiet is a logger for tests: warnings and errors only.
func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetLevel(logrus.WarnLevel)
	return l
}
