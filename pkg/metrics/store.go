package metrics

import (
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultInterval is the sample spacing a Store sizes its rings for until
// SetInterval (or NewCollector) says otherwise.
const DefaultInterval = 10 * time.Second

// Store keeps time series in memory, each a bounded ring of samples no
// older than its retention. Series are keyed by (object, metric), e.g.
// ("vm/web-0", "cpu_percent"). Safe for concurrent use.
//
// Memory bound: a series holds at most n + n/32 + 2 samples, n =
// retention/interval, where interval is the spacing of the samples its
// writer adds (SetInterval; NewCollector sets it). n+1 samples span the
// retention exactly; the slack absorbs ticks that come early. Once a series
// is full its oldest sample is overwritten, whatever the sample times, so a
// writer adding faster than the interval keeps less than the retention. A
// ring's buffer starts at 4 samples and doubles up to that limit, so short
// series stay small.
//
// A sample takes 16 bytes (Unix nanoseconds and a float64; a Sample, with
// its time.Time, would take 32). TestMemoryPerSample measures 200 VMs with
// the Collector's six metrics, 1 h at 10 s (373 samples a series): 16 bytes
// per sample plus about 240 bytes per series (map entries, ring header),
// 16.6 bytes per sample all in, about 37 KB per VM.
type Store struct {
	mu        sync.RWMutex
	retention time.Duration
	interval  time.Duration
	limit     int                         // ringLimit(retention, interval)
	objects   map[string]map[string]*ring // object → metric → series
	clock     func() time.Time            // for Load; time.Now outside tests
}

// NewStore returns an empty store keeping retention of history per series
// (an hour when retention <= 0), its rings sized for DefaultInterval until
// SetInterval.
func NewStore(retention time.Duration) *Store {
	if retention <= 0 {
		retention = time.Hour
	}
	return &Store{
		retention: retention,
		interval:  DefaultInterval,
		limit:     ringLimit(retention, DefaultInterval),
		objects:   map[string]map[string]*ring{},
		clock:     time.Now,
	}
}

// ringLimit is the most samples a series keeps (see Store).
func ringLimit(retention, interval time.Duration) int {
	n := int(retention / interval)
	return n + n/32 + 2
}

// Retention returns how much history each series keeps.
func (s *Store) Retention() time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.retention
}

// SetRetention sets how much history each series keeps: the longest window
// in use (d <= 0 is ignored). Shrinking it drops, at once, the samples
// older than the new retention before each series' newest sample and
// shrinks the rings; growing it lets series keep more from now on.
func (s *Store) SetRetention(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retention = d
	s.resizeLocked()
}

// SetInterval sets the spacing of the samples writers add (d <= 0 is
// ignored), which sizes the rings: see Store. NewCollector calls it with
// its interval. Series that hold more than the new limit lose their oldest
// samples.
func (s *Store) SetInterval(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interval = d
	s.resizeLocked()
}

// Interval returns the sampling interval the rings are sized for: callers
// adding samples of their own should add at most one per interval.
func (s *Store) Interval() time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.interval
}

// resizeLocked applies s.retention and s.interval to every series.
func (s *Store) resizeLocked() {
	s.limit = ringLimit(s.retention, s.interval)
	for _, m := range s.objects {
		for _, r := range m {
			if r.n > 0 {
				r.dropBefore(r.last().t - int64(s.retention))
			}
			r.fit(s.limit)
		}
	}
}

// Add records v for (object, metric) at time at. Samples are kept in time
// order: one older than the series' newest is inserted in place (a linear
// cost), and adding one trims the series to the retention before its
// newest sample. A sample already older than that, a zero at, and a NaN
// or infinite v are ignored.
func (s *Store) Add(object, metric string, at time.Time, v float64) {
	if at.IsZero() || math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	p := point{t: at.UnixNano(), v: v}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(object, metric, p)
}

// addLocked is Add under s.mu.
func (s *Store) addLocked(object, metric string, p point) {
	m := s.objects[object]
	if m == nil {
		m = map[string]*ring{}
		s.objects[object] = m
	}
	r := m[metric]
	if r == nil {
		r = &ring{}
		m[metric] = r
	}
	if r.n > 0 {
		newest := max(r.last().t, p.t)
		cut := newest - int64(s.retention)
		if p.t < cut {
			return
		}
		r.dropBefore(cut)
	}
	r.insert(p, s.limit)
}

// Range returns the samples of (object, metric) with from <= At < to,
// oldest first; nil when there are none. At is in the local time zone.
func (s *Store) Range(object, metric string, from, to time.Time) []Sample {
	if !from.Before(to) {
		return nil
	}
	f, t := from.UnixNano(), to.UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.objects[object][metric]
	if r == nil {
		return nil
	}
	i := r.search(func(q point) bool { return q.t >= f })
	j := r.search(func(q point) bool { return q.t >= t })
	if i >= j {
		return nil
	}
	out := make([]Sample, j-i)
	for k := range out {
		p := r.at(i + k)
		out[k] = Sample{At: time.Unix(0, p.t), Value: p.v}
	}
	return out
}

// Last returns the newest sample of (object, metric), false when the
// series is empty or unknown.
func (s *Store) Last(object, metric string) (Sample, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.objects[object][metric]
	if r == nil || r.n == 0 {
		return Sample{}, false
	}
	p := r.last()
	return Sample{At: time.Unix(0, p.t), Value: p.v}, true
}

// Objects returns, sorted, the objects whose name starts with prefix ("" for
// all) and that have at least one sample.
func (s *Store) Objects(prefix string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for o, m := range s.objects {
		if strings.HasPrefix(o, prefix) && len(m) > 0 {
			out = append(out, o)
		}
	}
	sort.Strings(out)
	return out
}

// Forget drops every series of object.
func (s *Store) Forget(object string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, object)
}

// Prune drops the samples older than now minus the retention from every
// series, and the series (and objects) left empty: the history of a VM that
// is gone ends there. The Collector calls it after every tick.
func (s *Store) Prune(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := now.Add(-s.retention).UnixNano()
	for o, m := range s.objects {
		for name, r := range m {
			r.dropBefore(cut)
			if r.n == 0 {
				delete(m, name)
			}
		}
		if len(m) == 0 {
			delete(s.objects, o)
		}
	}
}

// MetricsOf returns the names of the metrics object has series of, sorted.
func (s *Store) MetricsOf(object string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.objects[object]))
	for m := range s.objects[object] {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
