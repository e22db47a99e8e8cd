package libvirt

import (
	"context"
	"fmt"
	"sync"

	lv "libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/galevm/gale/pkg/hypervisor"
)

// listWorkers bounds the concurrent GetXMLDesc calls of List. libvirt's
// remote driver multiplexes calls on one connection, so a few in flight hide
// the round-trip latency.
const listWorkers = 8

// List returns every domain (persistent and transient, running or not).
//
// Calls: one Connect.GetAllDomainStats(nil, DOMAIN_STATS_STATE, 0), which
// both lists all domains and returns their state in a single RPC, then one
// Domain.GetXMLDesc per domain (up to listWorkers in flight) for vCPUs,
// memory, MACs and gale's metadata. When a driver lacks GetAllDomainStats,
// List falls back to one ListAllDomains plus a GetState per domain.
// A domain that disappears between the list and its XML is skipped.
func (d *Driver) List(ctx context.Context) ([]hypervisor.Domain, error) {
	var out []hypervisor.Domain
	err := d.with(ctx, func(c *lv.Connect) error {
		doms, states, err := listWithState(c)
		if err != nil {
			return err
		}
		defer func() {
			for i := range doms {
				_ = doms[i].Free()
			}
		}()
		out, err = describeAll(ctx, doms, states)
		return err
	})
	if err != nil {
		return nil, wrapErr("list domains", err)
	}
	return out, nil
}

// listWithState returns all domains and their states.
func listWithState(c *lv.Connect) ([]*lv.Domain, []lv.DomainState, error) {
	stats, err := c.GetAllDomainStats(nil, lv.DOMAIN_STATS_STATE, 0)
	if err == nil {
		doms := make([]*lv.Domain, len(stats))
		states := make([]lv.DomainState, len(stats))
		for i, s := range stats {
			doms[i] = s.Domain
			states[i] = lv.DOMAIN_NOSTATE
			if s.State != nil && s.State.StateSet {
				states[i] = s.State.State
			}
		}
		return doms, states, nil
	}
	if !isCode(err, lv.ERR_NO_SUPPORT) {
		return nil, nil, err
	}
	list, err := c.ListAllDomains(0)
	if err != nil {
		return nil, nil, err
	}
	doms := make([]*lv.Domain, len(list))
	states := make([]lv.DomainState, len(list))
	for i := range list {
		doms[i] = &list[i]
		st, _, err := doms[i].GetState()
		if err != nil && !isCode(err, lv.ERR_NO_DOMAIN) {
			for j := range list {
				_ = list[j].Free()
			}
			return nil, nil, err
		}
		states[i] = st
	}
	return doms, states, nil
}

// describeAll fetches each domain's XML concurrently and converts it.
// Domains that vanished meanwhile (ERR_NO_DOMAIN) are left out.
func describeAll(ctx context.Context, doms []*lv.Domain, states []lv.DomainState) ([]hypervisor.Domain, error) {
	results := make([]hypervisor.Domain, len(doms))
	found := make([]bool, len(doms))
	errs := make([]error, len(doms))
	var wg sync.WaitGroup
	sem := make(chan struct{}, listWorkers)
	for i := range doms {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			doc, err := doms[i].GetXMLDesc(0)
			if isCode(err, lv.ERR_NO_DOMAIN) {
				return
			}
			if err != nil {
				errs[i] = err
				return
			}
			results[i], errs[i] = domainFromXML(doc, states[i])
			found[i] = errs[i] == nil
		}(i)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]hypervisor.Domain, 0, len(doms))
	for i := range doms {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if found[i] {
			out = append(out, results[i])
		}
	}
	return out, nil
}

// Get returns one domain: LookupDomainByName, GetState and GetXMLDesc.
func (d *Driver) Get(ctx context.Context, name string) (hypervisor.Domain, error) {
	var out hypervisor.Domain
	err := d.withDomain(ctx, name, func(_ *lv.Connect, dom *lv.Domain) error {
		st, _, err := dom.GetState()
		if err != nil {
			return err
		}
		doc, err := dom.GetXMLDesc(0)
		if err != nil {
			return err
		}
		out, err = domainFromXML(doc, st)
		return err
	})
	if err != nil {
		return hypervisor.Domain{}, wrapErr(fmt.Sprintf("get domain %q", name), err)
	}
	return out, nil
}

// domainFromXML converts a domain's XML and state.
func domainFromXML(doc string, st lv.DomainState) (hypervisor.Domain, error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		return hypervisor.Domain{}, fmt.Errorf("parse domain XML: %w", err)
	}
	out := hypervisor.Domain{Name: x.Name, UUID: x.UUID, State: stateOf(st)}
	if x.VCPU != nil {
		out.VCPUs = int(x.VCPU.Value)
	}
	if x.Memory != nil {
		out.MemoryMiB = int(toMiB(x.Memory.Value, x.Memory.Unit))
	}
	if x.Metadata != nil {
		m, err := parseMetadata(x.Metadata.XML)
		if err != nil {
			return hypervisor.Domain{}, fmt.Errorf("domain %q: %w", x.Name, err)
		}
		out.Metadata = m
	}
	if x.Devices != nil {
		for _, iface := range x.Devices.Interfaces {
			if iface.MAC != nil {
				out.MACs = append(out.MACs, iface.MAC.Address)
			}
		}
	}
	return out, nil
}

// toMiB converts a libvirt memory size (unit per libvirt's scaledInteger,
// KiB when empty) to MiB.
func toMiB(v uint, unit string) uint64 {
	n := uint64(v)
	switch unit {
	case "b", "bytes":
		return n >> 20
	case "KB":
		return n * 1000 >> 20
	case "", "k", "KiB":
		return n >> 10
	case "MB":
		return n * 1000 * 1000 >> 20
	case "M", "MiB":
		return n
	case "GB":
		return n * 1000 * 1000 * 1000 >> 20
	case "G", "GiB":
		return n << 10
	case "T", "TiB":
		return n << 20
	}
	return n >> 10
}

// stateOf maps libvirt's domain state.
func stateOf(st lv.DomainState) hypervisor.DomainState {
	switch st {
	case lv.DOMAIN_RUNNING, lv.DOMAIN_BLOCKED:
		return hypervisor.StateRunning
	case lv.DOMAIN_PAUSED, lv.DOMAIN_PMSUSPENDED:
		return hypervisor.StatePaused
	case lv.DOMAIN_SHUTDOWN:
		return hypervisor.StateShuttingDown
	case lv.DOMAIN_SHUTOFF:
		return hypervisor.StateShutoff
	case lv.DOMAIN_CRASHED:
		return hypervisor.StateCrashed
	}
	return hypervisor.StateUnknown
}

// States returns every domain's run state by name with a single
// Connect.GetAllDomainStats call (names come from the returned handles
// without further RPCs), for listings that need nothing else from libvirt.
func (d *Driver) States(ctx context.Context) (map[string]hypervisor.DomainState, error) {
	out := map[string]hypervisor.DomainState{}
	err := d.with(ctx, func(c *lv.Connect) error {
		doms, states, err := listWithState(c)
		if err != nil {
			return err
		}
		for i, dom := range doms {
			if name, err := dom.GetName(); err == nil {
				out[name] = stateOf(states[i])
			}
			_ = dom.Free()
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("list domain states", err)
	}
	return out, nil
}
