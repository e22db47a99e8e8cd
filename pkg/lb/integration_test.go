package lb

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/galevm/gale/pkg/internal/testtool"
)

// lbEnv is the test topology: namespace host (the "host": bridge br0,
// 10.77.0.1/24, where the tables go), three backends b1..b3
// (10.77.0.11-13, HTTP on 8080, UDP on 8053) and a guest (10.77.0.50), all
// on br0 through veth pairs.
type lbEnv struct {
	prefix   string // of the namespaces' names
	host     *testNS
	guest    *testNS
	backends []Backend
	m        *Manager
}

const (
	testFront  = "10.77.0.1"
	testHTTP   = 8080
	testUDP    = 8053
	testBridge = "br0"
	testTimout = 3 * time.Second
)

func newLBEnv(t *testing.T) *lbEnv {
	t.Helper()
	prefix := fmt.Sprintf("gale-lbtest-%d", os.Getpid())
	e := &lbEnv{prefix: prefix, host: newTestNS(t, prefix)}
	h := e.host.name
	ipCmd(t, "-n", h, "link", "set", "lo", "up")
	ipCmd(t, "-n", h, "link", "add", testBridge, "type", "bridge")
	ipCmd(t, "-n", h, "addr", "add", testFront+"/24", "dev", testBridge)
	ipCmd(t, "-n", h, "link", "set", testBridge, "up")
	if err := e.host.setSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
		t.Fatalf("ip_forward: %v", err)
	}
	// Like a libvirt host without br_netfilter: bridged packets skip the
	// IP hooks, so only the hairpin masquerade lets a guest reach a
	// frontend. (With it, conntrack would also un-NAT bridged replies.)
	if err := e.host.setSysctl("/proc/sys/net/bridge/bridge-nf-call-iptables", "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bridge-nf-call-iptables: %v", err)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("b%d", i)
		addr := fmt.Sprintf("10.77.0.%d", 10+i)
		n := e.attach(t, name, addr)
		serveBackend(t, n, name, testHTTP, testUDP)
		e.backends = append(e.backends, Backend{Name: name, Addr: netip.MustParseAddr(addr)})
	}
	e.guest = e.attach(t, "c", "10.77.0.50")
	m, err := New(WithNetNS(e.host.fd))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	e.m = m
	// The bridge needs a moment for its ports to forward.
	e.waitBackends(t)
	return e
}

