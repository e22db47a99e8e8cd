package metrics

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRingModel checks ring against a sorted slice: random times (mostly
// increasing, some older), random limits, trims and fits.
func TestRingModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		limit := 1 + rng.IntN(20)
		var r ring
		var model []point
		now := int64(0)
		for step := 0; step < 300; step++ {
			switch op := rng.IntN(20); {
			case op < 14: // append-ish
				now += int64(rng.IntN(3))
				p := point{t: now, v: float64(step)}
				r.insert(p, limit)
				model = modelInsert(model, p, limit)
			case op < 18: // older sample
				p := point{t: now - int64(rng.IntN(30)), v: float64(step)}
				r.insert(p, limit)
				model = modelInsert(model, p, limit)
			case op < 19:
				cut := now - int64(rng.IntN(20))
				r.dropBefore(cut)
				i := 0
				for i < len(model) && model[i].t < cut {
					i++
				}
				model = model[i:]
			default:
				limit = 1 + rng.IntN(20)
				r.fit(limit)
				if len(model) > limit {
					model = model[len(model)-limit:]
				}
			}
			if len(r.buf) > limit {
				t.Fatalf("round %d step %d: buffer %d over limit %d", round, step, len(r.buf), limit)
			}
			got := make([]point, r.n)
			for i := range got {
				got[i] = r.at(i)
			}
			if !slices.Equal(got, model) {
				t.Fatalf("round %d step %d (limit %d):\n got %v\nwant %v", round, step, limit, got, model)
			}
		}
	}
}

// modelInsert is ring.insert on a plain slice.
func modelInsert(m []point, p point, limit int) []point {
	pos := len(m)
	for pos > 0 && m[pos-1].t > p.t {
		pos--
	}
	if len(m) >= limit {
		if pos == 0 {
			return m
		}
		m = m[1:]
		pos--
	}
	return slices.Insert(slices.Clone(m), pos, p)
}
