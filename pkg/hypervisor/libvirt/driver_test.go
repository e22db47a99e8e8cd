package libvirt

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/hypervisor"
)

// newTestDriver connects to a private instance of libvirt's test driver: a
// test:///PATH URI whose node file is empty starts with no domains and no
// networks, and no other test shares it.
func newTestDriver(t testing.TB) *Driver {
	t.Helper()
	node := filepath.Join(t.TempDir(), "node.xml")
	if err := os.WriteFile(node, []byte("<node/>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	d, err := New("test://"+node, Options{Accel: hypervisor.AccelTCG, Log: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func testSpec(name string) hypervisor.DomainSpec {
	return hypervisor.DomainSpec{
		Name: name, VCPUs: 1, MemoryMiB: 256,
		Disks:      []hypervisor.Disk{{Path: "/var/lib/gale/" + name + ".qcow2", Format: "qcow2", Target: "vda"}},
		NICs:       []hypervisor.NIC{{Network: "gale-test"}},
		GuestAgent: true,
		Metadata:   hypervisor.Metadata{ID: "id-" + name, Image: "debian-12", CreatedAt: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewAccel(t *testing.T) {
	pvm := func() hypervisor.HostProbe {
		return hypervisor.HostProbe{DevKVM: true, Modules: map[string]bool{"kvm_pvm": true}}
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	d, err := New("test:///default", Options{Log: log, probe: pvm})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Accel() != hypervisor.AccelTCG {
		t.Errorf("auto on a PVM host = %q, want tcg", d.Accel())
	}
	if _, err := New("test:///default", Options{Accel: hypervisor.AccelKVM, Log: log, probe: pvm}); !errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Errorf("explicit kvm on a PVM host: err = %v, want ErrInvalidSpec", err)
	}
	if _, err := New("nosuchdriver:///system", Options{Accel: hypervisor.AccelTCG, Log: log}); !errors.Is(err, hypervisor.ErrUnavailable) {
		t.Errorf("bad URI: err = %v, want ErrUnavailable", err)
	}
}

func TestDomainLifecycle(t *testing.T) {
	d := newTestDriver(t)
	ctx := ctxT(t)
	spec := testSpec("web-1")

	if err := d.Define(ctx, spec); err != nil {
		t.Fatalf("Define: %v", err)
	}
	if err := d.Define(ctx, spec); !errors.Is(err, hypervisor.ErrExists) {
		t.Fatalf("second Define: err = %v, want ErrExists", err)
	}

	got, err := d.Get(ctx, "web-1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.State != hypervisor.StateShutoff || got.VCPUs != 1 || got.MemoryMiB != 256 || got.UUID == "" {
		t.Errorf("Get = %+v", got)
	}
	if got.Metadata == nil || *got.Metadata != spec.Metadata {
		t.Errorf("metadata = %+v, want %+v", got.Metadata, spec.Metadata)
	}
	if len(got.MACs) != 1 || got.MACs[0][:9] != "52:54:00:" {
		t.Errorf("MACs = %v, want one generated 52:54:00 address", got.MACs)
	}

	steps := []struct {
		name string
		do   func() error
		want hypervisor.DomainState
	}{
		{"start", func() error { return d.Start(ctx, "web-1") }, hypervisor.StateRunning},
		{"start again", func() error { return d.Start(ctx, "web-1") }, hypervisor.StateRunning},
		{"shutdown", func() error { return d.Shutdown(ctx, "web-1", 5*time.Second) }, hypervisor.StateShutoff},
		{"shutdown stopped", func() error { return d.Shutdown(ctx, "web-1", time.Second) }, hypervisor.StateShutoff},
		{"start after shutdown", func() error { return d.Start(ctx, "web-1") }, hypervisor.StateRunning},
		{"destroy", func() error { return d.Destroy(ctx, "web-1") }, hypervisor.StateShutoff},
		{"destroy stopped", func() error { return d.Destroy(ctx, "web-1") }, hypervisor.StateShutoff},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := d.Get(ctx, "web-1")
		if err != nil {
			t.Fatalf("%s: Get: %v", st.name, err)
		}
		if got.State != st.want {
			t.Fatalf("%s: state = %q, want %q", st.name, got.State, st.want)
		}
	}

	if err := d.Start(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Undefine(ctx, "web-1"); !errors.Is(err, hypervisor.ErrDomainRunning) {
		t.Fatalf("Undefine running: err = %v, want hypervisor.ErrDomainRunning", err)
	}
	if err := d.Destroy(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Undefine(ctx, "web-1"); err != nil {
		t.Fatalf("Undefine: %v", err)
	}
	if _, err := d.Get(ctx, "web-1"); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Fatalf("Get after Undefine: err = %v, want ErrNotFound", err)
	}
}

func TestNotFound(t *testing.T) {
	d := newTestDriver(t)
	ctx := ctxT(t)
	calls := map[string]func() error{
		"Start":     func() error { return d.Start(ctx, "nope") },
		"Shutdown":  func() error { return d.Shutdown(ctx, "nope", time.Second) },
		"Destroy":   func() error { return d.Destroy(ctx, "nope") },
		"Undefine":  func() error { return d.Undefine(ctx, "nope") },
		"Get":       func() error { _, err := d.Get(ctx, "nope"); return err },
		"AgentPing": func() error { return d.AgentPing(ctx, "nope") },
		"AgentExec": func() error {
			_, err := d.AgentExec(ctx, "nope", hypervisor.ExecRequest{Path: "/bin/true"})
			return err
		},
		"Addresses":     func() error { _, err := d.Addresses(ctx, "nope"); return err },
		"GetNetwork":    func() error { _, err := d.GetNetwork(ctx, "nope"); return err },
		"DeleteNetwork": func() error { return d.DeleteNetwork(ctx, "nope") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, hypervisor.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if !errors.Is(err, lv.ERR_NO_DOMAIN) && !errors.Is(err, lv.ERR_NO_NETWORK) {
				t.Errorf("libvirt error not kept in the chain: %v", err)
			}
		})
	}
}

func TestDefineInvalid(t *testing.T) {
	d := newTestDriver(t)
	ctx := ctxT(t)
	bad := testSpec("Bad_Name")
	if err := d.Define(ctx, bad); !errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Fatalf("err = %v, want ErrInvalidSpec", err)
	}
	list, err := d.List(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("List after a rejected Define = %v, %v; want nothing", list, err)
	}
}

func TestList(t *testing.T) {
	d := newTestDriver(t)
	ctx := ctxT(t)
	for _, n := range []string{"a", "b", "c"} {
		if err := d.Define(ctx, testSpec(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Start(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	// A domain gale did not define: no metadata.
	err := d.with(ctx, func(c *lv.Connect) error {
		dom, err := c.DomainDefineXML(`<domain type="qemu"><name>foreign</name><memory unit="MiB">128</memory><vcpu>2</vcpu><os><type arch="x86_64">hvm</type></os></domain>`)
		if err != nil {
			return err
		}
		return dom.Free()
	})
	if err != nil {
		t.Fatal(err)
	}

	list, err := d.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	byName := map[string]hypervisor.Domain{}
	for _, dom := range list {
		byName[dom.Name] = dom
	}
	if len(byName) != 4 {
		t.Fatalf("List returned %d domains: %+v", len(list), list)
	}
	if byName["b"].State != hypervisor.StateRunning || byName["a"].State != hypervisor.StateShutoff {
		t.Errorf("states: a=%q b=%q", byName["a"].State, byName["b"].State)
	}
	if m := byName["c"].Metadata; m == nil || m.ID != "id-c" {
		t.Errorf("c metadata = %+v", m)
	}
	if f := byName["foreign"]; f.Metadata != nil || f.VCPUs != 2 || f.MemoryMiB != 128 {
		t.Errorf("foreign = %+v, want no metadata, 2 vcpus, 128 MiB", f)
	}

	states, err := d.States(ctx)
	if err != nil {
		t.Fatalf("States: %v", err)
	}
	for _, dom := range list {
		if states[dom.Name] != dom.State {
			t.Errorf("States()[%s] = %q, List says %q", dom.Name, states[dom.Name], dom.State)
		}
	}
	if len(states) != len(list) {
		t.Errorf("States has %d domains, List %d", len(states), len(list))
	}
}

func TestEvents(t *testing.T) {
	d := newTestDriver(t)
	ctx := ctxT(t)
	subCtx, cancel := context.WithCancel(ctx)
	events, err := d.Events(subCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Define(ctx, testSpec("ev")); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "ev"); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx, "ev"); err != nil {
		t.Fatal(err)
	}
	want := []hypervisor.EventKind{hypervisor.EventDefined, hypervisor.EventStarted, hypervisor.EventStopped}
	for _, k := range want {
		ev := nextEvent(t, events)
		if ev.Domain != "ev" || ev.Kind != k {
			t.Fatalf("event = %+v, want %s of ev", ev, k)
		}
	}

	// Simulate libvirtd going away: the session is dropped as the close
	// callback would, and the reconnect loop opens a new one by itself.
	oldGen := d.generation()
	d.drop(oldGen, "test: simulated libvirtd restart")
	deadline := time.Now().Add(10 * time.Second)
	for d.generation() <= oldGen {
		if time.Now().After(deadline) {
			t.Fatal("the reconnect loop did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The same subscription receives events from the new connection.
	// (A private test:// instance starts empty again on a new connection.)
	if err := d.Define(ctx, testSpec("after")); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Domain != "after" || ev.Kind != hypervisor.EventDefined {
		t.Fatalf("event after reconnect = %+v", ev)
	}

	cancel()
	select {
	case _, ok := <-events:
		for ok {
			_, ok = <-events
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after ctx ended")
	}
}

func nextEvent(t *testing.T, ch <-chan hypervisor.Event) hypervisor.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return hypervisor.Event{}
}

func TestReconnectOnCall(t *testing.T) {
	d := newTestDriver(t)
	ctx := ctxT(t)
	// Stop the background loop from winning the race; the call reconnects.
	d.mu.Lock()
	s := d.sess
	d.sess = nil
	d.mu.Unlock()
	_ = s.retire(d.log, true)
	if _, err := d.List(ctx); err != nil {
		t.Fatalf("List after a lost connection: %v", err)
	}
	if d.generation() <= s.gen {
		t.Fatalf("generation %d, want > %d", d.generation(), s.gen)
	}
}

func TestClosed(t *testing.T) {
	d := newTestDriver(t)
	events, err := d.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-events; ok {
		t.Error("event channel open after Close")
	}
	if _, err := d.List(context.Background()); !errors.Is(err, hypervisor.ErrUnavailable) {
		t.Errorf("List after Close: err = %v, want ErrUnavailable", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestAgentOnTestDriver(t *testing.T) {
	d := newTestDriver(t)
	ctx := ctxT(t)
	// The test driver reports agent addresses only for interfaces on a
	// network it knows.
	_, cidr, _ := net.ParseCIDR("192.168.122.0/24")
	if err := d.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: "gale-test", Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
		t.Fatal(err)
	}
	if err := d.Define(ctx, testSpec("ag")); err != nil {
		t.Fatal(err)
	}
	// The test driver has no QEMU agent passthrough: the call must fail
	// with a wrapped error, not succeed or hang.
	if err := d.AgentPing(ctx, "ag"); err == nil {
		t.Fatal("AgentPing on the test driver succeeded")
	}
	// Addresses of a stopped domain: nothing yet, not an error.
	addrs, err := d.Addresses(ctx, "ag")
	if err != nil || addrs == nil || len(addrs) != 0 {
		t.Fatalf("Addresses of stopped domain = %v, %v; want empty, nil", addrs, err)
	}
	// The test driver fabricates agent addresses for running domains; it
	// has no DHCP leases (GetDHCPLeases is unsupported there).
	if err := d.Start(ctx, "ag"); err != nil {
		t.Fatal(err)
	}
	addrs, err = d.Addresses(ctx, "ag")
	if err != nil {
		t.Fatalf("Addresses: %v", err)
	}
	dom, _ := d.Get(ctx, "ag")
	if len(addrs) == 0 {
		t.Fatal("no agent addresses from the test driver")
	}
	for _, a := range addrs {
		if a.Source != hypervisor.SourceAgent || a.MAC != dom.MACs[0] || a.IP.IsLoopback() {
			t.Errorf("address %+v, want an agent address of %s", a, dom.MACs[0])
		}
	}
}

func TestNetworks(t *testing.T) {
	d := newTestDriver(t)
	ctx := ctxT(t)
	_, cidr, _ := net.ParseCIDR("192.168.150.0/24")
	cidr.IP = net.ParseIP("192.168.150.1").To4()
	specs := []hypervisor.NetworkSpec{
		{Name: "iso", Mode: hypervisor.NetworkIsolated, CIDR: cidr},
		{Name: "nat", Mode: hypervisor.NetworkNAT, Bridge: "galebr0", CIDR: &net.IPNet{IP: net.ParseIP("10.9.0.1").To4(), Mask: net.CIDRMask(16, 32)}},
	}
	for _, s := range specs {
		if err := d.CreateNetwork(ctx, s); err != nil {
			t.Fatalf("CreateNetwork %s: %v", s.Name, err)
		}
	}
	if err := d.CreateNetwork(ctx, specs[0]); !errors.Is(err, hypervisor.ErrExists) {
		t.Fatalf("second CreateNetwork: err = %v, want ErrExists", err)
	}
	if err := d.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: "x", Mode: "bridge"}); !errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Fatalf("invalid CreateNetwork: err = %v, want ErrInvalidSpec", err)
	}

	iso, err := d.GetNetwork(ctx, "iso")
	if err != nil {
		t.Fatal(err)
	}
	want := hypervisor.Network{Name: "iso", Mode: hypervisor.NetworkIsolated, Bridge: bridgeName(specs[0]), CIDR: "192.168.150.1/24", Active: true}
	if iso != want {
		t.Errorf("GetNetwork(iso) = %+v, want %+v", iso, want)
	}
	list, err := d.ListNetworks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("ListNetworks = %+v", list)
	}
	for _, n := range list {
		if n.Name == "nat" && (n.Mode != hypervisor.NetworkNAT || n.Bridge != "galebr0" || n.CIDR != "10.9.0.1/16" || !n.Active) {
			t.Errorf("nat = %+v", n)
		}
	}
	// A network libvirtd left defined but inactive is started again.
	if err := d.with(ctx, func(c *lv.Connect) error {
		n, err := c.LookupNetworkByName("iso")
		if err != nil {
			return err
		}
		defer func() { _ = n.Free() }()
		return n.Destroy()
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.GetNetwork(ctx, "iso"); n.Active {
		t.Fatal("iso still active after destroy")
	}
	for i := 0; i < 2; i++ { // the second call finds it active
		if err := d.StartNetwork(ctx, "iso"); err != nil {
			t.Fatalf("StartNetwork #%d: %v", i+1, err)
		}
	}
	if n, _ := d.GetNetwork(ctx, "iso"); !n.Active {
		t.Fatal("iso inactive after StartNetwork")
	}
	if err := d.StartNetwork(ctx, "nope"); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Fatalf("StartNetwork(nope) = %v, want ErrNotFound", err)
	}
	for _, s := range specs {
		if err := d.DeleteNetwork(ctx, s.Name); err != nil {
			t.Fatalf("DeleteNetwork %s: %v", s.Name, err)
		}
	}
	if list, _ := d.ListNetworks(ctx); len(list) != 0 {
		t.Fatalf("networks left: %+v", list)
	}
}

func TestCtxDone(t *testing.T) {
	d := newTestDriver(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.List(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
