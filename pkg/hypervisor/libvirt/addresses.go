package libvirt

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/sirupsen/logrus"
	lv "libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/galevm/gale/pkg/hypervisor"
)

// Addresses returns the domain's addresses: first the DHCP leases of each
// interface's network matching its MAC (Network.GetDHCPLeases), then what
// the guest agent reports (ListAllInterfaceAddresses with the agent source),
// without loopback and without addresses already found. Lease or agent
// failures are logged and skipped: nothing known yet is an empty slice.
func (d *Driver) Addresses(ctx context.Context, name string) ([]hypervisor.Address, error) {
	log := d.log.WithFields(logrus.Fields{"vm": name, "op": "addresses"})
	out := []hypervisor.Address{}
	err := d.withDomain(ctx, name, func(c *lv.Connect, dom *lv.Domain) error {
		x, err := liveDomainXML(dom)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		add := func(a hypervisor.Address) {
			key := a.IP.String()
			if a.IP == nil || seen[key] {
				return
			}
			seen[key] = true
			out = append(out, a)
		}
		for _, a := range leaseAddresses(c, interfacesByNetwork(x), log) {
			add(a)
		}
		active, err := dom.IsActive()
		if err != nil || !active {
			return err
		}
		ifaces, err := dom.ListAllInterfaceAddresses(lv.DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT)
		if err != nil {
			if isConnectionError(err) {
				return err
			}
			log.WithError(readable(err)).Debug("guest agent gave no addresses")
			return nil
		}
		for _, a := range agentAddresses(ifaces) {
			add(a)
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("addresses of domain %q", name), err)
	}
	return out, nil
}

// interfacesByNetwork maps each libvirt network the domain uses to the MACs
// attached to it, in interface order.
func interfacesByNetwork(x *libvirtxml.Domain) map[string][]string {
	m := map[string][]string{}
	if x.Devices == nil {
		return m
	}
	for _, iface := range x.Devices.Interfaces {
		if iface.MAC == nil || iface.Source == nil || iface.Source.Network == nil {
			continue
		}
		n := iface.Source.Network.Network
		m[n] = append(m[n], strings.ToLower(iface.MAC.Address))
	}
	return m
}

// leaseAddresses collects the DHCP leases of the given MACs, per network.
func leaseAddresses(c *lv.Connect, byNet map[string][]string, log logrus.FieldLogger) []hypervisor.Address {
	var out []hypervisor.Address
	for netName, macs := range byNet {
		n, err := c.LookupNetworkByName(netName)
		if err != nil {
			log.WithError(readable(err)).WithField("network", netName).Debug("no leases: network lookup failed")
			continue
		}
		leases, err := n.GetDHCPLeases()
		_ = n.Free()
		if err != nil {
			log.WithError(readable(err)).WithField("network", netName).Debug("no leases: listing failed")
			continue
		}
		out = append(out, matchLeases(leases, macs)...)
	}
	return out
}

// matchLeases returns the leases held by macs, in MAC order.
func matchLeases(leases []lv.NetworkDHCPLease, macs []string) []hypervisor.Address {
	var out []hypervisor.Address
	for _, mac := range macs {
		for _, l := range leases {
			if !strings.EqualFold(l.Mac, mac) {
				continue
			}
			if ip := net.ParseIP(l.IPaddr); ip != nil {
				out = append(out, hypervisor.Address{MAC: mac, IP: ip, Prefix: int(l.Prefix), Source: hypervisor.SourceLease})
			}
		}
	}
	return out
}

// agentAddresses converts the agent's interface list, skipping loopback
// and link-local addresses.
func agentAddresses(ifaces []lv.DomainInterface) []hypervisor.Address {
	var out []hypervisor.Address
	for _, iface := range ifaces {
		if iface.Name == "lo" {
			continue
		}
		for _, a := range iface.Addrs {
			ip := net.ParseIP(a.Addr)
			if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
				continue
			}
			out = append(out, hypervisor.Address{
				MAC: strings.ToLower(iface.Hwaddr), IP: ip, Prefix: int(a.Prefix), Source: hypervisor.SourceAgent,
			})
		}
	}
	return out
}

// liveDomainXML fetches and parses a domain's current XML.
func liveDomainXML(dom *lv.Domain) (*libvirtxml.Domain, error) {
	doc, err := dom.GetXMLDesc(0)
	if err != nil {
		return nil, err
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("parse domain XML: %w", err)
	}
	return &x, nil
}
