package metrics

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// values returns the values of samples.
func values(ss []Sample) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = s.Value
	}
	return out
}

// secs returns the sample times as seconds after t0.
func secs(ss []Sample) []int {
	out := make([]int, len(ss))
	for i, s := range ss {
		out[i] = int(s.At.Sub(t0) / time.Second)
	}
	return out
}

func TestRangeBoundaries(t *testing.T) {
	s := NewStore(time.Hour)
	for i := 0; i < 10; i++ {
		s.Add("vm/a", CPUPercent, at(10*i), float64(i))
	}
	cases := []struct {
		name     string
		from, to time.Time
		want     []int
	}{
		{"inclusive from, exclusive to", at(20), at(50), []int{20, 30, 40}},
		{"between samples", at(21), at(49), []int{30, 40}},
		{"everything", at(-1000), at(1000), []int{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}},
		{"to at first sample", at(-10), at(0), nil},
		{"from at last sample", at(90), at(91), []int{90}},
		{"after the end", at(91), at(200), nil},
		{"empty window", at(30), at(30), nil},
		{"reversed window", at(50), at(20), nil},
	}
	for _, c := range cases {
		got := s.Range("vm/a", CPUPercent, c.from, c.to)
		if !slices.Equal(secs(got), c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s: got %v, want %v", c.name, secs(got), c.want)
		}
		if len(c.want) == 0 && got != nil {
			t.Errorf("%s: got %v, want nil", c.name, got)
		}
	}
	if got := s.Range("vm/a", "nope", at(0), at(100)); got != nil {
		t.Errorf("unknown metric: %v", got)
	}
	if got := s.Range("vm/b", CPUPercent, at(0), at(100)); got != nil {
		t.Errorf("unknown object: %v", got)
	}
	got := s.Range("vm/a", CPUPercent, at(0), at(1))
	if len(got) != 1 || !got[0].At.Equal(t0) || got[0].Value != 0 {
		t.Errorf("first sample = %+v", got)
	}
}

func TestAddOutOfOrderAndInvalid(t *testing.T) {
	s := NewStore(time.Hour)
	for _, n := range []int{30, 10, 20, 40, 10} {
		s.Add("o", "m", at(n), float64(n))
	}
	s.Add("o", "m", at(50), math.NaN())
	s.Add("o", "m", at(50), math.Inf(1))
	s.Add("o", "m", time.Time{}, 1)
	got := s.Range("o", "m", at(0), at(100))
	if want := []int{10, 10, 20, 30, 40}; !slices.Equal(secs(got), want) {
		t.Errorf("times = %v, want %v", secs(got), want)
	}
	if last, ok := s.Last("o", "m"); !ok || !last.At.Equal(at(40)) || last.Value != 40 {
		t.Errorf("Last = %+v, %v", last, ok)
	}
	if _, ok := s.Last("o", "other"); ok {
		t.Error("Last of unknown series reported a sample")
	}
}

