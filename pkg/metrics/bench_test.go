package metrics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

// BenchmarkStoreAdd adds one sample per op to 100 VMs × 6 metrics in turn,
// every series full (1 h at 10 s): the Collector's steady state.
func BenchmarkStoreAdd(b *testing.B) {
	s := NewStore(time.Hour)
	metrics := []string{CPUPercent, NetInBytes, NetOutBytes, DiskReadBytes, DiskWriteBytes, MemoryUsedBytes}
	objs := make([]string, 100)
	for i := range objs {
		objs[i] = VMObject(fmt.Sprintf("web-%03d", i))
	}
	series := len(objs) * len(metrics)
	tick := 0
	add := func(i int) {
		if i%series == 0 {
			tick++
		}
		k := i % series
		s.Add(objs[k/len(metrics)], metrics[k%len(metrics)], t0.Add(time.Duration(tick)*DefaultInterval), float64(i))
	}
	for i := 0; i < series*ringLimit(time.Hour, DefaultInterval); i++ {
		add(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		add(i)
	}
}

// BenchmarkRange reads windows of a full series (1 h at 10 s).
func BenchmarkRange(b *testing.B) {
	s := NewStore(time.Hour)
	n := ringLimit(time.Hour, DefaultInterval) + 100
	for i := 0; i < n; i++ {
		s.Add("vm/web-0", CPUPercent, t0.Add(time.Duration(i)*DefaultInterval), float64(i))
	}
	end := t0.Add(time.Duration(n) * DefaultInterval)
	for _, w := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour} {
		b.Run(w.String(), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if got := s.Range("vm/web-0", CPUPercent, end.Add(-w), end); len(got) == 0 {
					b.Fatal("empty range")
				}
			}
		})
	}
}

// BenchmarkCollectorTick is one tick over 200 running VMs (the source's
// copy of the stats included).
func BenchmarkCollectorTick(b *testing.B) {
	src := &source{}
	stats := make([]hypervisor.DomainStats, 200)
	names := make([]string, len(stats))
	for j := range names {
		names[j] = fmt.Sprintf("web-%03d", j)
	}
	clk := &clock{now: t0}
	c := NewCollector(src, NewStore(time.Hour), DefaultInterval, clk.Now)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for j := range stats {
			u := uint64(i) * 1000
			stats[j] = vm(names[j], time.Duration(i)*time.Second, u, u, u, u)
		}
		src.set(stats...)
		clk.set(t0.Add(time.Duration(i) * DefaultInterval))
		if err := c.Tick(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
