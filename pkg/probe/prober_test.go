package probe

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	addrA  = netip.MustParseAddr("10.0.0.1")
	addrB  = netip.MustParseAddr("10.0.0.2")
	addrB2 = netip.MustParseAddr("10.0.0.22")
	addrC  = netip.MustParseAddr("10.0.0.3")
)

// testSpec is the Spec of the fake-clock tests.
var testSpec = Spec{Kind: KindTCP, Port: 80, Interval: time.Second, Timeout: 500 * time.Millisecond, Healthy: 2, Unhealthy: 2}

// fixture is a Prober on a fake clock and checker.
type fixture struct {
	t   *testing.T
	clk *fakeClock
	chk *fakeChecker
	rec *recorder
	p   *Prober
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, clk: newFakeClock(), chk: newFakeChecker(), rec: &recorder{}}
	f.p = NewProber(testSpec, f.rec.onChange, WithChecker(f.chk.check), WithClock(f.clk))
	t.Cleanup(f.p.Stop)
	return f
}

// settle waits until n loops wait on their timer, stopped timers having
// reached stopped (so that loops SetTargets ended have ended).
func (f *fixture) settle(n, stopped int) {
	f.t.Helper()
	waitFor(f.t, "probe loops to wait", func() bool {
		p, s := f.clk.counts()
		return p == n && s == stopped
	})
}

// tick moves the clock one interval on and waits for the n loops to probe
// and wait again.
func (f *fixture) tick(n, stopped int) {
	f.t.Helper()
	f.clk.Advance(testSpec.Interval)
	f.settle(n, stopped)
}

func (f *fixture) wantEvents(want ...string) {
	f.t.Helper()
	got := f.rec.take()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		f.t.Errorf("onChange calls = %q, want %q", got, want)
	}
}

func TestProberTransitions(t *testing.T) {
	f := newFixture(t)
	f.p.SetTargets(map[string]netip.Addr{"a": addrA})

	// The first probe runs at once, without the clock moving.
	f.settle(1, 0)
	if n := f.chk.callsTo(addrA); n != 1 {
		t.Fatalf("probes right after SetTargets = %d, want 1", n)
	}
	r := f.p.Results()["a"]
	if r.Status != StatusUnknown || r.Successes != 1 || !r.LastCheck.Equal(f.clk.Now()) || r.Addr != addrA || !r.Since.IsZero() {
		t.Errorf("after one success: %+v", r)
	}
	f.wantEvents()

	f.tick(1, 0) // second success: healthy
	f.wantEvents("a 10.0.0.1 healthy")
	if r := f.p.Results()["a"]; r.Status != StatusHealthy || !r.Since.Equal(f.clk.Now()) {
		t.Errorf("after two successes: %+v", r)
	}
	f.tick(1, 0)
	f.wantEvents()

	f.chk.setFail(addrA, errors.New("connection refused"))
	f.tick(1, 0)
	f.wantEvents() // one failure is a blip
	f.tick(1, 0)
	f.wantEvents("a 10.0.0.1 unhealthy")
	r = f.p.Results()["a"]
	if r.Status != StatusUnhealthy || r.Failures != 2 || r.LastError != "connection refused" || !r.Since.Equal(f.clk.Now()) {
		t.Errorf("after two failures: %+v", r)
	}
	for range 3 {
		f.tick(1, 0)
	}
	f.wantEvents()

	f.chk.setFail(addrA, nil)
	f.tick(1, 0)
	f.tick(1, 0)
	f.wantEvents("a 10.0.0.1 healthy")
	if n := f.chk.callsTo(addrA); n != 10 {
		t.Errorf("probes = %d, want 10 (one at once, one per tick)", n)
	}

	f.p.Stop()
	if got := f.p.Results(); len(got) != 0 {
		t.Errorf("Results after Stop = %v, want none", got)
	}
	f.p.SetTargets(map[string]netip.Addr{"b": addrB})
	f.clk.Advance(time.Hour)
	if n := f.chk.callsTo(addrB); n != 0 || len(f.p.Results()) != 0 {
		t.Errorf("SetTargets after Stop started probing (%d probes)", n)
	}
	f.p.Stop() // again: no-op
}

