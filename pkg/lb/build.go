package lb

import (
	"hash/fnv"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Chain names of a set's table.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainInput       = "input"
)

// Registers, as nft uses them: reg 1 and 2 are 16-byte registers; 12 to 16
// are the 32-bit registers 4 to 8 (12 is the first word of reg 2), which
// hold a concatenation one field per word.
const (
	reg1 = unix.NFT_REG_1
	reg2 = unix.NFT_REG_2
	// regConcat is the first 32-bit register of a hash's input.
	regConcat = unix.NFT_REG32_04
)

// Header offsets and conntrack values.
const (
	offIPSaddr    = 12
	offIPDaddr    = 16
	offTHSport    = 0
	offTHDport    = 2
	ipsDstNATBit  = 1 << 5 // IPS_DST_NAT_BIT
	ctStateEstRel = expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED
	ctDirOriginal = 0 // IP_CT_DIR_ORIGINAL
)

// mapBackends is the name of the table's map from backend index to
// address, which every DNAT rule looks its selector's result up in.
const mapBackends = "backends"

// mapID identifies the map within the batch that creates it (rules refer to
// it by name and ID before the kernel has committed it).
const mapID = 1

// backendMap is the map {i: address of backend i}; its keys are host order
// uint32, as hash and numgen produce them.
type backendMap struct {
	set   *nftables.Set
	elems []nftables.SetElement
}

// plan is everything Apply sends for one Config, in order: the table, its
// chains, the map (none without backends), then the rules.
type plan struct {
	table  *nftables.Table
	chains []*nftables.Chain
	m      *backendMap
	rules  []*nftables.Rule
	// localnet: a frontend is on 127.0.0.0/8, so Bridge needs
	// route_localnet=1.
	localnet bool
}

// build turns a valid Config into its plan. It is pure: no netlink, no
// global state.
func build(c Config) plan {
	t := &nftables.Table{Name: TableName(c.Set), Family: nftables.TableFamilyIPv4}
	accept := nftables.ChainPolicyAccept
	pre := &nftables.Chain{Name: chainPrerouting, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept}
	out := &nftables.Chain{Name: chainOutput, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept}
	post := &nftables.Chain{Name: chainPostrouting, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept}
	p := plan{table: t, chains: []*nftables.Chain{pre, out, post}}

	backends := sortedBackends(c.Backends)
	seed := hashSeed(c.Set)
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	if len(backends) > 0 {
		m := newBackendMap(t, backends)
		p.m = &m
	}
	for _, r := range c.Rules {
		if r.FrontAddr.IsLoopback() {
			p.localnet = true
		}
		if len(backends) == 0 {
			continue
		}
		chains := []*nftables.Chain{pre, out}
		if r.FrontAddr.IsLoopback() {
			// Never DNAT packets from outside that claim a loopback
			// destination.
			chains = []*nftables.Chain{out}
		}
		for _, ch := range chains {
			p.rules = append(p.rules, &nftables.Rule{Table: t, Chain: ch, Exprs: dnatExprs(r, p.m.set, len(backends), seed)})
		}
		if r.FrontAddr.IsLoopback() {
			p.rules = append(p.rules, &nftables.Rule{Table: t, Chain: post, Exprs: masqExprs(r, loopback)})
		} else if c.Network.IsValid() {
			p.rules = append(p.rules, &nftables.Rule{Table: t, Chain: post, Exprs: masqExprs(r, c.Network.Masked())})
		}
	}
	if c.Bridge != "" {
		// Also without a loopback frontend: route_localnet, once set,
		// stays on the bridge. Without it such packets are martians
		// anyway, so the rule costs nothing.
		in := &nftables.Chain{Name: chainInput, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept}
		p.chains = append(p.chains, in)
		p.rules = append(p.rules, &nftables.Rule{Table: t, Chain: in, Exprs: localnetGuardExprs(c.Bridge)})
	}
	return p
}

// hashSeed is the jhash seed of set: fixed per set so that hash-selected
// backends survive an Apply with the same backends; never 0 (the kernel
// picks a random seed when none is given).
func hashSeed(set string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(TablePrefix + set))
	if s := h.Sum32(); s != 0 {
		return s
	}
	return 1
}

// newBackendMap is the map {i: backends[i].Addr}. It is named, not
// anonymous, so that nft shows its integer keys in host order.
func newBackendMap(t *nftables.Table, backends []Backend) backendMap {
	s := &nftables.Set{
		Table:        t,
		ID:           mapID,
		Name:         mapBackends,
		IsMap:        true,
		KeyType:      nftables.TypeInteger,
		DataType:     nftables.TypeIPAddr,
		KeyByteOrder: binaryutil.NativeEndian,
	}
	elems := make([]nftables.SetElement, len(backends))
	for i, b := range backends {
		a := b.Addr.As4()
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: a[:]}
	}
	return backendMap{set: s, elems: elems}
}

