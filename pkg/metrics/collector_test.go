package metrics

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/fake"
)

// source is a scripted StatsSource.
type source struct {
	mu    sync.Mutex
	stats []hypervisor.DomainStats
	err   error
	calls int
}

func (s *source) AllStats(ctx context.Context) ([]hypervisor.DomainStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	return slices.Clone(s.stats), nil
}

func (s *source) set(stats ...hypervisor.DomainStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = stats
}

// clock is a settable fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// harness runs ticks at chosen times.
type harness struct {
	t     *testing.T
	src   *source
	clock *clock
	store *Store
	c     *Collector
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, src: &source{}, clock: &clock{now: t0}, store: NewStore(time.Hour)}
	h.c = NewCollector(h.src, h.store, 10*time.Second, h.clock.Now)
	return h
}

// tick runs one Tick at t0+sec with stats.
func (h *harness) tick(sec int, stats ...hypervisor.DomainStats) {
	h.t.Helper()
	h.src.set(stats...)
	h.clock.set(at(sec))
	if err := h.c.Tick(context.Background()); err != nil {
		h.t.Fatalf("Tick at %d s: %v", sec, err)
	}
}

// series returns (seconds, values) of one series of vm/name.
func (h *harness) series(name, metric string) ([]int, []float64) {
	ss := h.store.Range(VMObject(name), metric, at(-1e6), at(1e6))
	return secs(ss), values(ss)
}

// expect checks one series of vm/name.
func (h *harness) expect(name, metric string, wantSecs []int, wantVals []float64) {
	h.t.Helper()
	gs, gv := h.series(name, metric)
	if !slices.Equal(gs, wantSecs) || !approxEqual(gv, wantVals) {
		h.t.Errorf("%s %s = %v %v, want %v %v", name, metric, gs, gv, wantSecs, wantVals)
	}
}

func approxEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9*math.Max(1, math.Abs(b[i])) {
			return false
		}
	}
	return true
}

// vm returns running stats with 2 vCPUs.
func vm(name string, cpu time.Duration, rx, tx, rd, wr uint64) hypervisor.DomainStats {
	return hypervisor.DomainStats{
		Name: name, Running: true, VCPUs: 2, CPUTime: cpu,
		NetRxBytes: rx, NetTxBytes: tx, BlockRdBytes: rd, BlockWrBytes: wr,
		MemAvailableKiB: 1 << 20, MemUnusedKiB: 600 << 10, MemCurrentKiB: 1 << 20,
	}
}

func TestCollectorRates(t *testing.T) {
	h := newHarness(t)
	s := time.Second
	h.tick(0, vm("web-0", 10*s, 1000, 0, 0, 0))
	if objs := h.store.Objects(""); len(objs) != 0 {
		t.Fatalf("first tick recorded samples for %v", objs)
	}
	h.tick(10, vm("web-0", 20*s, 11000, 5000, 40960, 81920))   // 10 s CPU over 10 s × 2 vCPUs
	h.tick(20, vm("web-0", 40*s, 11000, 5000, 40960, 81920))   // 20 s over 20 s
	h.tick(30, vm("web-0", 70*s, 21000, 15000, 40960, 163840)) // 30 s over 20 s: clamped
	h.tick(40, vm("web-0", 70*s, 21000, 15000, 40960, 163840)) // idle
	want := []int{10, 20, 30, 40}
	h.expect("web-0", CPUPercent, want, []float64{50, 100, 100, 0})
	h.expect("web-0", NetInBytes, want, []float64{1000, 0, 1000, 0})
	h.expect("web-0", NetOutBytes, want, []float64{500, 0, 1000, 0})
	h.expect("web-0", DiskReadBytes, want, []float64{4096, 0, 0, 0})
	h.expect("web-0", DiskWriteBytes, want, []float64{8192, 0, 8192, 0})
	h.expect("web-0", MemoryUsedBytes, want, []float64{424 << 20, 424 << 20, 424 << 20, 424 << 20})
	if h.src.calls != 5 {
		t.Errorf("AllStats calls = %d, want one per tick (5)", h.src.calls)
	}

	// Irregular spacing: rates use the real elapsed time.
	h.tick(45, vm("web-0", 71*s, 26000, 15000, 40960, 163840))
	if _, v := h.series("web-0", CPUPercent); v[len(v)-1] != 10 {
		t.Errorf("CPU over 5 s = %v, want 10", v[len(v)-1])
	}
	if _, v := h.series("web-0", NetInBytes); v[len(v)-1] != 1000 {
		t.Errorf("net in over 5 s = %v, want 1000", v[len(v)-1])
	}
}

