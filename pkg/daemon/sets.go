package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/events"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/lb"
	"github.com/galevm/gale/pkg/metrics"
	"github.com/galevm/gale/pkg/network"
	"github.com/galevm/gale/pkg/scaleset"
	"github.com/galevm/gale/pkg/store"
	"github.com/galevm/gale/pkg/vm"
)

// netInfo answers what the scale sets need to know of networks.
type netInfo struct{ nets *network.Service }

// get returns network name.
func (n netInfo) get(ctx context.Context, name string) (api.Network, error) {
	all, err := n.nets.List(ctx)
	if err != nil {
		return api.Network{}, err
	}
	for _, x := range all {
		if x.Name == name {
			return x, nil
		}
	}
	return api.Network{}, fmt.Errorf("network %q not found", name)
}

// HostAddress returns the host's address on network name.
func (n netInfo) HostAddress(ctx context.Context, name string) (netip.Addr, error) {
	p, _, err := n.prefix(ctx, name)
	return p.Addr(), err
}

// prefix returns the host's address on network name with the network's
// prefix length, and its bridge.
func (n netInfo) prefix(ctx context.Context, name string) (netip.Prefix, string, error) {
	x, err := n.get(ctx, name)
	if err != nil {
		return netip.Prefix{}, "", err
	}
	p, err := netip.ParsePrefix(x.CIDR)
	if err != nil {
		return netip.Prefix{}, "", fmt.Errorf("network %q: address %q: %w", name, x.CIDR, err)
	}
	return p, x.Bridge, nil
}

// balancer is the scale sets' load balancer: pkg/lb's nftables tables,
// one per set, built from the set's rules and its healthy instances.
type balancer struct {
	lb   *lb.Manager
	nets netInfo
}

var _ scaleset.Balancer = balancer{}

// Apply replaces set's table.
func (b balancer) Apply(ctx context.Context, set, network string, rules []api.LBRule, backends []scaleset.Backend) error {
	p, bridge, err := b.nets.prefix(ctx, network)
	if err != nil {
		return err
	}
	c := lb.Config{Set: set, Network: p, Bridge: bridge}
	for _, r := range rules {
		a, err := netip.ParseAddr(r.Addr)
		if err != nil {
			return fmt.Errorf("frontend %q: %w", r.Addr, err)
		}
		c.Rules = append(c.Rules, lb.Rule{Proto: lb.Proto(strings.ToLower(r.Proto)), FrontAddr: a,
			FrontPort: uint16(r.FrontPort), BackPort: uint16(r.BackPort), Mode: lb.Mode(r.Mode)})
	}
	for _, be := range backends {
		c.Backends = append(c.Backends, lb.Backend{Name: be.Name, Addr: be.Addr})
	}
	return b.lb.Apply(c)
}

// Delete removes set's table.
func (b balancer) Delete(set string) error { return b.lb.Delete(set) }

// Sets lists the sets that have a table.
func (b balancer) Sets() ([]string, error) { return b.lb.Sets() }

// ConnectionsByBackend counts the open connections DNATed to each address
// on port.
func (b balancer) ConnectionsByBackend(port int) (map[netip.Addr]int, error) {
	return b.lb.ConnectionsByBackend(uint16(port))
}

// Connections counts the open connections DNATed to addr:port.
func (b balancer) Connections(addr netip.Addr, port int) (int, error) {
	return b.lb.Connections(addr, uint16(port))
}

// newSets makes the scale-set service and starts its controllers (after
// reconcile, so they see the VMs as they are). Without nftables the sets
// work without load balancers, and say so.
func newSets(ctx context.Context, st *store.Store, svc *vm.Service, nets *network.Service, kernelLB *lb.Manager, mstore *metrics.Store, engine *vm.Engine, log logrus.FieldLogger) (*scaleset.Service, error) {
	info := netInfo{nets}
	scfg := scaleset.Config{Store: st, VMs: svc, Networks: info, Host: vm.HostResources{DiskDir: engine.Dir}, Events: &events.Hub{},
		Metrics: mstore, Log: log}
	if kernelLB != nil {
		scfg.Balancer = balancer{lb: kernelLB, nets: info}
	}
	sets, err := scaleset.New(scfg)
	if err != nil {
		return nil, err
	}
	if err := sets.Start(ctx); err != nil {
		return nil, fmt.Errorf("start scale sets: %w", err)
	}
	return sets, nil
}

// isolateOpen rebuilds the isolation table for every open network (a
// failure is logged: doctor-worthy, not fatal).
func isolateOpen(ctx context.Context, m *lb.Manager, nets *network.Service, log logrus.FieldLogger) {
	if m == nil || nets == nil {
		return
	}
	all, err := nets.List(ctx)
	if err != nil {
		log.WithError(err).Warn("list networks to isolate")
		return
	}
	var open []lb.OpenNetwork
	for _, n := range all {
		if n.Mode != api.NetworkOpen {
			continue
		}
		p, err := netip.ParsePrefix(n.CIDR)
		if err != nil || n.Bridge == "" {
			log.WithField("network", n.Name).Warn("open network without address or bridge: not isolated")
			continue
		}
		open = append(open, lb.OpenNetwork{Bridge: n.Bridge, Subnet: p})
	}
	if err := m.Isolate(open); err != nil {
		log.WithError(err).Error("isolate open networks")
	}
}

// saveMetrics saves the metrics store every interval until ctx ends.
func saveMetrics(ctx context.Context, m *metrics.Store, path string, interval time.Duration, log logrus.FieldLogger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Save(path); err != nil {
				log.WithError(err).Warn("save metrics")
			}
		}
	}
}

// notifySets wakes the set controllers on every domain lifecycle event, so
// a stopped or destroyed instance is seen in about a second.
func notifySets(ctx context.Context, drv hypervisor.Driver, sets *scaleset.Service, log logrus.FieldLogger) {
	evs, err := drv.Events(ctx)
	if err != nil {
		log.WithError(err).Warn("no domain events: scale sets notice changes at their interval")
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-evs:
			if !ok {
				return
			}
			sets.Notify()
		}
	}
}