func TestRetentionTrimming(t *testing.T) {
	s := NewStore(time.Minute) // interval 10 s: limit 6+0+2 = 8 samples
	for i := 0; i <= 19; i++ {
		s.Add("o", "m", at(10*i), float64(i))
	}
	// Kept: no older than 60 s before the newest (190): 130..190.
	if got := secs(s.Range("o", "m", at(0), at(1000))); !slices.Equal(got, []int{130, 140, 150, 160, 170, 180, 190}) {
		t.Errorf("kept %v", got)
	}
	s.Add("o", "m", at(120), 1) // older than the retention: ignored
	if got := s.Range("o", "m", at(0), at(130)); got != nil {
		t.Errorf("stale sample kept: %v", got)
	}

	// The ring limit holds even when samples come faster than the interval.
	for i := 0; i < 100; i++ {
		s.Add("fast", "m", at(i), float64(i))
	}
	if got := secs(s.Range("fast", "m", at(0), at(1000))); !slices.Equal(got, []int{92, 93, 94, 95, 96, 97, 98, 99}) {
		t.Errorf("fast series kept %v", got)
	}
	if r := s.objects["fast"]["m"]; len(r.buf) != 8 {
		t.Errorf("ring buffer = %d samples, want the limit 8", len(r.buf))
	}

	// Shrinking retention drops at once; growing keeps more afterwards.
	s.SetRetention(30 * time.Second)
	if got := secs(s.Range("o", "m", at(0), at(1000))); !slices.Equal(got, []int{160, 170, 180, 190}) {
		t.Errorf("after shrinking to 30s: %v", got)
	}
	if r := s.objects["o"]["m"]; len(r.buf) > ringLimit(30*time.Second, DefaultInterval) {
		t.Errorf("ring not shrunk: %d", len(r.buf))
	}
	s.SetRetention(2 * time.Minute)
	for i := 20; i < 40; i++ {
		s.Add("o", "m", at(10*i), float64(i))
	}
	if got := s.Range("o", "m", at(0), at(1000)); len(got) != 13 || secs(got)[0] != 270 {
		t.Errorf("after growing to 2m: %v", secs(got))
	}
	if s.Retention() != 2*time.Minute {
		t.Errorf("Retention = %v", s.Retention())
	}

	// A shorter interval means larger rings; a longer one smaller.
	s.SetInterval(time.Second)
	for i := 0; i < 200; i++ {
		s.Add("dense", "m", at(1000+i), 1)
	}
	if got := s.Range("dense", "m", at(0), at(2000)); len(got) != 121 {
		t.Errorf("1 s interval kept %d samples, want 121", len(got))
	}
	s.SetInterval(time.Minute)
	if got := s.Range("dense", "m", at(0), at(2000)); len(got) != ringLimit(2*time.Minute, time.Minute) {
		t.Errorf("after SetInterval(1m) kept %d samples", len(got))
	}
}

