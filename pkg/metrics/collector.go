package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

// StatsSource is where a Collector reads counters: hypervisor.Driver
// satisfies it. AllStats must cost one hypervisor call for all domains.
type StatsSource interface {
	AllStats(ctx context.Context) ([]hypervisor.DomainStats, error)
}

// Collector polls a StatsSource once per interval and turns its cumulative
// counters into rates in a Store, under the object VMObject(name):
//
//   - CPUPercent = ΔCPUTime / (Δwall × VCPUs) × 100, clamped to 0..100;
//   - NetInBytes, NetOutBytes, DiskReadBytes, DiskWriteBytes = Δcounter /
//     Δwall in seconds;
//   - MemoryUsedBytes = (MemAvailableKiB − MemUnusedKiB) × 1024 when the
//     guest reports both (a gauge, not a rate).
//
// Samples are stamped with the clock's time after AllStats returned; Δwall
// is the time since the counter's baseline was taken. The first tick that
// sees a running domain only records its baseline, as does a tick after the
// domain restarted, which shows as CPUTime going down (to a non-zero
// value): all its baselines are reset without samples. A net or disk
// counter that goes down while CPUTime does not (a device removed) resets
// that counter's baseline without a sample; one that drops to zero is taken
// as not reported this time (a busy domain under the libvirt driver's
// NOWAIT) and keeps its baseline, so the next rate spans both intervals. No
// CPU sample is recorded while VCPUs or CPUTime is zero (not reported), and
// no sample at all by a tick whose clock has not moved since the baseline.
//
// A domain that is not running (paused included), or that is gone from
// AllStats, loses its baselines; its series stay until the Store's retention drops them (Prune,
// after every tick) or Forget. A domain that stops and starts again between
// two ticks and has by then used more CPU than before is not detected as
// restarted: that one interval's rates are wrong, and clamped for CPU.
type Collector struct {
	// OnError, when set before Run, receives the error of every tick that
	// fails while Run's ctx is live.
	OnError func(error)

	src      StatsSource
	store    *Store
	interval time.Duration
	clock    func() time.Time

	mu   sync.Mutex // serializes ticks; guards base
	base map[string]*baseline
}

// counter is a counter's value when it was last read.
type counter struct {
	v  uint64
	at time.Time
}

// baseline is a running domain's counters at their last reading.
type baseline struct {
	obj                 string // VMObject(name), kept to spare an allocation a tick
	cpu, rx, tx, rd, wr counter
}

// NewCollector returns a collector that adds to store every interval
// (DefaultInterval when <= 0), reading time from clock (time.Now when nil).
// It sets store's interval (Store.SetInterval), which sizes its rings.
func NewCollector(src StatsSource, store *Store, interval time.Duration, clock func() time.Time) *Collector {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if clock == nil {
		clock = time.Now
	}
	store.SetInterval(interval)
	return &Collector{src: src, store: store, interval: interval, clock: clock, base: map[string]*baseline{}}
}

// Run ticks at once and then once per interval until ctx ends. Each tick
// makes one AllStats call, bounded by the interval; a failed tick keeps the
// baselines, so the next one's rates span the gap.
func (c *Collector) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		tctx, cancel := context.WithTimeout(ctx, c.interval)
		err := c.Tick(tctx)
		cancel()
		if err != nil && ctx.Err() == nil && c.OnError != nil {
			c.OnError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick makes one collection: one AllStats call, samples for the running
// domains that have a baseline, new baselines, and a Store.Prune. On error
// nothing changes. Ticks are serialized.
func (c *Collector) Tick(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	stats, err := c.src.AllStats(ctx)
	if err != nil {
		return fmt.Errorf("collect metrics: %w", err)
	}
	now := c.clock()
	seen := make(map[string]bool, len(stats))
	for i := range stats {
		s := &stats[i]
		seen[s.Name] = true
		if !s.Running {
			delete(c.base, s.Name)
			continue
		}
		b := c.base[s.Name]
		if b == nil || (s.CPUTime > 0 && uint64(s.CPUTime) < b.cpu.v) {
			c.base[s.Name] = newBaseline(s, now)
			continue
		}
		c.record(s, b, now)
	}
	for name := range c.base {
		if !seen[name] {
			delete(c.base, name)
		}
	}
	c.store.Prune(now)
	return nil
}

// newBaseline takes every counter of s at now.
func newBaseline(s *hypervisor.DomainStats, now time.Time) *baseline {
	return &baseline{
		obj: VMObject(s.Name),
		cpu: counter{uint64(s.CPUTime), now},
		rx:  counter{s.NetRxBytes, now},
		tx:  counter{s.NetTxBytes, now},
		rd:  counter{s.BlockRdBytes, now},
		wr:  counter{s.BlockWrBytes, now},
	}
}

// record adds the samples of s against b and moves b forward.
func (c *Collector) record(s *hypervisor.DomainStats, b *baseline, now time.Time) {
	obj := b.obj
	if s.CPUTime > 0 { // zero: not reported
		if d, dt, ok := advance(&b.cpu, uint64(s.CPUTime), now); ok && s.VCPUs > 0 {
			pct := time.Duration(d).Seconds() / (dt.Seconds() * float64(s.VCPUs)) * 100
			c.store.Add(obj, CPUPercent, now, min(max(pct, 0), 100))
		}
	}
	for _, m := range []struct {
		name string
		c    *counter
		v    uint64
	}{
		{NetInBytes, &b.rx, s.NetRxBytes},
		{NetOutBytes, &b.tx, s.NetTxBytes},
		{DiskReadBytes, &b.rd, s.BlockRdBytes},
		{DiskWriteBytes, &b.wr, s.BlockWrBytes},
	} {
		if m.v == 0 && m.c.v > 0 {
			continue // not reported this time
		}
		if d, dt, ok := advance(m.c, m.v, now); ok {
			c.store.Add(obj, m.name, now, float64(d)/dt.Seconds())
		}
	}
	if s.MemAvailableKiB > 0 && s.MemUnusedKiB > 0 && s.MemAvailableKiB >= s.MemUnusedKiB {
		c.store.Add(obj, MemoryUsedBytes, now, float64((s.MemAvailableKiB-s.MemUnusedKiB)*1024))
	}
}

// advance moves c to v at now and returns the increase and the time it
// took. ok is false, with c reset to v at now, when v went down, and false,
// with c unchanged, when no time has passed.
func advance(c *counter, v uint64, now time.Time) (d uint64, dt time.Duration, ok bool) {
	if v < c.v {
		*c = counter{v, now}
		return 0, 0, false
	}
	dt = now.Sub(c.at)
	if dt <= 0 {
		return 0, 0, false
	}
	d = v - c.v
	*c = counter{v, now}
	return d, dt, true
}
