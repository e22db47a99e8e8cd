package fake

import (
	"context"

	"github.com/galevm/gale/pkg/hypervisor"
)

// SetStats scripts the counters AllStats reports for the named domain
// (s.Name is ignored). It may precede Define; stats of a domain that does
// not exist are kept but not reported. A later SetStats replaces them.
func (d *Driver) SetStats(name string, s hypervisor.DomainStats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stats == nil {
		d.stats = map[string]hypervisor.DomainStats{}
	}
	d.stats[name] = s
}

// ClearStats drops the scripted counters of the named domain.
func (d *Driver) ClearStats(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.stats, name)
}

// AllStats returns one entry per existing domain, in definition order, in
// one call (recorded once in Calls, failing as a whole like every fake
// call). Name and Running come from the domain; the counters are those of
// SetStats, or zero with VCPUs from the domain's definition when none were
// set.
func (d *Driver) AllStats(ctx context.Context) ([]hypervisor.DomainStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enter(ctx, "AllStats"); err != nil {
		return nil, err
	}
	out := make([]hypervisor.DomainStats, 0, len(d.order))
	for _, n := range d.order {
		dom := d.domains[n].dom
		s, ok := d.stats[n]
		if !ok {
			s = hypervisor.DomainStats{VCPUs: dom.VCPUs}
		}
		s.Name = n
		s.Running = dom.State == hypervisor.StateRunning
		out = append(out, s)
	}
	return out, nil
}
