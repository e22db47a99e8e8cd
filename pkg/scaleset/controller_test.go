package scaleset

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/autoscale"
	"github.com/galevm/gale/pkg/metrics"
	"github.com/galevm/gale/pkg/store"
)

var ctx = context.Background()

func webSet(name string, capacity int) api.CreateSetRequest {
	return api.CreateSetRequest{Name: name, Model: api.SetModel{Image: "debian-12"}, Capacity: capacity,
		LB: []api.LBRule{{FrontPort: 18080, BackPort: 80}}, Probe: "tcp:80,interval=100ms,healthy=1,unhealthy=1",
		Policy: api.SetPolicy{Drain: api.Duration(time.Millisecond), Grace: api.Duration(time.Second)}}
}

func (e *env) healthy(t *testing.T, set string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := e.svc.Get(ctx, set)
		if err == nil && s.Healthy == n && s.Instances == n {
			return
		}
		if time.Now().After(deadline) {
			insts, _ := e.svc.Instances(ctx, set)
			acts, _ := e.svc.Activity(ctx, set, 0, 0)
			for _, a := range acts {
				t.Logf("activity: %s %s %s %s %s", a.Trigger, a.Action, a.Instance, a.Result, a.Reason)
			}
			t.Fatalf("set %s: not %d healthy instances: %+v, %v; instances %+v", set, n, s, err, insts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) instanceNames(t *testing.T, set string) []string {
	t.Helper()
	insts, err := e.svc.Instances(ctx, set)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range insts {
		out = append(out, in.Name)
	}
	return out
}

func TestCreateScaleAndLoadBalancer(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Create(ctx, webSet("web", 3)); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 3)
	eventually(t, "3 backends", func() bool {
		b, _ := e.lb.backends("web")
		return slices.Equal(b, []string{"web-0", "web-1", "web-2"})
	})
	// Each instance got its metadata file.
	for _, n := range []string{"web-0", "web-1", "web-2"} {
		e.vms.mu.Lock()
		cmds := e.vms.execs[n]
		e.vms.mu.Unlock()
		if len(cmds) == 0 || !contains(cmds[0], MetadataPath) {
			t.Errorf("%s: no metadata written: %q", n, cmds)
		}
	}
	if _, err := e.svc.Scale(ctx, "web", 5, api.TriggerUser); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 5)
	// Protect the highest ordinal: scale-in takes the next highest ones.
	if err := e.svc.InstanceAction(ctx, "web", "web-4", "protect", api.ProtectRequest{ScaleIn: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Scale(ctx, "web", 2, api.TriggerUser); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 2)
	if got := e.instanceNames(t, "web"); !slices.Equal(got, []string{"web-0", "web-4"}) {
		t.Fatalf("after scale-in: %v, want web-0 (lowest) and web-4 (protected)", got)
	}
	if got := e.vms.names(); !slices.Equal(got, []string{"web-0", "web-4"}) {
		t.Fatalf("VMs after scale-in: %v", got)
	}
	eventually(t, "2 backends", func() bool {
		b, _ := e.lb.backends("web")
		return slices.Equal(b, []string{"web-0", "web-4"})
	})
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestScaleInPolicies(t *testing.T) {
	base := time.Unix(1000, 0)
	members := []member{
		{Name: "w-0", Ordinal: 0, CreatedAt: base.Add(3 * time.Second), Health: api.HealthHealthy},
		{Name: "w-1", Ordinal: 1, CreatedAt: base, Health: api.HealthHealthy},
		{Name: "w-2", Ordinal: 2, CreatedAt: base.Add(time.Second), Health: api.HealthUnhealthy},
		{Name: "w-3", Ordinal: 3, CreatedAt: base.Add(2 * time.Second), Health: api.HealthHealthy, Protect: []string{api.ProtectScaleIn}},
		{Name: "w-4", Ordinal: 4, CreatedAt: base.Add(4 * time.Second), Health: api.HealthHealthy, Protect: []string{api.ProtectSetActions}},
		{Name: "w-5", Ordinal: 5, CreatedAt: base.Add(5 * time.Second), Health: api.HealthHealthy, Busy: busyRepair},
	}
	for _, tc := range []struct {
		policy string
		n      int
		want   []string
	}{
		{api.ScaleInDefault, 2, []string{"w-2", "w-1"}},
		{api.ScaleInOldest, 2, []string{"w-1", "w-2"}},
		{api.ScaleInNewest, 2, []string{"w-0", "w-2"}},
		{api.ScaleInDefault, 9, []string{"w-2", "w-1", "w-0"}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			var got []string
			for _, m := range scaleInVictims(members, tc.n, tc.policy) {
				got = append(got, m.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("victims = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRepairPlan(t *testing.T) {
	now := time.Unix(10_000, 0)
	old := now.Add(-time.Hour)
	mk := func(name, health string, created time.Time) member {
		return member{Name: name, Health: health, CreatedAt: created}
	}
	for _, tc := range []struct {
		name          string
		members       []member
		running, max  int
		want          []string
		wantSuspended bool
	}{
		{"one unhealthy past grace", []member{mk("a", api.HealthUnhealthy, old), mk("b", api.HealthHealthy, old), mk("c", api.HealthHealthy, old)}, 0, 1, []string{"a"}, false},
		{"within grace", []member{mk("a", api.HealthUnhealthy, now.Add(-time.Second)), mk("b", api.HealthHealthy, old), mk("c", api.HealthHealthy, old)}, 0, 1, nil, false},
		{"bounded by running repairs", []member{mk("a", api.HealthUnhealthy, old), mk("b", api.HealthHealthy, old), mk("c", api.HealthHealthy, old)}, 1, 1, nil, false},
		{"most unhealthy: suspended", []member{mk("a", api.HealthUnhealthy, old), mk("b", api.HealthUnhealthy, old), mk("c", api.HealthHealthy, old)}, 0, 3, nil, true},
		{"protected", []member{{Name: "a", Health: api.HealthUnhealthy, CreatedAt: old, Protect: []string{api.ProtectSetActions}}, mk("b", api.HealthHealthy, old), mk("c", api.HealthHealthy, old)}, 0, 1, nil, false},
		{"repaired recently", []member{{Name: "a", Health: api.HealthUnhealthy, CreatedAt: old, RepairedAt: now.Add(-time.Second)}, mk("b", api.HealthHealthy, old), mk("c", api.HealthHealthy, old)}, 0, 1, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, susp := repairPlan(tc.members, now, time.Minute, tc.running, tc.max)
			var names []string
			for _, m := range got {
				names = append(names, m.Name)
			}
			if !slices.Equal(names, tc.want) || susp != tc.wantSuspended {
				t.Fatalf("repair %v suspended %v, want %v %v", names, susp, tc.want, tc.wantSuspended)
			}
		})
	}
}

func TestBatchSize(t *testing.T) {
	for _, tc := range []struct {
		batch    string
		capacity int
		want     int
		bad      bool
	}{
		{"", 10, 2, false}, {"34%", 3, 2, false}, {"100%", 3, 3, false}, {"1%", 3, 1, false},
		{"2", 10, 2, false}, {"0", 3, 0, true}, {"x", 3, 0, true}, {"150%", 3, 0, true},
	} {
		got, err := batchSize(tc.batch, tc.capacity)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("batchSize(%q, %d) = %d, %v; want %d (error %v)", tc.batch, tc.capacity, got, err, tc.want, tc.bad)
		}
	}
}

func TestProbeFailureLeavesMapAndRepairReplaces(t *testing.T) {
	e := newEnv(t)
	req := webSet("web", 3)
	req.Policy.Repair, req.Policy.Grace = api.RepairReplace, api.Duration(200*time.Millisecond)
	if _, err := e.svc.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 3)
	insts, _ := e.svc.Instances(ctx, "web")
	victim := insts[1]
	e.fail(victim.Address, true)
	eventually(t, "victim out of the map", func() bool {
		b, _ := e.lb.backends("web")
		return !slices.Contains(b, victim.Name)
	})
	// Replaced: its VM goes, a new instance comes, the set is whole again.
	eventually(t, "victim replaced", func() bool {
		s, _ := e.svc.Get(ctx, "web")
		return !slices.Contains(e.vms.names(), victim.Name) || s.Healthy == 3 && e.vms.createdCount() > 3
	})
	e.fail(victim.Address, false)
	e.healthy(t, "web", 3)
	acts, _ := e.svc.Activity(ctx, "web", 0, 0)
	if !hasActivity(acts, "health", api.HealthUnhealthy) || !hasActivity(acts, "delete", api.ResultSucceeded) {
		t.Fatalf("activity lacks the unhealthy record or the replacement: %+v", acts)
	}
}

func hasActivity(acts []api.Activity, action, result string) bool {
	return slices.ContainsFunc(acts, func(a api.Activity) bool { return a.Action == action && a.Result == result })
}

func TestVanishedVMIsReplacedAndOutageSuspendsRepairs(t *testing.T) {
	e := newEnv(t)
	req := webSet("web", 4)
	req.Policy.Repair, req.Policy.Grace = api.RepairReplace, api.Duration(time.Millisecond)
	if _, err := e.svc.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 4)
	e.vms.remove("web-2") // virsh destroy + undefine behind galed's back
	e.svc.Notify()
	eventually(t, "web-2 replaced", func() bool {
		return e.vms.createdCount() == 5 && len(e.vms.names()) == 4
	})
	e.healthy(t, "web", 4)
	// Three of four stop at once: an outage; nothing is repaired.
	created := e.vms.createdCount()
	for _, n := range e.vms.names()[:3] {
		e.vms.setState(n, api.StateStopped)
	}
	eventually(t, "repairs suspended", func() bool {
		acts, _ := e.svc.Activity(ctx, "web", 0, 0)
		return hasActivity(acts, "repair", api.ResultSkipped)
	})
	time.Sleep(200 * time.Millisecond)
	if e.vms.createdCount() != created {
		t.Fatalf("repairs ran during an outage: %d creates, want %d", e.vms.createdCount(), created)
	}
}

func TestRollingUpgradeAndRollback(t *testing.T) {
	e := newEnv(t)
	req := webSet("web", 3)
	req.Policy.Upgrade = api.UpgradePolicy{Mode: api.UpgradeRolling, Batch: "1", Surge: 1}
	if _, err := e.svc.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 3)
	if _, err := e.svc.Update(ctx, "web", api.UpdateSetRequest{UserData: []byte("#cloud-config\n{}\n")}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all on version 2", func() bool {
		s, _ := e.svc.Get(ctx, "web")
		return s.Latest == 3 && s.Instances == 3 && s.State == api.SetActive && s.Upgrade != nil && s.Upgrade.State == "done"
	})
	// A model that does not come up is refused and changes nothing.
	if _, err := e.svc.Update(ctx, "web", api.UpdateSetRequest{Image: "bad"}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("update to a failing model: %v, want ErrInvalid", err)
	}
	if s, _ := e.svc.Get(ctx, "web"); s.Version != 2 {
		t.Fatalf("version after refused update = %d, want 2", s.Version)
	}
	// A model that boots but fails its probe: every new address fails.
	before := e.instanceNames(t, "web")
	e.mu.Lock()
	for i := 1; i < 100; i++ {
		e.failing["10.0.0."+strconv.Itoa(i+e.vms.createdCount())] = true
	}
	e.mu.Unlock()
	if _, err := e.svc.Update(ctx, "web", api.UpdateSetRequest{CPUs: 2}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "upgrade failed and rolled back", func() bool {
		s, _ := e.svc.Get(ctx, "web")
		return s.Upgrade != nil && s.Upgrade.State == "failed" && s.State == api.SetActive
	})
	e.healthy(t, "web", 3)
	if got := e.instanceNames(t, "web"); !slices.Equal(got, before) {
		t.Fatalf("after rollback instances %v, want %v", got, before)
	}
	acts, _ := e.svc.Activity(ctx, "web", 0, 0)
	if !hasActivity(acts, "rollback", api.ResultSucceeded) {
		t.Fatalf("no rollback record: %+v", acts)
	}
}

func TestRestartConvergesAndDeleteLeavesNothing(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Create(ctx, webSet("web", 2)); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 2)
	e.svc.Close()
	// As if galed died mid-create (row, no VM) and mid-delete (VM, no row).
	if err := e.store.InsertSetInstance(ctx, store.SetInstance{Name: "web-7", Set: "web", Ordinal: 7, Version: 1, Phase: store.PhaseCreating, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteSetInstance(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	eventually(t, "converged after restart", func() bool {
		s, _ := e.svc.Get(ctx, "web")
		names := e.instanceNames(t, "web")
		return s.Healthy == 2 && len(names) == 2 && !slices.Contains(names, "web-7") && len(e.vms.names()) == 2
	})
	if _, err := e.svc.Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "set gone", func() bool {
		_, err := e.svc.Get(ctx, "web")
		return errors.Is(err, ErrNotFound)
	})
	if n := e.vms.names(); len(n) != 0 {
		t.Fatalf("VMs left: %v", n)
	}
	if _, ok := e.lb.backends("web"); ok {
		t.Fatal("load balancer table left")
	}
	if rows, _ := e.store.SetInstances(ctx, "web"); len(rows) != 0 {
		t.Fatalf("instance rows left: %v", rows)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Create(ctx, webSet("web", 1)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  func(r *api.CreateSetRequest)
		want error
	}{
		{"bad name", func(r *api.CreateSetRequest) { r.Name = "../x" }, ErrInvalid},
		{"exists", func(r *api.CreateSetRequest) { r.Name = "web" }, ErrExists},
		{"negative capacity", func(r *api.CreateSetRequest) { r.Capacity = -1 }, ErrInvalid},
		{"over max", func(r *api.CreateSetRequest) { r.Capacity, r.Policy.MaxCapacity = 5, 4 }, ErrInvalid},
		{"bad probe", func(r *api.CreateSetRequest) { r.Probe = "http:x/" }, ErrInvalid},
		{"unknown image", func(r *api.CreateSetRequest) { r.Model.Image = "unknown" }, nil},
		{"frontend of another set", func(r *api.CreateSetRequest) {}, ErrConflict},
		{"bad repair", func(r *api.CreateSetRequest) { r.Policy.Repair = "pray" }, ErrInvalid},
		{"bad port", func(r *api.CreateSetRequest) { r.LB[0].BackPort = 0 }, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := webSet("other", 1)
			tc.req(&r)
			_, err := e.svc.Create(ctx, r)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if _, err := e.svc.Get(ctx, "other"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a refused create left set other: %v", err)
			}
		})
	}
	if _, err := e.svc.Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Scale(ctx, "web", 3, api.TriggerUser); err == nil {
		t.Fatal("scale of a set being deleted succeeded")
	}
}

type stubHost struct{ avail int64 }

func (h stubHost) MemAvailableBytes() (int64, error) { return h.avail, nil }

func TestScaleBeyondHostIsRefusedAndLogged(t *testing.T) {
	e := newEnv(t)
	e.svc.Close()
	e.cfg.Host = stubHost{avail: 3 << 30} // room for three 1 GiB instances
	e.start(t)
	if _, err := e.svc.Create(ctx, webSet("web", 4)); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("create of 4 x 1 GiB on 3 GiB: %v, want ErrInsufficient", err)
	}
	if _, err := e.svc.Create(ctx, webSet("web", 2)); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 2)
	if _, err := e.svc.Scale(ctx, "web", 6, api.TriggerUser); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("scale 2 -> 6 on 3 GiB: %v, want ErrInsufficient", err)
	}
	if s, _ := e.svc.Get(ctx, "web"); s.Capacity != 2 {
		t.Fatalf("capacity after a refused scale = %d, want 2", s.Capacity)
	}
	acts, _ := e.svc.Activity(ctx, "web", 0, 0)
	if !hasActivity(acts, "scale", api.ResultRefused) {
		t.Fatalf("refused scale not in the activity log: %+v", acts)
	}
}

