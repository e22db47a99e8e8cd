package libvirt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/toolrun"
)

// dhcpRelease is dnsmasq's tool (package dnsmasq-utils) that sends a
// DHCPRELEASE to the dnsmasq serving an interface on behalf of a client.
const dhcpRelease = "dhcp_release"

// dhcpReleaseTimeout bounds one dhcp_release, which sends one packet.
const dhcpReleaseTimeout = 30 * time.Second

// ReleaseLeases drops the IPv4 DHCP leases that the domain's interfaces hold
// in their libvirt networks: for each one it runs dhcp_release against the
// network's bridge and waits until libvirt no longer lists the lease. Call it
// after the domain is off (a running guest would renew). A domain without
// leases is not an error.
func (d *Driver) ReleaseLeases(ctx context.Context, name string) error {
	err := d.withDomain(ctx, name, func(c *lv.Connect, dom *lv.Domain) error {
		x, err := liveDomainXML(dom)
		if err != nil {
			return err
		}
		var errs []error
		for network, macs := range interfacesByNetwork(x) {
			errs = append(errs, releaseNetworkLeases(ctx, c, network, macs))
		}
		return errors.Join(errs...)
	})
	return wrapErr(fmt.Sprintf("release DHCP leases of domain %q", name), err)
}

func releaseNetworkLeases(ctx context.Context, c *lv.Connect, network string, macs []string) error {
	n, err := c.LookupNetworkByName(network)
	if err != nil {
		if isCode(err, lv.ERR_NO_NETWORK) {
			return nil // the network is gone, and its leases with it
		}
		return err
	}
	defer n.Free()
	if active, err := n.IsActive(); err != nil || !active {
		return err
	}
	bridge, err := n.GetBridgeName()
	if err != nil {
		return err
	}
	held := func() ([]lv.NetworkDHCPLease, error) {
		leases, err := n.GetDHCPLeases()
		if err != nil {
			return nil, err
		}
		var out []lv.NetworkDHCPLease
		for _, l := range leases {
			if l.Type == lv.IP_ADDR_TYPE_IPV4 && containsFold(macs, l.Mac) {
				out = append(out, l)
			}
		}
		return out, nil
	}
	leases, err := held()
	if err != nil || len(leases) == 0 {
		return err
	}
	for _, l := range leases {
		args := []string{bridge, l.IPaddr, l.Mac}
		if l.Clientid != "" {
			args = append(args, l.Clientid)
		}
		_, err := toolrun.Run(ctx, toolrun.Spec{Argv: append([]string{dhcpRelease}, args...), Timeout: dhcpReleaseTimeout})
		if errors.Is(err, toolrun.ErrNotFound) {
			return fmt.Errorf("%s not found: install dnsmasq-utils so deleted VMs leave no DHCP lease: %w", dhcpRelease, err)
		}
		if err != nil {
			return fmt.Errorf("release lease %s: %w", strings.Join(args, " "), err)
		}
	}
	// dnsmasq drops the lease and tells libvirt through its lease helper;
	// wait briefly for libvirt's view to catch up.
	deadline := time.Now().Add(3 * time.Second)
	for {
		left, err := held()
		if err != nil || len(left) == 0 {
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("network %q still lists a lease for %s after %s", network, left[0].Mac, dhcpRelease)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