func TestCollectorRestartAndMissing(t *testing.T) {
	h := newHarness(t)
	s := time.Second
	h.tick(0, vm("a", 100*s, 1e6, 1e6, 1e6, 1e6))
	h.tick(10, vm("a", 110*s, 1e6+1000, 1e6, 1e6, 1e6))
	// Restarted: every counter lower. Baselines reset, no sample.
	h.tick(20, vm("a", 1*s, 10, 0, 500, 0))
	h.tick(30, vm("a", 3*s, 10010, 0, 500, 0))
	h.expect("a", CPUPercent, []int{10, 30}, []float64{50, 10})
	h.expect("a", NetInBytes, []int{10, 30}, []float64{100, 1000})
	h.expect("a", MemoryUsedBytes, []int{10, 30}, []float64{424 << 20, 424 << 20})

	// A disk counter missing (zero) for one tick keeps its baseline: the
	// next rate spans both intervals.
	h.tick(40, vm("a", 5*s, 20010, 0, 0, 0))
	h.tick(50, vm("a", 7*s, 30010, 0, 20500, 0))
	h.expect("a", DiskReadBytes, []int{10, 30, 50}, []float64{0, 0, 1000})
	// A counter that drops but not to zero (a device removed) resets
	// alone, without a sample.
	h.tick(60, vm("a", 9*s, 5000, 0, 20500, 0))
	h.tick(70, vm("a", 11*s, 15000, 0, 20500, 0))
	h.expect("a", NetInBytes, []int{10, 30, 40, 50, 70}, []float64{100, 1000, 1000, 1000, 1000})
	h.expect("a", CPUPercent, []int{10, 30, 40, 50, 60, 70}, []float64{50, 10, 10, 10, 10, 10})

	// Unreported things give no samples: VCPUs 0, CPUTime 0, memory.
	b := vm("b", 0, 0, 0, 0, 0)
	b.MemUnusedKiB = 0
	h.tick(80, b)
	b.VCPUs, b.NetRxBytes = 0, 100
	h.tick(90, b)
	h.tick(100, b)
	for _, m := range []string{CPUPercent, MemoryUsedBytes} {
		if _, ok := h.store.Last(VMObject("b"), m); ok {
			t.Errorf("b has %s samples", m)
		}
	}
	h.expect("b", NetInBytes, []int{90, 100}, []float64{10, 0})
	c := vm("c", 5*s, 0, 0, 0, 0)
	c.VCPUs = 0
	h.tick(110, c)
	h.tick(120, c)
	if _, ok := h.store.Last(VMObject("c"), CPUPercent); ok {
		t.Error("CPU sample without VCPUs")
	}
}