func TestTerminateNoticeRunsTheGuestHook(t *testing.T) {
	e := newEnv(t)
	req := webSet("web", 2)
	req.Policy.TerminateNotice = api.Duration(time.Second)
	if _, err := e.svc.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 2)
	if err := e.svc.InstanceAction(ctx, "web", "web-0", "delete", api.ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 1)
	e.vms.mu.Lock()
	cmds := e.vms.execs["web-0"]
	e.vms.mu.Unlock()
	if !slices.ContainsFunc(cmds, func(c string) bool { return contains(c, TerminateHook) }) {
		t.Fatalf("web-0's terminate hook was not run: %q", cmds)
	}
	if got := e.instanceNames(t, "web"); !slices.Equal(got, []string{"web-1"}) {
		t.Fatalf("after instance delete: %v, want [web-1] (capacity lowered)", got)
	}
}

func TestAutomaticUpgradeReplacesAll(t *testing.T) {
	e := newEnv(t)
	req := webSet("web", 2)
	req.Policy.Upgrade.Mode = api.UpgradeAutomatic
	if _, err := e.svc.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 2)
	if _, err := e.svc.Update(ctx, "web", api.UpdateSetRequest{MemoryMiB: 2048}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both on version 2", func() bool {
		s, _ := e.svc.Get(ctx, "web")
		return s.Latest == 2 && s.Instances == 2 && s.Healthy == 2 && s.State == api.SetActive
	})
	// The old model version is dropped once no instance uses it.
	eventually(t, "model 1 dropped", func() bool {
		ms, _ := e.store.SetModels(ctx, "web")
		return len(ms) == 1 && ms[0].Version == 2
	})
	if _, err := e.svc.Update(ctx, "web", api.UpdateSetRequest{}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an update that changes nothing: %v, want ErrInvalid", err)
	}
}