func TestProberSetTargets(t *testing.T) {
	f := newFixture(t)
	f.p.SetTargets(map[string]netip.Addr{"a": addrA, "b": addrB})
	f.settle(2, 0)
	f.tick(2, 0)
	f.wantEvents("a 10.0.0.1 healthy", "b 10.0.0.2 healthy")

	// Keep a, readdress b, add c.
	f.p.SetTargets(map[string]netip.Addr{"a": addrA, "b": addrB2, "c": addrC})
	f.settle(3, 1) // the old loop of b stopped its timer
	if got := []int{f.chk.callsTo(addrA), f.chk.callsTo(addrB), f.chk.callsTo(addrB2), f.chk.callsTo(addrC)}; !reflect.DeepEqual(got, []int{2, 2, 1, 1}) {
		t.Errorf("probes of a, b, b', c = %v, want [2 2 1 1]: a untouched, b' and c probed at once", got)
	}
	res := f.p.Results()
	if res["a"].Status != StatusHealthy || res["b"].Status != StatusUnknown || res["b"].Addr != addrB2 || res["b"].Successes != 1 || res["c"].Status != StatusUnknown {
		t.Errorf("Results = %+v: want a kept healthy, b fresh at its new address, c unknown", res)
	}
	f.wantEvents() // SetTargets itself reports nothing

	f.tick(3, 1)
	f.wantEvents("b 10.0.0.22 healthy", "c 10.0.0.3 healthy")

	// Remove a and b.
	f.p.SetTargets(map[string]netip.Addr{"c": addrC})
	f.settle(1, 3)
	if got := f.p.Results(); len(got) != 1 || got["c"].Status != StatusHealthy {
		t.Errorf("Results = %+v, want only c", got)
	}
	before := []int{f.chk.callsTo(addrA), f.chk.callsTo(addrB), f.chk.callsTo(addrB2)}
	f.tick(1, 3)
	f.tick(1, 3)
	if after := []int{f.chk.callsTo(addrA), f.chk.callsTo(addrB), f.chk.callsTo(addrB2)}; !reflect.DeepEqual(before, after) {
		t.Errorf("removed targets still probed: %v, then %v", before, after)
	}
	if n := f.chk.callsTo(addrC); n != 4 {
		t.Errorf("probes of c = %d, want 4", n)
	}

	// The same set again changes nothing.
	f.p.SetTargets(map[string]netip.Addr{"c": addrC})
	f.settle(1, 3)
	if n := f.chk.callsTo(addrC); n != 4 {
		t.Errorf("probes of c = %d after an unchanged SetTargets, want 4", n)
	}
	// The caller's map is not kept.
	m := map[string]netip.Addr{"c": addrC}
	f.p.SetTargets(m)
	m["d"] = addrA
	if _, ok := f.p.Results()["d"]; ok {
		t.Error("Prober kept the caller's map")
	}

	f.p.SetTargets(nil)
	f.settle(0, 4)
	if got := f.p.Results(); len(got) != 0 {
		t.Errorf("Results after SetTargets(nil) = %v", got)
	}
	f.wantEvents()
}

// TestProberNoOverlap: a probe that outlasts the interval delays the next,
// which then starts at once; two never run together.
func TestProberNoOverlap(t *testing.T) {
	f := newFixture(t)
	f.chk.block = make(chan struct{})
	f.p.SetTargets(map[string]netip.Addr{"a": addrA})
	waitFor(t, "the first probe", func() bool { return f.chk.running() == 1 })
	for range 5 {
		f.clk.Advance(testSpec.Interval)
	}
	time.Sleep(5 * time.Millisecond)
	if n := f.chk.callsTo(addrA); n != 1 {
		t.Fatalf("probes while one runs = %d, want 1", n)
	}
	f.chk.block <- struct{}{} // the first probe ends 5 intervals late...
	waitFor(t, "the second probe", func() bool { return f.chk.callsTo(addrA) == 2 && f.chk.running() == 1 })
	f.chk.block <- struct{}{} // ...so the second starts at once, and waits its interval
	f.settle(1, 0)
	f.chk.mu.Lock()
	most := f.chk.maxInflight
	f.chk.mu.Unlock()
	if most != 1 {
		t.Errorf("probes of one target in flight at once: %d", most)
	}
	f.wantEvents("a 10.0.0.1 healthy")
}

// TestProberStop: Stop cancels running probes and waits for them.
func TestProberStop(t *testing.T) {
	f := newFixture(t)
	f.chk.block = make(chan struct{}) // never released: probes end by ctx
	targets := map[string]netip.Addr{}
	for i := range 5 {
		targets[strconv.Itoa(i)] = netip.AddrFrom4([4]byte{10, 1, 0, byte(i)})
	}
	f.p.SetTargets(targets)
	waitFor(t, "5 probes to run", func() bool { return f.chk.running() == 5 })
	f.p.Stop()
	if n := f.chk.running(); n != 0 {
		t.Errorf("%d probes still running after Stop", n)
	}
	f.wantEvents() // canceled probes are not observed
	if got := f.p.Results(); len(got) != 0 {
		t.Errorf("Results after Stop = %v", got)
	}
}

