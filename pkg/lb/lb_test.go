package lb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func validConfig() Config {
	return Config{
		Set: "web",
		Rules: []Rule{
			{Proto: ProtoTCP, FrontAddr: netip.MustParseAddr("10.77.0.1"), FrontPort: 8080, BackPort: 80},
			{Proto: ProtoUDP, FrontAddr: netip.MustParseAddr("10.77.0.1"), FrontPort: 8080, BackPort: 53, Mode: ModeRoundRobin},
		},
		Backends: []Backend{
			{Name: "web-2", Addr: netip.MustParseAddr("10.77.0.12")},
			{Name: "web-1", Addr: netip.MustParseAddr("10.77.0.11")},
		},
		Network: netip.MustParsePrefix("10.77.0.1/24"),
		Bridge:  "galebr0",
	}
}

func TestValidate(t *testing.T) {
	addr := netip.MustParseAddr
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // "" = valid; else a part of the error
	}{
		{"valid", func(c *Config) {}, ""},
		{"no rules, no backends, no network, no bridge", func(c *Config) {
			c.Rules, c.Backends, c.Network, c.Bridge = nil, nil, netip.Prefix{}, ""
		}, ""},
		{"empty mode is hash", func(c *Config) { c.Rules[0].Mode = "" }, ""},
		{"same address and port, other protocol", func(c *Config) { c.Rules[1].FrontPort = c.Rules[0].FrontPort }, ""},
		{"loopback frontend with bridge", func(c *Config) { c.Rules[0].FrontAddr = addr("127.0.0.1") }, ""},
		{"empty set", func(c *Config) { c.Set = "" }, "set name"},
		{"set with a slash", func(c *Config) { c.Set = "a/b" }, `has '/' at offset 1`},
		{"long set", func(c *Config) { c.Set = strings.Repeat("a", 64) }, "1-63 characters"},
		{"unknown proto", func(c *Config) { c.Rules[0].Proto = "sctp" }, `unknown protocol "sctp"`},
		{"empty proto", func(c *Config) { c.Rules[0].Proto = "" }, `unknown protocol ""`},
		{"unknown mode", func(c *Config) { c.Rules[0].Mode = "leastconn" }, `unknown mode "leastconn"`},
		{"no frontend address", func(c *Config) { c.Rules[0].FrontAddr = netip.Addr{} }, "frontend: no address"},
		{"IPv6 frontend", func(c *Config) { c.Rules[0].FrontAddr = addr("fd00::1") }, "not IPv4"},
		{"IPv4-mapped frontend", func(c *Config) { c.Rules[0].FrontAddr = addr("::ffff:10.77.0.1") }, "not IPv4"},
		{"unspecified frontend", func(c *Config) { c.Rules[0].FrontAddr = addr("0.0.0.0") }, "unspecified"},
		{"multicast frontend", func(c *Config) { c.Rules[0].FrontAddr = addr("224.0.0.1") }, "not unicast"},
		{"broadcast frontend", func(c *Config) { c.Rules[0].FrontAddr = addr("255.255.255.255") }, "not unicast"},
		{"zero front port", func(c *Config) { c.Rules[0].FrontPort = 0 }, "port 0"},
		{"zero back port", func(c *Config) { c.Rules[0].BackPort = 0 }, "backend port 0"},
		{"duplicate frontend", func(c *Config) {
			c.Rules = append(c.Rules, Rule{Proto: ProtoTCP, FrontAddr: addr("10.77.0.1"), FrontPort: 8080, BackPort: 81, Mode: ModeSourceIP})
		}, "rules 0 and 2 have the same frontend tcp 10.77.0.1:8080"},
		{"loopback frontend without bridge", func(c *Config) {
			c.Rules[0].FrontAddr = addr("127.0.0.1")
			c.Bridge = ""
		}, "use the network's host address"},
		{"bad bridge", func(c *Config) { c.Bridge = "../all" }, "not a valid interface name"},
		{"long bridge", func(c *Config) { c.Bridge = "abcdefghijklmnop" }, "not a valid interface name"},
		{"IPv6 network", func(c *Config) { c.Network = netip.MustParsePrefix("fd00::1/64") }, "not IPv4"},
		{"backend without name", func(c *Config) { c.Backends[0].Name = "" }, "has no name"},
		{"duplicate backend name", func(c *Config) { c.Backends[1].Name = c.Backends[0].Name }, `backend name "web-2" appears twice`},
		{"duplicate backend address", func(c *Config) { c.Backends[1].Addr = c.Backends[0].Addr }, "same address 10.77.0.12"},
		{"IPv6 backend", func(c *Config) { c.Backends[0].Addr = addr("fd00::2") }, "not IPv4"},
		{"no backend address", func(c *Config) { c.Backends[0].Addr = netip.Addr{} }, "no address"},
		{"loopback backend", func(c *Config) { c.Backends[0].Addr = addr("127.0.0.2") }, "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want an error with %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestApplyValidatesFirst(t *testing.T) {
	m := &Manager{} // no connection: Apply must not reach it
	c := validConfig()
	c.Rules[0].FrontPort = 0
	if err := m.Apply(c); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply of an invalid Config: %v, want ErrInvalid", err)
	}
	if err := m.Delete("no/such"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Delete of an invalid name: %v, want ErrInvalid", err)
	}
}