func TestFrontendTakenByAHostProcess(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if err := portFree("tcp", "127.0.0.1", port); !errors.Is(err, ErrConflict) {
		t.Fatalf("portFree of a listening port: %v, want ErrConflict", err)
	}
	e := newEnv(t)
	req := webSet("web", 1)
	req.LB[0].FrontPort = port
	if _, err := e.svc.Create(ctx, req); !errors.Is(err, ErrConflict) {
		t.Fatalf("create on a host process's port: %v, want ErrConflict", err)
	}
	l.Close()
	if err := portFree("tcp", "127.0.0.1", port); err != nil {
		t.Fatalf("portFree of a free port: %v", err)
	}
}

func TestActivityFollowAndEvents(t *testing.T) {
	e := newEnv(t)
	sub := e.svc.Events().Subscribe("set")
	defer sub.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got := make(chan api.Activity, 100)
	go func() {
		_ = e.svc.FollowActivity(cctx, "web", 0, func(a api.Activity) error { got <- a; return nil })
	}()
	if _, err := e.svc.Create(ctx, webSet("web", 1)); err != nil {
		t.Fatal(err)
	}
	// The follow began before the set existed: it ends with not found, so
	// follow again now that it does.
	go func() {
		_ = e.svc.FollowActivity(cctx, "web", 0, func(a api.Activity) error { got <- a; return nil })
	}()
	seenCreate := false
	for !seenCreate {
		select {
		case a := <-got:
			seenCreate = a.Action == "create" && a.Instance == "web-0" && a.Result == api.ResultSucceeded
		case <-cctx.Done():
			t.Fatal("no create of web-0 followed")
		}
	}
	select {
	case ev := <-sub.C:
		if ev.Kind != "set" || ev.Name != "web" || ev.Activity == nil {
			t.Fatalf("event %+v", ev)
		}
	case <-cctx.Done():
		t.Fatal("no event on the bus")
	}
}