// l4proto is the IPPROTO number of p.
func l4proto(p Proto) byte {
	if p == ProtoUDP {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// matchFront is: ip daddr FRONT meta l4proto P th dport FRONTPORT.
func matchFront(r Rule) []expr.Any {
	a := r.FrontAddr.As4()
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offIPDaddr, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: a[:]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{l4proto(r.Proto)}},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: offTHDport, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.BigEndian.PutUint16(r.FrontPort)},
	}
}

// selector puts the backend index of a new connection (0..n-1) in reg 1.
func selector(mode Mode, n int, seed uint32) []expr.Any {
	switch mode {
	case ModeRoundRobin:
		return []expr.Any{&expr.Numgen{Register: reg1, Modulus: uint32(n), Type: unix.NFT_NG_INCREMENTAL}}
	case ModeSourceIP:
		return []expr.Any{
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: regConcat, Base: expr.PayloadBaseNetworkHeader, Offset: offIPSaddr, Len: 4},
			&expr.Hash{SourceRegister: regConcat, DestRegister: reg1, Length: 4, Modulus: uint32(n), Seed: seed, Type: expr.HashTypeJenkins},
		}
	default: // ModeHash: ip saddr . ip daddr . meta l4proto . th sport . th dport
		return []expr.Any{
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: regConcat, Base: expr.PayloadBaseNetworkHeader, Offset: offIPSaddr, Len: 4},
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: regConcat + 1, Base: expr.PayloadBaseNetworkHeader, Offset: offIPDaddr, Len: 4},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regConcat + 2},
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: regConcat + 3, Base: expr.PayloadBaseTransportHeader, Offset: offTHSport, Len: 2},
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: regConcat + 4, Base: expr.PayloadBaseTransportHeader, Offset: offTHDport, Len: 2},
			// 5 words: each field is padded to 4 bytes (zeroed by the loads).
			&expr.Hash{SourceRegister: regConcat, DestRegister: reg1, Length: 20, Modulus: uint32(n), Seed: seed, Type: expr.HashTypeJenkins},
		}
	}
}

// dnatExprs is: FRONT match; dnat to <selector> map m : BACKPORT.
func dnatExprs(r Rule, m *nftables.Set, n int, seed uint32) []expr.Any {
	e := matchFront(r)
	e = append(e, selector(r.Mode, n, seed)...)
	return append(e,
		&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		&expr.Immediate{Register: reg2, Data: binaryutil.BigEndian.PutUint16(r.BackPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: reg2, Specified: true},
	)
}

// masqExprs is: ip saddr SRC ct status dnat ct original ip daddr FRONT
// meta l4proto P ct original proto-dst FRONTPORT masquerade.
func masqExprs(r Rule, src netip.Prefix) []expr.Any {
	front := r.FrontAddr.As4()
	e := append(saddrIn(src, expr.CmpOpEq), ctDNATed()...)
	return append(e,
		&expr.Ct{Key: expr.CtKeyDST, Register: reg1, Direction: ctDirOriginal},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: front[:]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{l4proto(r.Proto)}},
		&expr.Ct{Key: expr.CtKeyPROTODST, Register: reg1, Direction: ctDirOriginal},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.BigEndian.PutUint16(r.FrontPort)},
		&expr.Masq{},
	)
}

// saddrIn is: ip saddr (== or !=, per op) SRC (a prefix).
func saddrIn(src netip.Prefix, op expr.CmpOp) []expr.Any {
	src = src.Masked()
	net4 := src.Addr().As4()
	mask := prefixMask(src.Bits())
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offIPSaddr, Len: 4},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask[:], Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: reg1, Data: net4[:]},
	}
}

// ctDNATed is: ct status dnat.
func ctDNATed() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ipsDstNATBit), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: []byte{0, 0, 0, 0}},
	}
}

// localnetGuardExprs is: iifname BRIDGE ip daddr 127.0.0.0/8
// ct state & (established|related) == 0 drop. route_localnet=1 on the
// bridge would otherwise let its neighbours reach the host's loopback
// services.
func localnetGuardExprs(bridge string) []expr.Any {
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, bridge)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: name},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offIPDaddr, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{127}},
		&expr.Ct{Key: expr.CtKeySTATE, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ctStateEstRel), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{0, 0, 0, 0}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// prefixMask is the IPv4 netmask of a /bits prefix, network order.
func prefixMask(bits int) [4]byte {
	var m [4]byte
	for i := 0; i < bits; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}