func TestTableName(t *testing.T) {
	if got := TableName("web"); got != "gale-set-web" {
		t.Fatalf("TableName(web) = %q", got)
	}
	if !strings.HasPrefix(TableName("x"), TablePrefix) {
		t.Fatal("TableName does not start with TablePrefix")
	}
}

// render prints expressions the way `nft --debug=netlink` does, so that
// the expected rules below can be compared with what nft itself compiles.
func render(t *testing.T, exprs []expr.Any) []string {
	t.Helper()
	reg := func(r uint32) string {
		// nft prints a 32-bit register that starts a 16-byte one as the latter.
		if r >= unix.NFT_REG32_00 && (r-unix.NFT_REG32_00)%4 == 0 {
			r = (r-unix.NFT_REG32_00)/4 + unix.NFT_REG_1
		}
		return fmt.Sprint(r)
	}
	words := func(b []byte) string {
		var w []string
		for i := 0; i < len(b); i += 4 {
			var word [4]byte
			copy(word[:], b[i:])
			w = append(w, fmt.Sprintf("0x%08x", binary.NativeEndian.Uint32(word[:])))
		}
		return strings.Join(w, " ")
	}
	base := map[expr.PayloadBase]string{expr.PayloadBaseNetworkHeader: "network", expr.PayloadBaseTransportHeader: "transport"}
	meta := map[expr.MetaKey]string{expr.MetaKeyL4PROTO: "l4proto", expr.MetaKeyIIFNAME: "iifname"}
	ct := map[expr.CtKey]string{expr.CtKeySTATUS: "status", expr.CtKeySTATE: "state", expr.CtKeyDST: "dst", expr.CtKeyPROTODST: "proto_dst"}
	var out []string
	for _, e := range exprs {
		var s string
		switch e := e.(type) {
		case *expr.Payload:
			s = fmt.Sprintf("payload load %db @ %s header + %d => reg %s", e.Len, base[e.Base], e.Offset, reg(e.DestRegister))
		case *expr.Cmp:
			op := map[expr.CmpOp]string{expr.CmpOpEq: "eq", expr.CmpOpNeq: "neq"}[e.Op]
			s = fmt.Sprintf("cmp %s reg %s %s", op, reg(e.Register), words(e.Data))
		case *expr.Meta:
			s = fmt.Sprintf("meta load %s => reg %s", meta[e.Key], reg(e.Register))
		case *expr.Hash:
			s = fmt.Sprintf("hash reg %s = jhash(reg %s, %d, 0x%x) %% mod %d", reg(e.DestRegister), reg(e.SourceRegister), e.Length, e.Seed, e.Modulus)
		case *expr.Numgen:
			s = fmt.Sprintf("numgen reg %s = inc mod %d", reg(e.Register), e.Modulus)
		case *expr.Lookup:
			s = fmt.Sprintf("lookup reg %s set %s dreg %s", reg(e.SourceRegister), e.SetName, reg(e.DestRegister))
		case *expr.Immediate:
			s = fmt.Sprintf("immediate reg %s %s", reg(e.Register), words(e.Data))
		case *expr.NAT:
			s = fmt.Sprintf("nat dnat ip addr_min reg %s proto_min reg %s flags 0x2", reg(e.RegAddrMin), reg(e.RegProtoMin))
			if e.Type != expr.NATTypeDestNAT || e.Family != unix.NFPROTO_IPV4 || !e.Specified || e.RegAddrMax != 0 || e.RegProtoMax != 0 {
				s += fmt.Sprintf(" UNEXPECTED %+v", *e)
			}
		case *expr.Bitwise:
			s = fmt.Sprintf("bitwise reg %s = ( reg %s & %s ) ^ %s", reg(e.DestRegister), reg(e.SourceRegister), words(e.Mask), words(e.Xor))
		case *expr.Ct:
			s = fmt.Sprintf("ct load %s => reg %s", ct[e.Key], reg(e.Register))
			if e.Key == expr.CtKeyDST || e.Key == expr.CtKeyPROTODST {
				s += map[uint32]string{0: " , dir original", 1: " , dir reply"}[e.Direction]
			}
		case *expr.Masq:
			s = "masq"
		case *expr.Verdict:
			s = map[expr.VerdictKind]string{expr.VerdictDrop: "immediate reg 0 drop"}[e.Kind]
		default:
			t.Fatalf("render: unexpected expression %T", e)
		}
		out = append(out, "[ "+s+" ]")
	}
	return out
}

