package fake

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

func spec(name string) hypervisor.DomainSpec {
	return hypervisor.DomainSpec{
		Name: name, VCPUs: 1, MemoryMiB: 256, GuestAgent: true,
		Disks:    []hypervisor.Disk{{Path: "/d/" + name + ".qcow2", Format: "qcow2", Target: "vda"}},
		NICs:     []hypervisor.NIC{{Network: "n"}},
		Metadata: hypervisor.Metadata{ID: "id-" + name},
	}
}

func next(t *testing.T, ch <-chan hypervisor.Event) hypervisor.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(2 * time.Second):
		t.Fatal("no event")
	}
	return hypervisor.Event{}
}

func TestLifecycleAndEvents(t *testing.T) {
	ctx := context.Background()
	d := New()
	evCtx, cancel := context.WithCancel(ctx)
	events, err := d.Events(evCtx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		do    func() error
		state hypervisor.DomainState
		event hypervisor.EventKind // "" for none
	}{
		{"define", func() error { return d.Define(ctx, spec("a")) }, hypervisor.StateShutoff, hypervisor.EventDefined},
		{"start", func() error { return d.Start(ctx, "a") }, hypervisor.StateRunning, hypervisor.EventStarted},
		{"start again", func() error { return d.Start(ctx, "a") }, hypervisor.StateRunning, ""},
		{"shutdown", func() error { return d.Shutdown(ctx, "a", time.Second) }, hypervisor.StateShutoff, hypervisor.EventStopped},
		{"start", func() error { return d.Start(ctx, "a") }, hypervisor.StateRunning, hypervisor.EventStarted},
		{"destroy", func() error { return d.Destroy(ctx, "a") }, hypervisor.StateShutoff, hypervisor.EventStopped},
		{"destroy again", func() error { return d.Destroy(ctx, "a") }, hypervisor.StateShutoff, ""},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := d.Get(ctx, "a")
		if err != nil || got.State != st.state {
			t.Fatalf("%s: state %q, %v; want %q", st.name, got.State, err, st.state)
		}
		if st.event != "" {
			if ev := next(t, events); ev.Kind != st.event || ev.Domain != "a" {
				t.Fatalf("%s: event %+v, want %s", st.name, ev, st.event)
			}
		}
	}
	got, _ := d.Get(ctx, "a")
	if got.Metadata == nil || got.Metadata.ID != "id-a" || len(got.MACs) != 1 || got.UUID == "" {
		t.Fatalf("Get = %+v", got)
	}
	if err := d.Define(ctx, spec("a")); !errors.Is(err, hypervisor.ErrExists) {
		t.Fatalf("redefine: %v", err)
	}
	if err := d.Undefine(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Kind != hypervisor.EventUndefined {
		t.Fatalf("event %+v", ev)
	}
	if _, err := d.Get(ctx, "a"); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Fatalf("Get after undefine: %v", err)
	}
	cancel()
	for range events { // closes once ctx ends
	}
}

func TestValidationAndNotFound(t *testing.T) {
	ctx := context.Background()
	d := New()
	bad := spec("Bad")
	if err := d.Define(ctx, bad); !errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Fatalf("bad spec: %v", err)
	}
	for name, call := range map[string]func() error{
		"Start":    func() error { return d.Start(ctx, "x") },
		"Shutdown": func() error { return d.Shutdown(ctx, "x", 0) },
		"Destroy":  func() error { return d.Destroy(ctx, "x") },
		"Undefine": func() error { return d.Undefine(ctx, "x") },
		"Ping":     func() error { return d.AgentPing(ctx, "x") },
		"Addrs":    func() error { _, err := d.Addresses(ctx, "x"); return err },
		"Net":      func() error { _, err := d.GetNetwork(ctx, "x"); return err },
		"DelNet":   func() error { return d.DeleteNetwork(ctx, "x") },
	} {
		if err := call(); !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
}

