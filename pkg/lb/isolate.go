package lb

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// IsolationTable is the table (family ip) that keeps open networks
// isolated. It is gale's: Isolate replaces it whole.
const IsolationTable = "gale-open"

// OpenNetwork is a network whose forwarding libvirt leaves to gale
// (forward mode open).
type OpenNetwork struct {
	Bridge string
	Subnet netip.Prefix // the network's subnet (any address in it)
}

// Isolate makes the isolation table exactly what nets need, atomically.
// For each network's bridge it:
//   - lets its guests answer connections (established, related) and talk
//     among themselves, and drops every other packet a guest sends to be
//     forwarded: guests start nothing outside their network, so they have
//     no route out and cannot reach other networks;
//   - lets in forwarded packets of established connections and of
//     connections a set's load balancer DNATed to it, and drops every
//     other forwarded packet bound for it;
//   - masquerades DNATed connections from outside the subnet, so replies
//     come back through the host whatever route the guest has.
//
// With no networks the table is removed. With some, it also turns IPv4
// forwarding on in the Manager's namespace (libvirt does for open networks
// too; this makes it independent of that).
func (m *Manager) Isolate(nets []OpenNetwork) error {
	for _, n := range nets {
		if err := validateIfName(n.Bridge); err != nil {
			return fmt.Errorf("lb: isolate: %w", err)
		}
		if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() {
			return fmt.Errorf("lb: isolate %s: subnet %v is not IPv4: %w", n.Bridge, n.Subnet, ErrInvalid)
		}
	}
	t := &nftables.Table{Name: IsolationTable, Family: nftables.TableFamilyIPv4}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conn.AddTable(t)
	m.conn.DelTable(t)
	if len(nets) > 0 {
		m.conn.AddTable(t)
		accept := nftables.ChainPolicyAccept
		fwd := m.conn.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
		post := m.conn.AddChain(&nftables.Chain{Name: chainPostrouting, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
		for _, n := range nets {
			for _, r := range isolationRules(n) {
				m.conn.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: r})
			}
			m.conn.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: inboundMasq(n)})
		}
	}
	if err := m.conn.Flush(); err != nil {
		m.reset()
		return fmt.Errorf("lb: isolate open networks: %w", err)
	}
	if len(nets) > 0 {
		if err := m.writeSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
			return fmt.Errorf("lb: isolate: turn on forwarding: %w", err)
		}
	}
	return nil
}

func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// isolationRules are the forward rules of one open network, in order.
func isolationRules(n OpenNetwork) [][]expr.Any {
	iif := func(op expr.CmpOp) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg1}, &expr.Cmp{Op: op, Register: reg1, Data: ifname(n.Bridge)}}
	}
	oif := func(op expr.CmpOp) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg1}, &expr.Cmp{Op: op, Register: reg1, Data: ifname(n.Bridge)}}
	}
	estRel := []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ctStateEstRel), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: []byte{0, 0, 0, 0}},
	}
	dnat := ctDNATed()
	acceptV := &expr.Verdict{Kind: expr.VerdictAccept}
	dropV := &expr.Verdict{Kind: expr.VerdictDrop}
	join := func(parts ...[]expr.Any) []expr.Any {
		var out []expr.Any
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	return [][]expr.Any{
		join(iif(expr.CmpOpEq), oif(expr.CmpOpEq), []expr.Any{acceptV}), // guest to guest
		join(iif(expr.CmpOpEq), estRel, []expr.Any{acceptV}),            // answers
		join(iif(expr.CmpOpEq), []expr.Any{dropV}),                      // nothing else out
		join(oif(expr.CmpOpEq), estRel, []expr.Any{acceptV}),
		join(oif(expr.CmpOpEq), dnat, []expr.Any{acceptV}), // a set's frontend
		join(oif(expr.CmpOpEq), []expr.Any{dropV}),         // nothing else in
	}
}

// inboundMasq is: oifname BRIDGE ip saddr != SUBNET ct status dnat masquerade.
func inboundMasq(n OpenNetwork) []expr.Any {
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ifname(n.Bridge)},
	}
	e = append(e, saddrIn(n.Subnet, expr.CmpOpNeq)...)
	e = append(e, ctDNATed()...)
	return append(e, &expr.Masq{})
}