// rulesOf returns the rendered rules of chain in p.
func rulesOf(t *testing.T, p plan, chain string) [][]string {
	var out [][]string
	for _, r := range p.rules {
		if r.Chain.Name == chain {
			if r.Table != p.table {
				t.Errorf("rule of chain %s is in another table", chain)
			}
			out = append(out, render(t, r.Exprs))
		}
	}
	return out
}

func lines(s string) []string {
	return strings.Split(strings.TrimSpace(strings.ReplaceAll(s, "\t", "")), "\n")
}

// The expected rules are nft's own compile (nft --debug=netlink) of the
// same rules, e.g.
//
//	ip daddr 10.77.0.1 tcp dport 8080 dnat to jhash ip saddr . ip daddr .
//	meta l4proto . th sport . th dport mod 3 seed 0x... map {...} : 80
//
// except the map name and "ct load dst" where nft says "dst_ip" (the same
// 4 bytes in an ip table).
func TestBuildDNAT(t *testing.T) {
	c := Config{
		Set: "web",
		Rules: []Rule{
			{Proto: ProtoTCP, FrontAddr: netip.MustParseAddr("10.77.0.1"), FrontPort: 8080, BackPort: 80, Mode: ModeHash},
			{Proto: ProtoTCP, FrontAddr: netip.MustParseAddr("10.77.0.1"), FrontPort: 8081, BackPort: 80, Mode: ModeSourceIP},
			{Proto: ProtoUDP, FrontAddr: netip.MustParseAddr("10.77.0.1"), FrontPort: 8080, BackPort: 80, Mode: ModeRoundRobin},
		},
		Backends: []Backend{
			{Name: "c", Addr: netip.MustParseAddr("10.77.0.13")},
			{Name: "a", Addr: netip.MustParseAddr("10.77.0.11")},
			{Name: "b", Addr: netip.MustParseAddr("10.77.0.12")},
		},
		Network: netip.MustParsePrefix("10.77.0.1/24"),
		Bridge:  "br0",
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := build(c)
	seed := hashSeed("web")
	front := `
		[ payload load 4b @ network header + 16 => reg 1 ]
		[ cmp eq reg 1 0x01004d0a ]
		[ meta load l4proto => reg 1 ]
		[ cmp eq reg 1 0x00000006 ]
		[ payload load 2b @ transport header + 2 => reg 1 ]
		[ cmp eq reg 1 0x0000901f ]`
	dnat := `
		[ lookup reg 1 set backends dreg 1 ]
		[ immediate reg 2 0x00005000 ]
		[ nat dnat ip addr_min reg 1 proto_min reg 2 flags 0x2 ]`
	hash := lines(front + fmt.Sprintf(`
		[ payload load 4b @ network header + 12 => reg 2 ]
		[ payload load 4b @ network header + 16 => reg 13 ]
		[ meta load l4proto => reg 14 ]
		[ payload load 2b @ transport header + 0 => reg 15 ]
		[ payload load 2b @ transport header + 2 => reg 3 ]
		[ hash reg 1 = jhash(reg 2, 20, 0x%x) %% mod 3 ]`, seed) + dnat)
	sourceIP := lines(strings.Replace(front, "0x0000901f", "0x0000911f", 1) + fmt.Sprintf(`
		[ payload load 4b @ network header + 12 => reg 2 ]
		[ hash reg 1 = jhash(reg 2, 4, 0x%x) %% mod 3 ]`, seed) + dnat)
	roundRobin := lines(strings.Replace(front, "0x00000006", "0x00000011", 1) + `
		[ numgen reg 1 = inc mod 3 ]` + dnat)
	want := [][]string{hash, sourceIP, roundRobin}
	for _, chain := range []string{chainPrerouting, chainOutput} {
		if got := rulesOf(t, p, chain); !reflect.DeepEqual(got, want) {
			t.Errorf("chain %s:\n got %s\nwant %s", chain, strings.Join(flatten(got), "\n"), strings.Join(flatten(want), "\n"))
		}
	}
	masq := func(proto, port string) []string {
		return lines(`
		[ payload load 4b @ network header + 12 => reg 1 ]
		[ bitwise reg 1 = ( reg 1 & 0x00ffffff ) ^ 0x00000000 ]
		[ cmp eq reg 1 0x00004d0a ]
		[ ct load status => reg 1 ]
		[ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ]
		[ cmp neq reg 1 0x00000000 ]
		[ ct load dst => reg 1 , dir original ]
		[ cmp eq reg 1 0x01004d0a ]
		[ meta load l4proto => reg 1 ]
		[ cmp eq reg 1 ` + proto + ` ]
		[ ct load proto_dst => reg 1 , dir original ]
		[ cmp eq reg 1 ` + port + ` ]
		[ masq ]`)
	}
	wantPost := [][]string{masq("0x00000006", "0x0000901f"), masq("0x00000006", "0x0000911f"), masq("0x00000011", "0x0000901f")}
	if got := rulesOf(t, p, chainPostrouting); !reflect.DeepEqual(got, wantPost) {
		t.Errorf("chain postrouting:\n got %s\nwant %s", strings.Join(flatten(got), "\n"), strings.Join(flatten(wantPost), "\n"))
	}
	if got := rulesOf(t, p, chainInput); len(got) != 1 {
		t.Errorf("input rules with a Bridge: %v, want the loopback guard", got)
	}
	if p.localnet {
		t.Error("localnet without a loopback frontend")
	}

	// The map: backends sorted by name, keys host order (as the hash and
	// numgen write them), one map for all rules.
	if p.m == nil {
		t.Fatal("no backend map")
	}
	s := p.m.set
	if s.Name != mapBackends || s.ID == 0 || !s.IsMap || s.Anonymous || s.KeyType != nftables.TypeInteger || s.DataType != nftables.TypeIPAddr || s.Table != p.table {
		t.Errorf("map %+v", *s)
	}
	var got []string
	for _, e := range p.m.elems {
		got = append(got, fmt.Sprintf("%d:%s", binaryutil.NativeEndian.Uint32(e.Key), netip.AddrFrom4([4]byte(e.Val))))
	}
	if want := []string{"0:10.77.0.11", "1:10.77.0.12", "2:10.77.0.13"}; !reflect.DeepEqual(got, want) {
		t.Errorf("map elements %v, want %v", got, want)
	}
	for _, r := range p.rules {
		for _, e := range r.Exprs {
			if l, ok := e.(*expr.Lookup); ok && (l.SetName != s.Name || l.SetID != s.ID) {
				t.Errorf("lookup of %q/%d, not of the map %q/%d", l.SetName, l.SetID, s.Name, s.ID)
			}
		}
	}
}

func flatten(rules [][]string) []string {
	var out []string
	for i, r := range rules {
		out = append(out, fmt.Sprintf("rule %d:", i))
		out = append(out, r...)
	}
	return out
}

func TestBuildChainsAndTable(t *testing.T) {
	p := build(validConfig())
	if p.table.Name != "gale-set-web" || p.table.Family != nftables.TableFamilyIPv4 {
		t.Fatalf("table %+v", *p.table)
	}
	type chain struct {
		name, typ string
		hook      nftables.ChainHook
		prio      nftables.ChainPriority
	}
	var got []chain
	for _, c := range p.chains {
		if c.Table != p.table || c.Policy == nil || *c.Policy != nftables.ChainPolicyAccept {
			t.Errorf("chain %s: table %v policy %v", c.Name, c.Table, c.Policy)
		}
		got = append(got, chain{c.Name, string(c.Type), *c.Hooknum, *c.Priority})
	}
	want := []chain{
		{"prerouting", "nat", unix.NF_INET_PRE_ROUTING, -100},
		{"output", "nat", unix.NF_INET_LOCAL_OUT, -100},
		{"postrouting", "nat", unix.NF_INET_POST_ROUTING, 100},
		{"input", "filter", unix.NF_INET_LOCAL_IN, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("chains %+v, want %+v", got, want)
	}
	if p.localnet {
		t.Error("localnet without a loopback frontend")
	}
	c := validConfig()
	c.Bridge = ""
	if p := build(c); len(p.chains) != 3 || rulesOf(t, p, chainInput) != nil {
		t.Errorf("without Bridge: %d chains, want the 3 nat chains and no guard", len(p.chains))
	}
}

func TestBuildLoopback(t *testing.T) {
	c := validConfig()
	c.Rules = []Rule{{Proto: ProtoTCP, FrontAddr: netip.MustParseAddr("127.0.0.1"), FrontPort: 8080, BackPort: 80, Mode: ModeRoundRobin}}
	p := build(c)
	if !p.localnet {
		t.Error("no localnet for a loopback frontend")
	}
	if got := rulesOf(t, p, chainPrerouting); got != nil {
		t.Errorf("a loopback frontend in prerouting: %v", got)
	}
	if got := rulesOf(t, p, chainOutput); len(got) != 1 {
		t.Errorf("output rules %v, want one", got)
	}
	post := rulesOf(t, p, chainPostrouting)
	if len(post) != 1 || post[0][1] != "[ bitwise reg 1 = ( reg 1 & 0x000000ff ) ^ 0x00000000 ]" || post[0][2] != "[ cmp eq reg 1 0x0000007f ]" {
		t.Errorf("postrouting %v, want one masquerade of 127.0.0.0/8", post)
	}
	last := p.chains[len(p.chains)-1]
	if last.Name != chainInput || last.Type != nftables.ChainTypeFilter || *last.Hooknum != unix.NF_INET_LOCAL_IN || *last.Priority != 0 {
		t.Errorf("guard chain %+v", *last)
	}
	// nft: iifname "galebr0" ip daddr 127.0.0.0/8 ct state ! established,related drop
	want := lines(`
		[ meta load iifname => reg 1 ]
		[ cmp eq reg 1 0x656c6167 0x00307262 0x00000000 0x00000000 ]
		[ payload load 1b @ network header + 16 => reg 1 ]
		[ cmp eq reg 1 0x0000007f ]
		[ ct load state => reg 1 ]
		[ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]
		[ cmp eq reg 1 0x00000000 ]
		[ immediate reg 0 drop ]`)
	if got := rulesOf(t, p, chainInput); !reflect.DeepEqual(got, [][]string{want}) {
		t.Errorf("guard rule:\n got %v\nwant %v", got, want)
	}
}

func TestBuildNoBackendsNoNetwork(t *testing.T) {
	c := validConfig()
	c.Backends = nil
	p := build(c)
	if p.m != nil {
		t.Errorf("without backends: map %+v, want none", *p.m)
	}
	for _, ch := range []string{chainPrerouting, chainOutput, chainPostrouting} {
		if got := rulesOf(t, p, ch); got != nil {
			t.Errorf("without backends: chain %s has %v, want no rule", ch, got)
		}
	}
	if len(p.chains) != 4 || len(rulesOf(t, p, chainInput)) != 1 {
		t.Errorf("without backends: %d chains, %d rules; want the 4 chains, only the guard", len(p.chains), len(p.rules))
	}
	c = validConfig()
	c.Network = netip.Prefix{}
	p = build(c)
	if got := rulesOf(t, p, chainPostrouting); got != nil {
		t.Errorf("without Network: postrouting %v, want no hairpin rule", got)
	}
	if got := rulesOf(t, p, chainPrerouting); len(got) != 2 {
		t.Errorf("without Network: %d prerouting rules, want 2", len(got))
	}
}

func TestHashSeed(t *testing.T) {
	if hashSeed("web") != hashSeed("web") || hashSeed("web") == 0 {
		t.Fatal("hashSeed is not a fixed non-zero value")
	}
	if hashSeed("web") == hashSeed("api") {
		t.Fatal("two sets share a seed")
	}
}

func TestPrefixMask(t *testing.T) {
	for bits, want := range map[int][4]byte{0: {}, 8: {255}, 23: {255, 255, 254}, 32: {255, 255, 255, 255}} {
		if got := prefixMask(bits); got != want {
			t.Errorf("prefixMask(%d) = %v, want %v", bits, got, want)
		}
	}
}

func TestWithNetNSRejectsBadFD(t *testing.T) {
	if _, err := New(WithNetNS(0)); err == nil {
		t.Fatal("New(WithNetNS(0)): nil error")
	}
}