func TestObjectsForgetPrune(t *testing.T) {
	s := NewStore(time.Minute)
	for _, o := range []string{"vm/b", "vm/a", "lb/x", "vm/c"} {
		s.Add(o, CPUPercent, at(0), 1)
		s.Add(o, NetInBytes, at(0), 1)
	}
	s.Add("vm/c", CPUPercent, at(100), 2)
	if got := s.Objects("vm/"); !slices.Equal(got, []string{"vm/a", "vm/b", "vm/c"}) {
		t.Errorf("Objects(vm/) = %v", got)
	}
	if got := s.Objects(""); len(got) != 4 {
		t.Errorf("Objects() = %v", got)
	}
	s.Forget("vm/b")
	if got := s.Objects("vm/"); !slices.Equal(got, []string{"vm/a", "vm/c"}) {
		t.Errorf("after Forget: %v", got)
	}
	if got := s.Range("vm/b", CPUPercent, at(-10), at(10)); got != nil {
		t.Errorf("forgotten series: %v", got)
	}
	// At 100 s, with 60 s of retention, only vm/c's newest sample is left.
	s.Prune(at(100))
	if got := s.Objects(""); !slices.Equal(got, []string{"vm/c"}) {
		t.Errorf("after Prune: %v", got)
	}
	if got := s.Range("vm/c", CPUPercent, at(0), at(1000)); !slices.Equal(values(got), []float64{2}) {
		t.Errorf("vm/c after Prune: %v", got)
	}
	if _, ok := s.Last("vm/c", NetInBytes); ok {
		t.Error("pruned series still has a sample")
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.gob")

	s := NewStore(10 * time.Minute)
	for i := 0; i < 60; i++ { // 0..590 s
		s.Add("vm/a", CPUPercent, at(10*i), float64(i)+0.25)
		s.Add("vm/b", MemoryUsedBytes, at(10*i), float64(i<<20))
	}
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("Save left %d files, want 1: %v", len(entries), entries)
	}
	if fi, err := os.Stat(path); err == nil {
		t.Logf("120 samples in %d bytes", fi.Size())
	}

	// Restarted 2 min after the last sample, with 5 min of retention:
	// samples from 590+120-300 = 410 s on are kept.
	r := NewStore(5 * time.Minute)
	r.clock = func() time.Time { return at(590 + 120) }
	r.Add("vm/a", CPUPercent, at(700), 99) // collected before Load: merged
	if err := r.Load(path); err != nil {
		t.Fatal(err)
	}
	got := r.Range("vm/a", CPUPercent, at(0), at(1000))
	if len(got) != 20 || secs(got)[0] != 410 || secs(got)[18] != 590 || got[19].Value != 99 {
		t.Errorf("vm/a after Load: %v %v", secs(got), values(got))
	}
	for i, smp := range got[:19] {
		if want := s.Range("vm/a", CPUPercent, smp.At, smp.At.Add(time.Nanosecond)); len(want) != 1 || want[0].Value != smp.Value {
			t.Errorf("sample %d = %+v, saved %+v", i, smp, want)
		}
	}
	if got := r.Range("vm/b", MemoryUsedBytes, at(0), at(1000)); len(got) != 19 || got[18].Value != float64(59<<20) {
		t.Errorf("vm/b after Load: %v", secs(got))
	}

	// Everything too old: nothing loaded.
	old := NewStore(time.Minute)
	old.clock = func() time.Time { return at(10000) }
	if err := old.Load(path); err != nil || len(old.Objects("")) != 0 {
		t.Errorf("stale Load: %v, %v", old.Objects(""), err)
	}

	// Missing file: not an error. Garbage: an error, nothing added.
	if err := NewStore(time.Minute).Load(filepath.Join(dir, "none")); err != nil {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not gob"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := NewStore(time.Minute)
	if err := e.Load(bad); err == nil || !strings.Contains(err.Error(), "load metrics") {
		t.Errorf("garbage file: err = %v", err)
	}
	// Save into a missing directory fails and leaves nothing.
	if err := s.Save(filepath.Join(dir, "no", "such", "dir", "m")); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
	// Saving over an existing file replaces it.
	s.Forget("vm/b")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	n := NewStore(10 * time.Minute)
	n.clock = func() time.Time { return at(600) }
	if err := n.Load(path); err != nil || !slices.Equal(n.Objects(""), []string{"vm/a"}) {
		t.Errorf("after overwrite: %v, %v", n.Objects(""), err)
	}
}

func TestConcurrentAddRange(t *testing.T) {
	s := NewStore(time.Minute)
	path := filepath.Join(t.TempDir(), "m")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			obj := VMObject(string(rune('a' + w)))
			for i := 0; i < 2000; i++ {
				s.Add(obj, CPUPercent, at(i), float64(i))
				s.Add(obj, NetInBytes, at(i), float64(i))
			}
		}(w)
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, o := range s.Objects(VMPrefix) {
					got := s.Range(o, CPUPercent, at(0), at(3000))
					for i := 1; i < len(got); i++ {
						if got[i].At.Before(got[i-1].At) {
							t.Errorf("unsorted range for %s", o)
							return
						}
					}
					s.Last(o, NetInBytes)
				}
				s.Prune(at(0))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5; i++ {
			if err := s.Save(path); err != nil {
				t.Error(err)
			}
			s.SetRetention(time.Duration(30+i) * time.Second)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
}

// TestMemoryPerSample measures what the Store doc comment states: 200 VMs
// with the six metrics of the Collector, full series of 1 h at 10 s.
func TestMemoryPerSample(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~8 MB")
	}
	const vms = 200
	metrics := []string{CPUPercent, NetInBytes, NetOutBytes, DiskReadBytes, DiskWriteBytes, MemoryUsedBytes}
	limit := ringLimit(time.Hour, DefaultInterval)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewStore(time.Hour)
	for i := 0; i < vms; i++ {
		obj := VMObject(fmt.Sprintf("web-%03d", i))
		for _, m := range metrics {
			for j := 0; j < limit+10; j++ {
				s.Add(obj, m, t0.Add(time.Duration(j)*DefaultInterval/2), float64(j))
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	series := vms * len(metrics)
	samples := series * limit
	total := float64(after.HeapAlloc - before.HeapAlloc)
	overhead := (total - float64(samples)*16) / float64(series)
	t.Logf("%d VMs, %d series × %d samples: %.0f bytes = %.2f bytes/sample all in; %.0f bytes/VM; 16 bytes/sample + %.0f bytes/series",
		vms, series, limit, total, total/float64(samples), total/vms, overhead)
	if overhead > 400 || overhead < 0 {
		t.Errorf("per-series overhead %.0f bytes beyond 16 bytes per sample, want 0..400", overhead)
	}
}
