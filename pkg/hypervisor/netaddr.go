package hypervisor

import (
	"encoding/binary"
	"fmt"
	"net"
)

// NetworkAddressing returns the host address, prefix length and DHCP range
// for a validated spec. When spec.CIDR holds the network address itself
// (as net.ParseCIDR returns it), the host address is the first one in the
// network. Without an explicit range, DHCP hands out every address after the
// host address up to the one before broadcast.
func NetworkAddressing(spec NetworkSpec) (host net.IP, prefix int, start, end net.IP, err error) {
	if spec.CIDR == nil || spec.CIDR.IP.To4() == nil {
		return nil, 0, nil, nil, fmt.Errorf("network %q: an IPv4 CIDR is required: %w", spec.Name, ErrInvalidSpec)
	}
	prefix, _ = spec.CIDR.Mask.Size()
	mask := binary.BigEndian.Uint32(net.IP(spec.CIDR.Mask).To4())
	ip := binary.BigEndian.Uint32(spec.CIDR.IP.To4())
	network := ip & mask
	broadcast := network | ^mask
	if ip == network {
		ip = network + 1
	}
	host = u32ToIP(ip)
	if spec.DHCPStart != nil && spec.DHCPEnd != nil {
		return host, prefix, spec.DHCPStart.To4(), spec.DHCPEnd.To4(), nil
	}
	if ip+1 > broadcast-1 {
		return nil, 0, nil, nil, fmt.Errorf("network %q: no room for a DHCP range after host address %s in /%d: %w", spec.Name, host, prefix, ErrInvalidSpec)
	}
	return host, prefix, u32ToIP(ip + 1), u32ToIP(broadcast - 1), nil
}

func u32ToIP(v uint32) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, v)
	return ip
}