// attach makes namespace prefix-name with addr/24 on eth0, a veth whose
// peer v<name> is a port of the host's bridge, and a default route via the
// host.
func (e *lbEnv) attach(t *testing.T, name, addr string) *testNS {
	t.Helper()
	h := e.host.name
	n := newTestNS(t, e.prefix+"-"+name)
	veth := "v" + name
	ipCmd(t, "-n", h, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", n.name)
	ipCmd(t, "-n", h, "link", "set", veth, "master", testBridge, "up")
	ipCmd(t, "-n", n.name, "link", "set", "lo", "up")
	ipCmd(t, "-n", n.name, "addr", "add", addr+"/24", "dev", "eth0")
	ipCmd(t, "-n", n.name, "link", "set", "eth0", "up")
	ipCmd(t, "-n", n.name, "route", "add", "default", "via", testFront)
	return n
}

// waitBackends waits until each backend answers directly from the host.
func (e *lbEnv) waitBackends(t *testing.T) {
	t.Helper()
	for _, b := range e.backends {
		deadline := time.Now().Add(10 * time.Second)
		for {
			name, _, err := e.host.get(fmt.Sprintf("http://%s:%d/", b.Addr, testHTTP), time.Second)
			if err == nil && name == b.Name {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("backend %s not reachable: %q %v", b.Name, name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// config is set "web" with one rule per (proto, port, mode) given.
func (e *lbEnv) config(backends []Backend, rules ...Rule) Config {
	return Config{
		Set:      "web",
		Rules:    rules,
		Backends: backends,
		Network:  netip.MustParsePrefix(testFront + "/24"),
		Bridge:   testBridge,
	}
}

func tcpRule(mode Mode) Rule {
	return Rule{Proto: ProtoTCP, FrontAddr: netip.MustParseAddr(testFront), FrontPort: testHTTP, BackPort: testHTTP, Mode: mode}
}

// hits does n GETs from ns to url and counts the answers by backend; the
// client addresses the backends saw are returned too.
func hits(t *testing.T, ns *testNS, url string, n int) (map[string]int, map[string]bool) {
	t.Helper()
	got := map[string]int{}
	clients := map[string]bool{}
	for i := 0; i < n; i++ {
		name, client, err := ns.get(url, testTimout)
		if err != nil {
			t.Fatalf("GET %s from %s (request %d): %v", url, ns.name, i, err)
		}
		got[name]++
		if ap, err := netip.ParseAddrPort(client); err == nil {
			clients[ap.Addr().String()] = true
		}
	}
	return got, clients
}

func frontURL() string { return fmt.Sprintf("http://%s:%d/", testFront, testHTTP) }

// TestDataPath runs the kernel data path in namespaces made for it. It
// needs root; it skips when namespaces cannot be made.
func TestDataPath(t *testing.T) {
	e := newLBEnv(t)

	t.Run("roundrobin reaches every backend", func(t *testing.T) {
		if err := e.m.Apply(e.config(e.backends, tcpRule(ModeRoundRobin))); err != nil {
			t.Fatal(err)
		}
		got, _ := hits(t, e.host, frontURL(), 30)
		if want := map[string]int{"b1": 10, "b2": 10, "b3": 10}; !reflect.DeepEqual(got, want) {
			t.Fatalf("round robin over 30 connections: got %v, want %v", got, want)
		}
	})

	t.Run("hash spreads source ports", func(t *testing.T) {
		if err := e.m.Apply(e.config(e.backends, tcpRule(ModeHash))); err != nil {
			t.Fatal(err)
		}
		got, _ := hits(t, e.host, frontURL(), 60)
		if len(got) != 3 {
			t.Fatalf("hash over 60 connections reached %v, want all of b1 b2 b3", got)
		}
	})

	t.Run("sourceip keeps one client on one backend", func(t *testing.T) {
		if err := e.m.Apply(e.config(e.backends, tcpRule(ModeSourceIP))); err != nil {
			t.Fatal(err)
		}
		for _, ns := range []*testNS{e.host, e.guest} {
			got, _ := hits(t, ns, frontURL(), 20)
			if len(got) != 1 {
				t.Fatalf("source ip affinity from %s: reached %v, want one backend", ns.name, got)
			}
		}
	})

	t.Run("nft reads the table back", func(t *testing.T) {
		testtool.Need(t, "nftables, see scripts/packages.txt", "nft")
		c := e.config(e.backends,
			tcpRule(ModeHash),
			Rule{Proto: ProtoTCP, FrontAddr: netip.MustParseAddr(testFront), FrontPort: 8081, BackPort: testHTTP, Mode: ModeSourceIP},
			Rule{Proto: ProtoUDP, FrontAddr: netip.MustParseAddr(testFront), FrontPort: testUDP, BackPort: testUDP, Mode: ModeRoundRobin},
			Rule{Proto: ProtoTCP, FrontAddr: netip.MustParseAddr("127.0.0.1"), FrontPort: 8082, BackPort: testHTTP, Mode: ModeRoundRobin},
		)
		if err := e.m.Apply(c); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ip", "netns", "exec", e.host.name, "nft", "list", "table", "ip", TableName("web")).CombinedOutput()
		if err != nil {
			t.Fatalf("nft list table: %v\n%s", err, out)
		}
		text := string(out)
		t.Logf("nft list table ip %s:\n%s", TableName("web"), text)
		seed := fmt.Sprintf("seed 0x%08x", hashSeed("web"))
		backendMap := "map @backends"
		for _, want := range []string{
			"type nat hook prerouting priority dstnat; policy accept;",
			"type nat hook output priority -100; policy accept;",
			"elements = { 0 : 10.77.0.11, 1 : 10.77.0.12, 2 : 10.77.0.13 }",
			"type nat hook postrouting priority srcnat; policy accept;",
			"type filter hook input priority filter; policy accept;",
			"ip daddr 10.77.0.1 tcp dport 8080 dnat to jhash ip saddr . ip daddr . meta l4proto . tcp sport . tcp dport mod 3 " + seed + " " + backendMap + ":8080",
			"ip daddr 10.77.0.1 tcp dport 8081 dnat to jhash ip saddr mod 3 " + seed + " " + backendMap + ":8080",
			"ip daddr 10.77.0.1 udp dport 8053 dnat to numgen inc mod 3 " + backendMap + ":8053",
			"ip daddr 127.0.0.1 tcp dport 8082 dnat to numgen inc mod 3 " + backendMap + ":8080",
			"ip saddr 10.77.0.0/24 ct status dnat ct original ip daddr 10.77.0.1 meta l4proto tcp ct original proto-dst 8080 masquerade",
			"ip saddr 10.77.0.0/24 ct status dnat ct original ip daddr 10.77.0.1 meta l4proto udp ct original proto-dst 8053 masquerade",
			"ip saddr 127.0.0.0/8 ct status dnat ct original ip daddr 127.0.0.1 meta l4proto tcp ct original proto-dst 8082 masquerade",
			`iifname "br0" ip daddr 127.0.0.0/8 ct state ! established,related drop`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("nft list table lacks\n\t%s\ngot:\n%s", want, text)
			}
		}
		// The loopback frontend is only in output.
		pre := text[strings.Index(text, "chain prerouting"):strings.Index(text, "chain output")]
		if strings.Contains(pre, "127.0.0.1") {
			t.Errorf("loopback frontend in prerouting:\n%s", pre)
		}
	})

	t.Run("udp", func(t *testing.T) {
		r := Rule{Proto: ProtoUDP, FrontAddr: netip.MustParseAddr(testFront), FrontPort: 5353, BackPort: testUDP, Mode: ModeRoundRobin}
		if err := e.m.Apply(e.config(e.backends, r)); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for i := 0; i < 9; i++ {
			name, err := e.host.udpAsk(fmt.Sprintf("%s:%d", testFront, 5353), testTimout)
			if err != nil {
				t.Fatalf("udp request %d: %v", i, err)
			}
			got[name]++
		}
		if want := map[string]int{"b1": 3, "b2": 3, "b3": 3}; !reflect.DeepEqual(got, want) {
			t.Fatalf("udp round robin over 9 sockets: got %v, want %v", got, want)
		}
	})

	t.Run("apply removes a backend atomically and keeps its connections", func(t *testing.T) {
		if err := e.m.Apply(e.config(e.backends, tcpRule(ModeRoundRobin))); err != nil {
			t.Fatal(err)
		}
		c, err := e.host.dial("tcp4", fmt.Sprintf("%s:%d", testFront, testHTTP), testTimout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ka := &keepAlive{c: c, r: bufio.NewReader(c)}
		gone, err := ka.ask()
		if err != nil {
			t.Fatalf("first request on the kept connection: %v", err)
		}
		var rest []Backend
		for _, b := range e.backends {
			if b.Name != gone {
				rest = append(rest, b)
			}
		}
		if len(rest) != 2 {
			t.Fatalf("kept connection reached %q, not one of the backends", gone)
		}
		// Replacing the table is one transaction: a client hammering the
		// frontend meanwhile never finds it missing (which would be a
		// refused connection: nothing listens on the host's port).
		stop := make(chan struct{})
		failed := make(chan error, 1)
		go func() {
			defer close(failed)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := e.host.get(frontURL(), testTimout); err != nil {
					failed <- fmt.Errorf("request %d during the Applies: %w", n, err)
					return
				}
			}
		}()
		for i := 0; i < 20; i++ {
			if err := e.m.Apply(e.config(e.backends, tcpRule(ModeRoundRobin))); err != nil {
				t.Fatal(err)
			}
			if err := e.m.Apply(e.config(rest, tcpRule(ModeRoundRobin))); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		if err := <-failed; err != nil {
			t.Fatal(err)
		}
		got, _ := hits(t, e.host, frontURL(), 20)
		if got[gone] != 0 || len(got) != 2 {
			t.Fatalf("after removing %s: new connections reached %v, want only the other two", gone, got)
		}
		for i := 0; i < 3; i++ {
			name, err := ka.ask()
			if err != nil {
				t.Fatalf("established connection to %s after Apply: %v", gone, err)
			}
			if name != gone {
				t.Fatalf("established connection moved from %s to %s", gone, name)
			}
		}
		// The drained backend still has the kept connection; once it is
		// closed, it has none (what a drain waits for).
		var goneAddr netip.Addr
		for _, b := range e.backends {
			if b.Name == gone {
				goneAddr = b.Addr
			}
		}
		if n, err := e.m.Connections(goneAddr, testHTTP); err != nil || n != 1 {
			t.Fatalf("open connections to the drained %s: %d, %v; want 1", gone, n, err)
		}
		c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, err := e.m.Connections(goneAddr, testHTTP)
			if err == nil && n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("open connections to %s after closing the last one: %d, %v; want 0", gone, n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("hairpin from a guest of the network", func(t *testing.T) {
		if err := e.m.Apply(e.config(e.backends, tcpRule(ModeRoundRobin))); err != nil {
			t.Fatal(err)
		}
		got, clients := hits(t, e.guest, frontURL(), 9)
		if len(got) != 3 {
			t.Fatalf("hairpin: reached %v, want all three", got)
		}
		if want := map[string]bool{testFront: true}; !reflect.DeepEqual(clients, want) {
			t.Fatalf("hairpin: backends saw clients %v, want only the host address %s (masquerade)", clients, testFront)
		}
		// Without Network there is no masquerade: the backend answers the
		// guest directly, and the guest's connection never completes.
		c := e.config(e.backends, tcpRule(ModeRoundRobin))
		c.Network = netip.Prefix{}
		if err := e.m.Apply(c); err != nil {
			t.Fatal(err)
		}
		if name, _, err := e.guest.get(frontURL(), time.Second); err == nil {
			t.Fatalf("without Network, the guest still reached %s: the hairpin rule is not what makes it work", name)
		}
	})

	t.Run("loopback frontend", func(t *testing.T) {
		r := Rule{Proto: ProtoTCP, FrontAddr: netip.MustParseAddr("127.0.0.1"), FrontPort: 8090, BackPort: testHTTP, Mode: ModeRoundRobin}
		if err := e.m.Apply(e.config(e.backends, r)); err != nil {
			t.Fatal(err)
		}
		v, err := e.host.sysctl("/proc/sys/net/ipv4/conf/" + testBridge + "/route_localnet")
		if err != nil || v != "1" {
			t.Fatalf("route_localnet on %s: %q, %v; want 1", testBridge, v, err)
		}
		got, _ := hits(t, e.host, "http://127.0.0.1:8090/", 9)
		if len(got) != 3 {
			t.Fatalf("loopback frontend reached %v, want all three", got)
		}
		// route_localnet=1 lets neighbours on the bridge send to the host's
		// 127.0.0.0/8 (CVE-2020-8558); the table's input guard drops them.
		// A neighbour whose own loopback routes are gone sends a datagram
		// to 127.0.0.1 through the bridge: with no Bridge in the Config (no
		// guard, route_localnet still 1) it arrives; with a loopback
		// frontend, or a mere Bridge, it does not.
		x := e.attach(t, "x", "10.77.0.60")
		ipCmd(t, "-n", x.name, "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
		ipCmd(t, "-n", x.name, "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local")
		ipCmd(t, "-n", x.name, "route", "add", "127.0.0.0/8", "via", testFront, "dev", "eth0")
		if err := e.host.setSysctl("/proc/sys/net/ipv4/conf/"+testBridge+"/route_localnet", "1"); err != nil {
			t.Fatal(err)
		}
		unguarded := e.config(e.backends, tcpRule(ModeRoundRobin))
		unguarded.Bridge = ""
		if err := e.m.Apply(unguarded); err != nil {
			t.Fatal(err)
		}
		if !e.localReached(t, x) {
			t.Fatal("control: with route_localnet=1 and no guard, the neighbour's datagram to 127.0.0.1 did not arrive; the guard check below would prove nothing")
		}
		if err := e.m.Apply(e.config(e.backends, r)); err != nil {
			t.Fatal(err)
		}
		if e.localReached(t, x) {
			t.Fatal("with a loopback frontend, a neighbour on the bridge reached the host's 127.0.0.1")
		}
		if err := e.m.Apply(e.config(e.backends, tcpRule(ModeRoundRobin))); err != nil {
			t.Fatal(err)
		}
		if e.localReached(t, x) {
			t.Fatal("with Bridge and no loopback frontend (route_localnet still 1), a neighbour on the bridge reached the host's 127.0.0.1")
		}
		if err := e.m.Apply(e.config(e.backends, r)); err != nil {
			t.Fatal(err)
		}

		noBridge := e.config(e.backends, r)
		noBridge.Bridge = ""
		if err := e.m.Apply(noBridge); !errors.Is(err, ErrInvalid) {
			t.Fatalf("loopback frontend without Bridge: got %v, want ErrInvalid", err)
		}
	})

	t.Run("sets, delete and other tables", func(t *testing.T) {
		other, err := nftables.New(nftables.WithNetNSFd(e.host.fd))
		if err != nil {
			t.Fatal(err)
		}
		ot := other.AddTable(&nftables.Table{Name: "lbtest-other", Family: nftables.TableFamilyIPv4})
		other.AddChain(&nftables.Chain{Name: "keep", Table: ot})
		// A table of another family with the prefix is not ours either.
		other.AddTable(&nftables.Table{Name: TableName("inet"), Family: nftables.TableFamilyINet})
		if err := other.Flush(); err != nil {
			t.Fatalf("make the other tables: %v", err)
		}
		if err := e.m.Apply(e.config(e.backends, tcpRule(ModeHash))); err != nil {
			t.Fatal(err)
		}
		api := e.config(nil, Rule{Proto: ProtoTCP, FrontAddr: netip.MustParseAddr(testFront), FrontPort: 9000, BackPort: testHTTP})
		api.Set = "api"
		if err := e.m.Apply(api); err != nil {
			t.Fatal(err)
		}
		if sets, err := e.m.Sets(); err != nil || !reflect.DeepEqual(sets, []string{"api", "web"}) {
			t.Fatalf("Sets: %v, %v; want [api web]", sets, err)
		}
		// No backend: no DNAT, the host refuses the connection.
		if _, err := e.host.dial("tcp4", fmt.Sprintf("%s:9000", testFront), testTimout); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("frontend without backends: dial gave %v, want connection refused", err)
		}
		// An invalid Config changes nothing.
		bad := e.config(e.backends, tcpRule("fastest"))
		if err := e.m.Apply(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Apply of an unknown mode: %v, want ErrInvalid", err)
		}
		if got, _ := hits(t, e.host, frontURL(), 3); len(got) == 0 {
			t.Fatal("the table was changed by an invalid Apply")
		}
		if err := e.m.Delete("web"); err != nil {
			t.Fatal(err)
		}
		if err := e.m.Delete("web"); err != nil {
			t.Fatalf("Delete of an absent table: %v", err)
		}
		if sets, err := e.m.Sets(); err != nil || !reflect.DeepEqual(sets, []string{"api"}) {
			t.Fatalf("Sets after Delete: %v, %v; want [api]", sets, err)
		}
		if _, err := e.host.dial("tcp4", fmt.Sprintf("%s:%d", testFront, testHTTP), testTimout); err == nil {
			t.Fatal("the frontend still answers after Delete")
		}
		if err := e.m.Delete("api"); err != nil {
			t.Fatal(err)
		}
		if _, err := other.ListTableOfFamily("lbtest-other", nftables.TableFamilyIPv4); err != nil {
			t.Fatalf("the other table is gone: %v", err)
		}
		if _, err := other.ListChain(ot, "keep"); err != nil {
			t.Fatalf("the other table's chain is gone: %v", err)
		}
		if _, err := other.ListTableOfFamily(TableName("inet"), nftables.TableFamilyINet); err != nil {
			t.Fatalf("the inet table is gone: %v", err)
		}
	})
}

// localReached reports whether a datagram that x sends to 127.0.0.1:9998
// reaches a socket of the host bound there.
func (e *lbEnv) localReached(t *testing.T, x *testNS) bool {
	t.Helper()
	var pc net.PacketConn
	if err := e.host.do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", "127.0.0.1:9998")
		return err
	}); err != nil {
		t.Fatalf("listen on the host's loopback: %v", err)
	}
	defer pc.Close()
	c, err := x.dial("udp4", "127.0.0.1:9998", testTimout)
	if err != nil {
		t.Fatalf("neighbour socket: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("in?")); err != nil {
		t.Fatalf("neighbour send: %v", err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _, err = pc.ReadFrom(make([]byte, 16))
	return err == nil
}