func TestCollectorStoppedGoneAndErrors(t *testing.T) {
	h := newHarness(t)
	s := time.Second
	h.tick(0, vm("a", 10*s, 0, 0, 0, 0), vm("b", 10*s, 0, 0, 0, 0))
	h.tick(10, vm("a", 20*s, 0, 0, 0, 0), vm("b", 20*s, 0, 0, 0, 0))

	// a stops, b is gone: no samples, baselines dropped.
	stopped := vm("a", 0, 0, 0, 0, 0)
	stopped.Running = false
	h.tick(20, stopped)
	if len(h.c.base) != 0 {
		t.Errorf("baselines left: %v", h.c.base)
	}
	// Both come back with higher counters: first tick is a baseline again.
	h.tick(30, vm("a", 30*s, 0, 0, 0, 0), vm("b", 40*s, 0, 0, 0, 0))
	h.tick(40, vm("a", 40*s, 0, 0, 0, 0), vm("b", 50*s, 0, 0, 0, 0))
	h.expect("a", CPUPercent, []int{10, 40}, []float64{50, 50})
	h.expect("b", CPUPercent, []int{10, 40}, []float64{50, 50})

	// A failed tick changes nothing; the next rate spans the gap.
	h.src.err = hypervisor.ErrUnavailable
	h.clock.set(at(50))
	err := h.c.Tick(context.Background())
	if !errors.Is(err, hypervisor.ErrUnavailable) {
		t.Fatalf("Tick error = %v, want ErrUnavailable wrapped", err)
	}
	h.src.err = nil
	h.tick(60, vm("a", 60*s, 0, 0, 0, 0))
	h.expect("a", CPUPercent, []int{10, 40, 60}, []float64{50, 50, 50})

	// The series of the gone b stay until the retention passes.
	if got := h.store.Objects(VMPrefix); !slices.Equal(got, []string{"vm/a", "vm/b"}) {
		t.Errorf("Objects = %v", got)
	}
	h.tick(40+3600+1, vm("a", 70*s, 0, 0, 0, 0))
	if got := h.store.Objects(VMPrefix); !slices.Equal(got, []string{"vm/a"}) {
		t.Errorf("Objects after retention = %v", got)
	}

	// The clock not moving gives no sample and keeps the baseline.
	_, before := h.series("a", CPUPercent)
	h.tick(40+3600+1, vm("a", 80*s, 0, 0, 0, 0))
	h.tick(40+3600+11, vm("a", 90*s, 0, 0, 0, 0))
	_, after := h.series("a", CPUPercent)
	if len(after) != len(before)+1 || after[len(after)-1] != 100 {
		t.Errorf("samples %v after a zero-length tick, then %v", before, after)
	}
}

// TestCollectorFakeDriver drives the collector with the fake hypervisor.
func TestCollectorFakeDriver(t *testing.T) {
	ctx := context.Background()
	d := fake.New()
	spec := hypervisor.DomainSpec{
		Name: "web-0", VCPUs: 4, MemoryMiB: 512,
		Disks: []hypervisor.Disk{{Path: "/d/web-0.qcow2", Format: "qcow2", Target: "vda"}},
		NICs:  []hypervisor.NIC{{Network: "n"}},
	}
	if err := d.Define(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "web-0"); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: t0}
	store := NewStore(time.Hour)
	c := NewCollector(d, store, 10*time.Second, clk.Now)
	for i, cpu := range []time.Duration{time.Second, 21 * time.Second} {
		d.SetStats("web-0", hypervisor.DomainStats{VCPUs: 4, CPUTime: cpu})
		clk.set(at(10 * i))
		if err := c.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s, ok := store.Last(VMObject("web-0"), CPUPercent); !ok || s.Value != 50 {
		t.Errorf("CPU = %+v, %v; want 50", s, ok)
	}
	if !slices.Contains(d.Calls(), "AllStats") {
		t.Error("AllStats not called")
	}
}

func TestCollectorRun(t *testing.T) {
	src := &source{err: errors.New("boom")}
	store := NewStore(time.Minute)
	c := NewCollector(src, store, 2*time.Millisecond, nil)
	var mu sync.Mutex
	var errs int
	c.OnError = func(err error) {
		mu.Lock()
		errs++
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := errs
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not tick")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	src.mu.Lock()
	calls := src.calls
	src.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if calls < errs || calls > errs+1 {
		t.Errorf("%d AllStats calls for %d failed ticks", calls, errs)
	}
	if store.interval != 2*time.Millisecond {
		t.Errorf("store interval = %v, want the collector's", store.interval)
	}
}