func TestUpgradeCancelStopsAfterTheBatch(t *testing.T) {
	e := newEnv(t)
	req := webSet("web", 3)
	req.Policy.Upgrade = api.UpgradePolicy{Mode: api.UpgradeManual, Batch: "1", Pause: api.Duration(time.Second)}
	if _, err := e.svc.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 3)
	if _, err := e.svc.Upgrade(ctx, "web", api.UpgradeRequest{Cancel: true}); !errors.Is(err, ErrConflict) {
		t.Fatalf("cancel without an upgrade: %v, want ErrConflict", err)
	}
	if _, err := e.svc.Update(ctx, "web", api.UpdateSetRequest{CPUs: 2}, nil); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.svc.Get(ctx, "web"); s.State != api.SetActive || s.Latest != 0 {
		t.Fatalf("manual policy upgraded on update: %+v", s)
	}
	if _, err := e.svc.Upgrade(ctx, "web", api.UpgradeRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Upgrade(ctx, "web", api.UpgradeRequest{}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second upgrade: %v, want ErrConflict", err)
	}
	eventually(t, "first batch done", func() bool {
		s, _ := e.svc.Get(ctx, "web")
		return s.Latest == 1
	})
	if _, err := e.svc.Upgrade(ctx, "web", api.UpgradeRequest{Cancel: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "upgrade cancelled", func() bool {
		s, _ := e.svc.Get(ctx, "web")
		return s.State == api.SetActive && s.Upgrade != nil && s.Upgrade.State == "cancelled"
	})
	if s, _ := e.svc.Get(ctx, "web"); s.Latest != 1 || s.Instances != 3 {
		t.Fatalf("after cancel: %d on the latest version, %d instances; want 1 and 3", s.Latest, s.Instances)
	}
}

func TestDrainWaitsForOpenConnections(t *testing.T) {
	e := newEnv(t)
	req := webSet("web", 2)
	req.Policy.Drain = api.Duration(10 * time.Second)
	if _, err := e.svc.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 2)
	insts, _ := e.svc.Instances(ctx, "web")
	leaving := insts[1]
	e.lb.setOpen(leaving.Address, 2)
	if _, err := e.svc.Scale(ctx, "web", 1, api.TriggerUser); err != nil {
		t.Fatal(err)
	}
	eventually(t, "out of the map", func() bool {
		b, _ := e.lb.backends("web")
		return slices.Equal(b, []string{insts[0].Name})
	})
	time.Sleep(300 * time.Millisecond)
	if !slices.Contains(e.vms.names(), leaving.Name) {
		t.Fatalf("%s deleted while it had open connections", leaving.Name)
	}
	e.lb.setOpen(leaving.Address, 0)
	eventually(t, "deleted once its connections closed", func() bool {
		return !slices.Contains(e.vms.names(), leaving.Name)
	})
}