func TestFailuresAndDown(t *testing.T) {
	ctx := context.Background()
	d := New()
	boom := errors.New("crash between steps")
	d.FailNext("Define", boom)
	if err := d.Define(ctx, spec("a")); !errors.Is(err, boom) {
		t.Fatalf("injected: %v", err)
	}
	if list, _ := d.List(ctx); len(list) != 0 {
		t.Fatal("a failed Define left a domain")
	}
	if err := d.Define(ctx, spec("a")); err != nil {
		t.Fatalf("second Define: %v", err)
	}
	if err := d.Start(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Undefine(ctx, "a"); !errors.Is(err, hypervisor.ErrDomainRunning) {
		t.Fatalf("undefine running: %v", err)
	}
	d.SetDown(true)
	if _, err := d.List(ctx); !errors.Is(err, hypervisor.ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
	d.SetDown(false)
	want := []string{"Define", "List", "Define", "Start", "Undefine", "List"}
	if got := d.Calls(); len(got) != len(want) {
		t.Fatalf("Calls = %v, want %v", got, want)
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Start(ctxDone, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	_ = d.Close()
	if err := d.Start(ctx, "a"); !errors.Is(err, hypervisor.ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestAgentAndAddresses(t *testing.T) {
	ctx := context.Background()
	d := New()
	if err := d.Define(ctx, spec("a")); err != nil {
		t.Fatal(err)
	}
	if err := d.AgentPing(ctx, "a"); !errors.Is(err, hypervisor.ErrAgentUnavailable) {
		t.Fatalf("ping stopped domain: %v", err)
	}
	_ = d.Start(ctx, "a")
	if err := d.AgentPing(ctx, "a"); err != nil {
		t.Fatalf("default ping: %v", err)
	}
	pings := 0
	d.SetAgentPing(func(context.Context, string) error {
		pings++
		if pings < 3 {
			return hypervisor.ErrAgentUnavailable
		}
		return nil
	})
	for i := 0; i < 2; i++ {
		if err := d.AgentPing(ctx, "a"); !errors.Is(err, hypervisor.ErrAgentUnavailable) {
			t.Fatalf("scripted ping %d: %v", i, err)
		}
	}
	if err := d.AgentPing(ctx, "a"); err != nil {
		t.Fatalf("third ping: %v", err)
	}
	d.SetAgentExec(func(_ context.Context, _ string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error) {
		return hypervisor.ExecResult{ExitCode: 1, Stdout: []byte(req.Path)}, nil
	})
	res, err := d.AgentExec(ctx, "a", hypervisor.ExecRequest{Path: "/bin/false"})
	if err != nil || res.ExitCode != 1 || string(res.Stdout) != "/bin/false" {
		t.Fatalf("exec = %+v, %v", res, err)
	}
	d.SetAgentConnected("a", false)
	if _, err := d.AgentExec(ctx, "a", hypervisor.ExecRequest{Path: "/bin/true"}); !errors.Is(err, hypervisor.ErrAgentUnavailable) {
		t.Fatalf("exec with agent off: %v", err)
	}

	addrs, err := d.Addresses(ctx, "a")
	if err != nil || addrs == nil || len(addrs) != 0 {
		t.Fatalf("unscripted addresses = %v, %v", addrs, err)
	}
	want := hypervisor.Address{MAC: "52:54:00:00:00:01", IP: net.ParseIP("10.0.0.5"), Prefix: 24, Source: hypervisor.SourceLease}
	d.SetAddresses("a", []hypervisor.Address{want})
	if addrs, _ = d.Addresses(ctx, "a"); len(addrs) != 1 || !addrs[0].IP.Equal(want.IP) {
		t.Fatalf("scripted addresses = %v", addrs)
	}
}

func TestShutdownIgnoredAndCrash(t *testing.T) {
	ctx := context.Background()
	d := New()
	_ = d.Define(ctx, spec("a"))
	_ = d.Start(ctx, "a")
	events, _ := d.Events(ctx)
	d.IgnoreACPI("a", true)
	start := time.Now()
	if err := d.Shutdown(ctx, "a", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Error("Shutdown did not wait for the timeout")
	}
	if ev := next(t, events); ev.Detail != "destroyed" {
		t.Fatalf("event %+v, want destroyed", ev)
	}
	_ = d.Start(ctx, "a")
	next(t, events)
	d.Crash("a")
	if ev := next(t, events); ev.Kind != hypervisor.EventCrashed {
		t.Fatalf("event %+v, want crashed", ev)
	}
	d.AddDomain(hypervisor.Domain{Name: "foreign", VCPUs: 2})
	list, _ := d.List(ctx)
	if len(list) != 2 || list[1].Metadata != nil || list[1].State != hypervisor.StateShutoff {
		t.Fatalf("List = %+v", list)
	}
}

func TestNetworks(t *testing.T) {
	ctx := context.Background()
	d := New()
	_, cidr, _ := net.ParseCIDR("192.168.150.0/24")
	s := hypervisor.NetworkSpec{Name: "iso", Mode: hypervisor.NetworkIsolated, CIDR: cidr}
	if err := d.CreateNetwork(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateNetwork(ctx, s); !errors.Is(err, hypervisor.ErrExists) {
		t.Fatalf("recreate: %v", err)
	}
	if err := d.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: "x", Mode: hypervisor.NetworkNAT}); !errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Fatalf("invalid: %v", err)
	}
	n, err := d.GetNetwork(ctx, "iso")
	if err != nil || n.CIDR != "192.168.150.1/24" || !n.Active || len(n.Bridge) > 15 || n.Mode != hypervisor.NetworkIsolated {
		t.Fatalf("GetNetwork = %+v, %v", n, err)
	}
	if err := d.DeleteNetwork(ctx, "iso"); err != nil {
		t.Fatal(err)
	}
	if list, _ := d.ListNetworks(ctx); len(list) != 0 {
		t.Fatalf("left: %v", list)
	}
}
