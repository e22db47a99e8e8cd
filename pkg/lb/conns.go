package lb

import (
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"
)

// TCP conntrack states (the kernel's enum tcp_conntrack) that mean the
// connection is over.
const (
	tcpTimeWait = 7
	tcpClose    = 8
)

// Connections counts the connections a load balancer DNATed to addr:port
// that are still open, from conntrack: TCP ones not yet closed (TIME_WAIT
// and CLOSE do not count), and UDP flows until conntrack forgets them. A
// draining instance can go once it has none.
func (m *Manager) Connections(addr netip.Addr, port uint16) (int, error) {
	by, err := m.ConnectionsByBackend(port)
	return by[addr], err
}

// ConnectionsByBackend counts, with one conntrack dump, the open
// connections a load balancer DNATed to each address on port (see
// Connections).
func (m *Manager) ConnectionsByBackend(port uint16) (map[netip.Addr]int, error) {
	cfg := &netlink.Config{}
	if m.netns != -1 {
		cfg.NetNS = m.netns
	}
	c, err := conntrack.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("lb: open conntrack: %w", err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		return nil, fmt.Errorf("lb: dump conntrack: %w", err)
	}
	return countOpen(flows, port), nil
}

// countOpen counts the DNATed flows that are not over by the address their
// reply comes from, for replies from port.
func countOpen(flows []conntrack.Flow, port uint16) map[netip.Addr]int {
	out := map[netip.Addr]int{}
	for _, f := range flows {
		r := f.TupleReply
		if !f.Status.DstNAT() || r.Proto.SourcePort != port {
			continue
		}
		if r.Proto.Protocol == unix.IPPROTO_TCP && f.ProtoInfo.TCP != nil {
			if s := f.ProtoInfo.TCP.State; s == tcpTimeWait || s == tcpClose {
				continue
			}
		}
		out[r.IP.SourceAddress]++
	}
	return out
}