// feed adds value as every instance's cpu_percent every 50 ms until stop.
func feed(e *env, m *metrics.Store, value *atomic.Int64, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		for _, n := range e.vms.names() {
			m.Add(metrics.VMObject(n), metrics.CPUPercent, time.Now(), float64(value.Load()))
		}
	}
}

func TestAutoscaleOutAndInWithExplainedDecisions(t *testing.T) {
	e, m := newEnvWithMetrics(t)
	bad := autoscale.OneLiner(70, 30, 1, 3, 2*time.Second, time.Second)
	bad.Profiles[0].Rules[0].Metric = "load_average"
	if _, err := e.svc.SetAutoscale(ctx, "web", bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a rule on an unknown metric: %v, want ErrInvalid", err)
	}
	s := autoscale.OneLiner(70, 30, 1, 3, 2*time.Second, time.Second)
	for i := range s.Profiles[0].Rules {
		s.Profiles[0].Rules[i].TimeGrain = autoscale.Duration(time.Second)
	}
	if _, err := e.svc.SetAutoscale(ctx, "web", s); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Scale(ctx, "web", 2, api.TriggerUser); !errors.Is(err, ErrConflict) {
		t.Fatalf("a user's scale of an autoscaled set: %v, want ErrConflict", err)
	}
	var cpu atomic.Int64
	cpu.Store(90)
	stop := make(chan struct{})
	defer close(stop)
	go feed(e, m, &cpu, stop)
	eventuallyWithin(t, 15*time.Second, "scaled out to 3 (max)", func() bool {
		set, _ := e.svc.Get(ctx, "web")
		return set.Capacity == 3 && set.Healthy == 3
	})
	acts, _ := e.svc.Activity(ctx, "web", 0, 0)
	if !slices.ContainsFunc(acts, func(a api.Activity) bool {
		return a.Trigger == api.TriggerAutoscale && a.Action == autoscale.ActionScaleOut && strings.Contains(a.Reason, "cpu_percent") && strings.Contains(a.Reason, "90")
	}) {
		t.Fatalf("no explained scale-out in the activity log: %+v", acts)
	}
	v, err := e.svc.Autoscale(ctx, "web", true)
	if err != nil || v.Explain == nil || v.Last == nil {
		t.Fatalf("explain: %+v, %v", v, err)
	}
	cpu.Store(5)
	eventuallyWithin(t, 15*time.Second, "scaled in to 1 (min)", func() bool {
		set, _ := e.svc.Get(ctx, "web")
		return set.Capacity == 1 && set.Instances == 1
	})
	mm, err := e.svc.Metrics(ctx, "web", time.Minute)
	if err != nil || len(mm.Instances) != 1 || mm.Instances[0].Metrics[metrics.CPUPercent].Samples == 0 {
		t.Fatalf("metrics: %+v, %v", mm, err)
	}
	if _, err := e.svc.EnableAutoscale(ctx, "web", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Scale(ctx, "web", 2, api.TriggerUser); err != nil {
		t.Fatalf("scale after --disable: %v", err)
	}
}

func TestLoadBalancerConnectionsAreAMetric(t *testing.T) {
	e, m := newEnvWithMetrics(t)
	insts, _ := e.svc.Instances(ctx, "web")
	e.lb.setOpen(insts[0].Address, 3)
	m.SetInterval(100 * time.Millisecond)
	eventually(t, "lb_connections of web-0 is 3", func() bool {
		s, ok := m.Last(metrics.VMObject(insts[0].Name), metrics.LBConnections)
		return ok && s.Value == 3
	})
}

// newEnvWithMetrics is newEnv with a metrics store, and set web of one
// healthy instance.
func newEnvWithMetrics(t *testing.T) (*env, *metrics.Store) {
	t.Helper()
	e := newEnv(t)
	e.svc.Close()
	m := metrics.NewStore(time.Hour)
	e.cfg.Metrics = m
	e.start(t)
	if _, err := e.svc.Create(ctx, webSet("web", 1)); err != nil {
		t.Fatal(err)
	}
	e.healthy(t, "web", 1)
	return e, m
}
