package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"

	"github.com/sirupsen/logrus"
	lv "libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/galevm/gale/pkg/hypervisor"
)

// bridgeName returns spec's bridge, or "gale-" plus 8 hex digits of a hash
// of the network name (13 characters, under Linux's 15).
func bridgeName(spec hypervisor.NetworkSpec) string {
	if spec.Bridge != "" {
		return spec.Bridge
	}
	sum := sha256.Sum256([]byte(spec.Name))
	return "gale-" + hex.EncodeToString(sum[:4])
}

// networkXML builds the libvirt network for a validated spec: NAT has
// <forward mode='nat'/>, isolated has no <forward> at all.
func networkXML(spec hypervisor.NetworkSpec) (*libvirtxml.Network, error) {
	host, prefix, start, end, err := hypervisor.NetworkAddressing(spec)
	if err != nil {
		return nil, err
	}
	n := &libvirtxml.Network{
		Name:   spec.Name,
		Bridge: &libvirtxml.NetworkBridge{Name: bridgeName(spec), STP: "on", Delay: "0"},
		IPs: []libvirtxml.NetworkIP{{
			Address: host.String(),
			Prefix:  uint(prefix),
			DHCP: &libvirtxml.NetworkDHCP{Ranges: []libvirtxml.NetworkDHCPRange{{
				Start: start.String(), End: end.String(),
			}}},
		}},
	}
	if spec.Mode == hypervisor.NetworkOpen {
		n.Forward = &libvirtxml.NetworkForward{Mode: "open"}
	}
	if spec.Mode == hypervisor.NetworkNAT {
		n.Forward = &libvirtxml.NetworkForward{Mode: "nat"}
	}
	// dnsmasq pings every address before it first leases it and waits up
	// to 3 s for an answer. gale owns the range (guests take addresses only
	// by DHCP), so the check buys nothing and delays every new VM's first
	// lease; a clone's whole identity change waits on it.
	n.DnsmasqOptions = &libvirtxml.NetworkDnsmasqOptions{Option: []libvirtxml.NetworkDnsmasqOption{{Value: "no-ping"}}}
	if spec.Mode == hypervisor.NetworkOpen {
		// No router in the leases: guests of an open network get no
		// default route (gale's isolation table drops what they would
		// send out anyway).
		n.DnsmasqOptions.Option = append(n.DnsmasqOptions.Option, libvirtxml.NetworkDnsmasqOption{Value: "dhcp-option=3"})
	}
	return n, nil
}

// networkFromXML converts a network's XML. Mode is "isolated" without
// <forward>, else the forward mode as is ("nat", "route", "bridge", ...).
// CIDR is the first IPv4 address with its prefix, e.g. "192.168.150.1/24".
func networkFromXML(doc string, active bool) (hypervisor.Network, error) {
	var x libvirtxml.Network
	if err := x.Unmarshal(doc); err != nil {
		return hypervisor.Network{}, fmt.Errorf("parse network XML: %w", err)
	}
	out := hypervisor.Network{Name: x.Name, Mode: hypervisor.NetworkIsolated, Active: active}
	if x.Forward != nil {
		out.Mode = hypervisor.NetworkMode(x.Forward.Mode)
		if x.Forward.Mode == "" {
			out.Mode = hypervisor.NetworkNAT // libvirt's default forward mode
		}
	}
	if x.Bridge != nil {
		out.Bridge = x.Bridge.Name
	}
	for _, ip := range x.IPs {
		addr := net.ParseIP(ip.Address)
		if addr == nil || addr.To4() == nil || (ip.Family != "" && ip.Family != "ipv4") {
			continue
		}
		prefix := int(ip.Prefix)
		if ip.Netmask != "" {
			if m := net.ParseIP(ip.Netmask).To4(); m != nil {
				prefix, _ = net.IPMask(m).Size()
			}
		}
		out.CIDR = fmt.Sprintf("%s/%d", addr, prefix)
		break
	}
	return out, nil
}

