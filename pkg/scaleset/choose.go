package scaleset

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/api"
)

// member is one instance as the controller sees it in one pass: its row,
// its VM (nil when the VM is gone) and what the controller makes of it.
type member struct {
	Name      string
	Ordinal   int
	Version   int
	Protect   []string
	Phase     string // store.PhaseCreating, PhaseDeleting or ""
	CreatedAt time.Time
	// RepairedAt is when it was last repaired (zero if never).
	RepairedAt time.Time
	VM         *api.VM
	Health     string // api.Health*
	Detail     string
	Address    string
	// Busy names the work in flight on it (create, delete, repair), if any.
	Busy string
}

func (m member) protected(p string) bool { return slices.Contains(m.Protect, p) }

// active reports whether m counts towards the set's capacity: it is not
// leaving.
func (m member) active() bool {
	return m.Phase != phaseDeleting && m.Busy != busyDelete && m.Health != api.HealthDraining
}

// scaleInVictims picks n members to remove by policy among the active
// ones that are not protected from scale-in (or from set actions):
//   - default: unhealthy (or still creating) first, then the highest ordinal;
//   - oldest: the oldest first; newest: the newest first.
//
// It returns fewer than n when protection leaves fewer candidates.
func scaleInVictims(members []member, n int, policy string) []member {
	var cands []member
	for _, m := range members {
		if m.active() && m.Busy == "" && !m.protected(api.ProtectScaleIn) && !m.protected(api.ProtectSetActions) {
			cands = append(cands, m)
		}
	}
	rank := func(m member) int {
		switch m.Health {
		case api.HealthUnhealthy:
			return 0
		case api.HealthCreating, api.HealthUnknown:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(cands, func(a, b member) int {
		switch policy {
		case api.ScaleInOldest:
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Ordinal, b.Ordinal))
		case api.ScaleInNewest:
			return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.Ordinal, a.Ordinal))
		}
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(b.Ordinal, a.Ordinal))
	})
	return cands[:min(n, len(cands))]
}

// repairPlan says which members to repair now: unhealthy, idle, not
// protected from set actions, and past their grace period (counted from
// creation or the last repair). At most maxAtOnce repairs run at a time
// (running counts those already under way). When more than half of the
// set is unhealthy, nothing is repaired: suspended is true.
func repairPlan(members []member, now time.Time, grace time.Duration, running, maxAtOnce int) (repair []member, suspended bool) {
	active, unhealthy := 0, 0
	for _, m := range members {
		if !m.active() {
			continue
		}
		active++
		if m.Health == api.HealthUnhealthy {
			unhealthy++
		}
	}
	if unhealthy == 0 {
		return nil, false
	}
	if active >= 2 && unhealthy*2 > active {
		return nil, true
	}
	for _, m := range members {
		if running+len(repair) >= maxAtOnce {
			break
		}
		if !m.active() || m.Busy != "" || m.Health != api.HealthUnhealthy || m.protected(api.ProtectSetActions) {
			continue
		}
		since := m.CreatedAt
		if m.RepairedAt.After(since) {
			since = m.RepairedAt
		}
		if now.Sub(since) < grace {
			continue
		}
		repair = append(repair, m)
	}
	return repair, false
}

// maxRepairs is how many repairs may run at once in a set of capacity:
// a fifth of it, at least one.
func maxRepairs(capacity int) int { return max(1, capacity/5) }

// batchSize resolves an upgrade batch ("2" or "34%") against capacity; the
// result is at least 1. An empty batch is 20%.
func batchSize(batch string, capacity int) (int, error) {
	if batch == "" {
		batch = "20%"
	}
	if p, ok := strings.CutSuffix(batch, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 {
			return 0, fmt.Errorf("batch %q: a percentage must be 1%%-100%%", batch)
		}
		return max(1, (capacity*n+99)/100), nil
	}
	n, err := strconv.Atoi(batch)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("batch %q: want a count (2) or a percentage (34%%)", batch)
	}
	return n, nil
}

// outdated returns the active members on a version older than latest that
// an upgrade may replace, unhealthy ones first, then by ordinal.
func outdated(members []member, latest int) []member {
	var out []member
	for _, m := range members {
		if m.active() && m.Version < latest && !m.protected(api.ProtectSetActions) {
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b member) int {
		ua, ub := a.Health != api.HealthHealthy, b.Health != api.HealthHealthy
		if ua != ub {
			if ua {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Ordinal, b.Ordinal)
	})
	return out
}

// freeOrdinals returns the n lowest ordinals no member (or reserved
// ordinal) uses.
func freeOrdinals(members []member, reserved map[int]bool, n int) []int {
	used := map[int]bool{}
	for _, m := range members {
		used[m.Ordinal] = true
	}
	var out []int
	for i := 0; len(out) < n; i++ {
		if !used[i] && !reserved[i] {
			out = append(out, i)
		}
	}
	return out
}

// backends returns the members that belong in the load balancer's map:
// healthy, with an address, not leaving.
func backends(members []member) []member {
	var out []member
	for _, m := range members {
		if m.Health == api.HealthHealthy && m.Address != "" && m.active() {
			out = append(out, m)
		}
	}
	return out
}
