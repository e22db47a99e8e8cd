package lb

import (
	"net/netip"
	"testing"

	"github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"
)

func TestCountOpen(t *testing.T) {
	be := netip.MustParseAddr("10.77.0.10")
	other := netip.MustParseAddr("10.77.0.11")
	flow := func(src netip.Addr, port uint16, proto uint8, dnat bool, state uint8) conntrack.Flow {
		f := conntrack.Flow{}
		f.TupleReply.IP.SourceAddress = src
		f.TupleReply.Proto.SourcePort = port
		f.TupleReply.Proto.Protocol = proto
		if dnat {
			f.Status = conntrack.StatusDstNAT
		}
		if proto == unix.IPPROTO_TCP {
			f.ProtoInfo.TCP = &conntrack.ProtoInfoTCP{State: state}
		}
		return f
	}
	flows := []conntrack.Flow{
		flow(be, 80, unix.IPPROTO_TCP, true, 3),           // established: counts
		flow(be, 80, unix.IPPROTO_TCP, true, 4),           // fin wait: counts
		flow(be, 80, unix.IPPROTO_TCP, true, tcpTimeWait), // over
		flow(be, 80, unix.IPPROTO_TCP, true, tcpClose),    // over
		flow(be, 80, unix.IPPROTO_TCP, false, 3),          // a probe, not DNATed
		flow(be, 22, unix.IPPROTO_TCP, true, 3),           // another port
		flow(other, 80, unix.IPPROTO_TCP, true, 3),        // another backend
		flow(be, 80, unix.IPPROTO_UDP, true, 0),           // a UDP flow: counts
	}
	got := countOpen(flows, 80)
	if got[be] != 3 || got[other] != 1 || len(got) != 2 {
		t.Fatalf("countOpen = %v, want %s: 3, %s: 1", got, be, other)
	}
}