// CreateNetwork defines, starts and autostarts a network. An existing name
// is hypervisor.ErrExists. On failure after the define, the definition is
// removed again.
func (d *Driver) CreateNetwork(ctx context.Context, spec hypervisor.NetworkSpec) error {
	op := fmt.Sprintf("create network %q", spec.Name)
	if err := hypervisor.ValidateNetworkSpec(spec); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	nx, err := networkXML(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	doc, err := nx.Marshal()
	if err != nil {
		return fmt.Errorf("%s: marshal XML: %w", op, err)
	}
	err = d.with(ctx, func(c *lv.Connect) error {
		if n, err := c.LookupNetworkByName(spec.Name); err == nil {
			_ = n.Free()
			return fmt.Errorf("network %q: %w", spec.Name, hypervisor.ErrExists)
		} else if !isCode(err, lv.ERR_NO_NETWORK) {
			return err
		}
		n, err := c.NetworkDefineXMLFlags(doc, lv.NETWORK_DEFINE_VALIDATE)
		if isCode(err, lv.ERR_INVALID_ARG, lv.ERR_NO_SUPPORT) {
			n, err = c.NetworkDefineXML(doc)
		}
		if err != nil {
			return err
		}
		defer func() { _ = n.Free() }()
		if err := n.Create(); err != nil {
			_ = n.Undefine()
			return err
		}
		if err := n.SetAutostart(true); err != nil {
			_ = n.Destroy()
			_ = n.Undefine()
			return err
		}
		return nil
	})
	if err != nil {
		return wrapErr(op, err)
	}
	d.log.WithFields(logrus.Fields{"network": spec.Name, "op": "create-network", "bridge": nx.Bridge.Name}).Debug("network created")
	return nil
}

// DeleteNetwork destroys the network if it is active, then undefines it.
func (d *Driver) DeleteNetwork(ctx context.Context, name string) error {
	err := d.withNetwork(ctx, name, func(n *lv.Network, active bool) error {
		if active {
			if err := n.Destroy(); err != nil && !isCode(err, lv.ERR_OPERATION_INVALID) {
				return err
			}
		}
		persistent, err := n.IsPersistent()
		if err != nil || !persistent {
			return err // a transient network is gone once destroyed
		}
		return n.Undefine()
	})
	return wrapErr(fmt.Sprintf("delete network %q", name), err)
}

// ListNetworks returns all networks: ListAllNetworks, then GetXMLDesc and
// IsActive per network.
func (d *Driver) ListNetworks(ctx context.Context) ([]hypervisor.Network, error) {
	var out []hypervisor.Network
	err := d.with(ctx, func(c *lv.Connect) error {
		nets, err := c.ListAllNetworks(0)
		if err != nil {
			return err
		}
		defer func() {
			for i := range nets {
				_ = nets[i].Free()
			}
		}()
		out = make([]hypervisor.Network, 0, len(nets))
		for i := range nets {
			nw, err := describeNetwork(&nets[i])
			if isCode(err, lv.ERR_NO_NETWORK) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, nw)
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("list networks", err)
	}
	return out, nil
}

// GetNetwork returns one network.
func (d *Driver) GetNetwork(ctx context.Context, name string) (hypervisor.Network, error) {
	var out hypervisor.Network
	err := d.with(ctx, func(c *lv.Connect) error {
		n, err := c.LookupNetworkByName(name)
		if err != nil {
			return err
		}
		defer func() { _ = n.Free() }()
		out, err = describeNetwork(n)
		return err
	})
	if err != nil {
		return hypervisor.Network{}, wrapErr(fmt.Sprintf("get network %q", name), err)
	}
	return out, nil
}

// StartNetwork starts the network if it is not active (NetworkCreate) and
// turns its autostart on, so a libvirtd restart brings it back.
func (d *Driver) StartNetwork(ctx context.Context, name string) error {
	err := d.withNetwork(ctx, name, func(n *lv.Network, active bool) error {
		if !active {
			if err := n.Create(); err != nil && !isCode(err, lv.ERR_OPERATION_INVALID) {
				return err
			}
		}
		if persistent, err := n.IsPersistent(); err == nil && persistent {
			if err := n.SetAutostart(true); err != nil {
				d.log.WithField("network", name).WithError(err).Warn("network autostart left off")
			}
		}
		return nil
	})
	return wrapErr(fmt.Sprintf("start network %q", name), err)
}

// withNetwork looks up the network called name and calls fn with it and
// whether it is active; the handle is freed after fn returns.
func (d *Driver) withNetwork(ctx context.Context, name string, fn func(n *lv.Network, active bool) error) error {
	return d.with(ctx, func(c *lv.Connect) error {
		n, err := c.LookupNetworkByName(name)
		if err != nil {
			return err
		}
		defer func() { _ = n.Free() }()
		active, err := n.IsActive()
		if err != nil {
			return err
		}
		return fn(n, active)
	})
}

func describeNetwork(n *lv.Network) (hypervisor.Network, error) {
	active, err := n.IsActive()
	if err != nil {
		return hypervisor.Network{}, err
	}
	doc, err := n.GetXMLDesc(0)
	if err != nil {
		return hypervisor.Network{}, err
	}
	return networkFromXML(doc, active)
}
