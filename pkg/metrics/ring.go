package metrics

import "sort"

// point is the stored form of a sample: Unix nanoseconds and the value,
// 16 bytes (a Sample, with its time.Time, takes 32).
type point struct {
	t int64
	v float64
}

// ring is a series' samples in time order, oldest first, in a circular
// buffer. The buffer grows by doubling up to the limit it is given and then
// overwrites its oldest sample, so a series never holds more than that
// limit. The zero value is an empty ring.
type ring struct {
	buf   []point
	start int // index in buf of the oldest sample
	n     int // number of samples
}

// at returns the i-th oldest sample, 0 <= i < r.n.
func (r *ring) at(i int) point {
	j := r.start + i
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	return r.buf[j]
}

// set replaces the i-th oldest sample.
func (r *ring) set(i int, p point) {
	j := r.start + i
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	r.buf[j] = p
}

// last returns the newest sample; r.n must be > 0.
func (r *ring) last() point { return r.at(r.n - 1) }

// resize reallocates the buffer to size (>= r.n), oldest sample first.
func (r *ring) resize(size int) {
	buf := make([]point, size)
	for i := 0; i < r.n; i++ {
		buf[i] = r.at(i)
	}
	r.buf, r.start = buf, 0
}

// makeRoom makes room for one more sample within limit (>= 1). It returns
// false when the ring is full at limit: the caller must drop one.
func (r *ring) makeRoom(limit int) bool {
	if r.n < len(r.buf) {
		return true
	}
	if len(r.buf) >= limit {
		return false
	}
	r.resize(min(max(2*len(r.buf), 4), limit))
	return true
}

// dropOldest removes the oldest k samples (k <= r.n).
func (r *ring) dropOldest(k int) {
	if k <= 0 {
		return
	}
	r.n -= k
	if r.n == 0 {
		r.start = 0
		return
	}
	r.start = (r.start + k) % len(r.buf)
}

// insert adds p in time order (after samples of the same time) keeping at
// most limit samples: when full, the oldest goes, or p itself when it is
// older than every sample.
func (r *ring) insert(p point, limit int) {
	if r.n == 0 || p.t >= r.last().t { // the common case: append
		if !r.makeRoom(limit) {
			r.dropOldest(1)
		}
		j := r.start + r.n
		if j >= len(r.buf) {
			j -= len(r.buf)
		}
		r.buf[j] = p
		r.n++
		return
	}
	pos := r.search(func(q point) bool { return q.t > p.t })
	if !r.makeRoom(limit) {
		if pos == 0 {
			return
		}
		r.dropOldest(1)
		pos--
	}
	r.n++
	for i := r.n - 1; i > pos; i-- {
		r.set(i, r.at(i-1))
	}
	r.set(pos, p)
}

// search returns the smallest index i in [0, r.n] for which f(at(i)) is
// true, f being false then true over the ring (sort.Search).
func (r *ring) search(f func(point) bool) int {
	return sort.Search(r.n, func(i int) bool { return f(r.at(i)) })
}

// dropBefore removes the samples older than t (Unix nanoseconds).
func (r *ring) dropBefore(t int64) {
	if r.n == 0 || r.at(0).t >= t { // the common case: nothing to drop
		return
	}
	r.dropOldest(r.search(func(q point) bool { return q.t >= t }))
}

// fit shrinks the ring to at most limit samples (dropping the oldest) and
// its buffer to limit when it is larger.
func (r *ring) fit(limit int) {
	if r.n > limit {
		r.dropOldest(r.n - limit)
	}
	if len(r.buf) > limit {
		r.resize(limit)
	}
}