// TestProberCallbacks: onChange runs one call at a time, and may call
// Results and SetTargets (here: dropping a target that turned unhealthy).
func TestProberCallbacks(t *testing.T) {
	clk, chk := newFakeClock(), newFakeChecker()
	var (
		p                 *Prober
		in, most, calls   atomic.Int32
		mu                sync.Mutex
		current           = map[string]netip.Addr{}
		unhealthyAtChange int
	)
	onChange := func(target string, r Result) {
		n := in.Add(1)
		defer in.Add(-1)
		calls.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Millisecond) // widen the window for an overlap
		if p.Results()[target].Status != r.Status {
			t.Errorf("%s: Results disagrees with onChange's %s", target, r.Status)
		}
		if r.Status == StatusUnhealthy {
			mu.Lock()
			unhealthyAtChange++
			delete(current, target)
			next := map[string]netip.Addr{}
			for k, v := range current {
				next[k] = v
			}
			mu.Unlock()
			p.SetTargets(next)
		}
	}
	p = NewProber(testSpec, onChange, WithChecker(chk.check), WithClock(clk))
	defer p.Stop()
	const n = 20
	for i := range n {
		addr := netip.AddrFrom4([4]byte{10, 2, 0, byte(i)})
		current[strconv.Itoa(i)] = addr
		if i%2 == 1 {
			chk.setFail(addr, errors.New("down"))
		}
	}
	mu.Lock()
	p.SetTargets(current)
	mu.Unlock()
	waitFor(t, "first probes", func() bool { pending, _ := clk.counts(); return pending == n })
	clk.Advance(testSpec.Interval) // all 20 change status on this tick
	waitFor(t, "20 onChange calls", func() bool { return calls.Load() == n })
	waitFor(t, "odd targets dropped", func() bool { pending, _ := clk.counts(); return pending == n/2 && len(p.Results()) == n/2 })
	if m := most.Load(); m != 1 {
		t.Errorf("%d onChange calls ran at once, want 1", m)
	}
	if unhealthyAtChange != n/2 {
		t.Errorf("unhealthy calls = %d, want %d", unhealthyAtChange, n/2)
	}
	for name, r := range p.Results() {
		if i, _ := strconv.Atoi(name); i%2 == 1 || r.Status != StatusHealthy {
			t.Errorf("left %s %s, want only the healthy even targets", name, r.Status)
		}
	}
}

// TestProberRealTime runs the default clock and Check against an HTTP
// server: healthy, then unhealthy when it starts answering 503.
func TestProberRealTime(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	addr, spec := server(t, "/up", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(code.Load())) })
	spec.Interval, spec.Timeout, spec.Healthy, spec.Unhealthy = MinInterval, 50*time.Millisecond, 1, 2
	events := make(chan Result, 10)
	p := NewProber(spec, func(target string, r Result) { events <- r })
	defer p.Stop()
	start := time.Now()
	p.SetTargets(map[string]netip.Addr{"web": addr})
	next := func(want Status) Result {
		t.Helper()
		select {
		case r := <-events:
			if r.Status != want {
				t.Fatalf("onChange %s (%s), want %s", r.Status, r.LastError, want)
			}
			return r
		case <-time.After(2 * time.Second):
			t.Fatalf("no onChange to %s", want)
		}
		return Result{}
	}
	next(StatusHealthy)
	if d := time.Since(start); d > spec.Interval/2 {
		t.Errorf("first probe after %s: it should run at once", d)
	}
	code.Store(503)
	changed := time.Now()
	r := next(StatusUnhealthy)
	if d := time.Since(changed); d < spec.Interval {
		t.Errorf("unhealthy after %s: two failures need at least one interval (%s)", d, spec.Interval)
	}
	if want := "GET http://" + addr.String() + ":" + strconv.Itoa(spec.Port) + "/up: status 503 Service Unavailable"; r.LastError != want {
		t.Errorf("LastError = %q, want %q", r.LastError, want)
	}
}

// TestProberNoLeak: goroutines of added, readdressed and removed targets
// all end by Stop.
func TestProberNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	chk := newFakeChecker()
	p := NewProber(Spec{Kind: KindTCP, Port: 1, Interval: MinInterval, Timeout: MinInterval / 2}, nil, WithChecker(chk.check))
	targets := map[string]netip.Addr{}
	for i := range 50 {
		targets[strconv.Itoa(i)] = netip.AddrFrom4([4]byte{10, 3, 0, byte(i)})
	}
	p.SetTargets(targets)
	for i := range 25 {
		targets[strconv.Itoa(i)] = netip.AddrFrom4([4]byte{10, 4, 0, byte(i)})
	}
	p.SetTargets(targets)
	p.SetTargets(map[string]netip.Addr{"0": targets["0"]})
	if runtime.NumGoroutine() <= before {
		t.Fatal("no probe goroutines running?")
	}
	p.Stop()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestNewProberPanicsOnInvalidSpec(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("NewProber with an invalid Spec did not panic")
		}
	}()
	NewProber(Spec{Kind: KindTCP, Port: 80, Timeout: time.Minute}, nil)
}

// TestCheckerGetsTimeout: a custom checker's ctx carries the Spec's
// timeout.
func TestCheckerGetsTimeout(t *testing.T) {
	deadlines := make(chan time.Duration, 1)
	p := NewProber(testSpec, nil, WithChecker(func(ctx context.Context, addr netip.Addr) error {
		dl, _ := ctx.Deadline()
		select {
		case deadlines <- time.Until(dl):
		default:
		}
		return nil
	}))
	defer p.Stop()
	p.SetTargets(map[string]netip.Addr{"a": addrA})
	if d := <-deadlines; d <= 0 || d > testSpec.Timeout {
		t.Errorf("probe ctx deadline in %s, want within the timeout %s", d, testSpec.Timeout)
	}
}
