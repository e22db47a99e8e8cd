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
	cfg := &netlink.Config{}
	if m.netns != -1 {
		cfg.NetNS = m.netns
	}
	c, err := conntrack.Dial(cfg)
	if err != nil {
		return 0, fmt.Errorf("lb: open conntrack: %w", err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		return 0, fmt.Errorf("lb: dump conntrack: %w", err)
	}
	return countOpen(flows, addr, port), nil
}

// countOpen counts the DNATed flows whose reply comes from addr:port and
// that are not over.
func countOpen(flows []conntrack.Flow, addr netip.Addr, port uint16) int {
	n := 0
	for _, f := range flows {
		r := f.TupleReply
		if !f.Status.DstNAT() || r.IP.SourceAddress != addr || r.Proto.SourcePort != port {
			continue
		}
		if r.Proto.Protocol == unix.IPPROTO_TCP && f.ProtoInfo.TCP != nil {
			if s := f.ProtoInfo.TCP.State; s == tcpTimeWait || s == tcpClose {
				continue
			}
		}
		n++
	}
	return n
}
