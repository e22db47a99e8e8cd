//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/galevm/gale/pkg/api"
)

// Addresses of the open-network scenario: the open network, and a client
// namespace ("another host") linked to the test namespace by a veth pair.
const (
	openCIDR   = "192.168.160.1/24"
	openHost   = "192.168.160.1"
	clientNS   = "gale-e2e-client"
	clientHost = "10.99.0.1" // the test namespace's end
	clientAddr = "10.99.0.2"
)

// netNS is a network namespace the test process can run code in.
type netNS struct{ fd int }

// do runs fn on a locked thread inside the namespace; the thread is never
// reused after.
func (n netNS) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// get fetches url on a new connection made inside the namespace.
func (n netNS) get(url string) (string, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := n.do(func() error {
				var err error
				c, err = net.DialTimeout(network, addr, 3*time.Second)
				return err
			})
			return c, err
		}}}
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// clientNamespace makes the client namespace with a route to the open
// network through the test namespace, and a listener on clientAddr:9999
// that answers "outside"; cleanup removes it all.
func (s *S) clientNamespace() (netNS, func()) {
	s.Helper()
	sh := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			s.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_ = exec.Command("ip", "netns", "del", clientNS).Run()
	_ = exec.Command("ip", "link", "del", "galecl0").Run()
	sh("ip", "netns", "add", clientNS)
	sh("ip", "link", "add", "galecl0", "type", "veth", "peer", "name", "galecl1")
	sh("ip", "link", "set", "galecl1", "netns", clientNS)
	sh("ip", "addr", "add", clientHost+"/24", "dev", "galecl0")
	sh("ip", "link", "set", "galecl0", "up")
	sh("ip", "-n", clientNS, "addr", "add", clientAddr+"/24", "dev", "galecl1")
	sh("ip", "-n", clientNS, "link", "set", "galecl1", "up")
	sh("ip", "-n", clientNS, "link", "set", "lo", "up")
	sh("ip", "-n", clientNS, "route", "add", "192.168.160.0/24", "via", clientHost)
	fd, err := unix.Open("/run/netns/"+clientNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		s.Fatalf("open client namespace: %v", err)
	}
	ns := netNS{fd: fd}
	var l net.Listener
	if err := ns.do(func() error {
		var err error
		l, err = net.Listen("tcp4", clientAddr+":9999")
		return err
	}); err != nil {
		s.Fatalf("listen in the client namespace: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "outside") })}
	go srv.Serve(l)
	return ns, func() {
		srv.Close()
		unix.Close(fd)
		_ = exec.Command("ip", "netns", "del", clientNS).Run()
		_ = exec.Command("ip", "link", "del", "galecl0").Run()
	}
}

// setsOpenNetwork: a set on an open network is reachable from another
// namespace through its frontend, while the network stays isolated: its
// guest gets no default route, cannot reach the other namespace even with
// a route added by hand, and the other namespace cannot reach the guest
// except through the frontend.
func setsOpenNetwork(s *S) {
	s.Expect("create the open network", 0, "network", "create", "pub", "--mode", api.NetworkOpen, "--cidr", openCIDR)
	defer s.Gale("network", "delete", "pub")
	ns, cleanup := s.clientNamespace()
	defer cleanup()
	s.Watch("pub-0")
	r := s.Gale("set", "create", "pub", "--image", "debian-12", "--network", "pub", "--cloud-init", "cloudinit/web-server.yaml",
		"--memory", "768M", "--disk", "4G", "--capacity", "1", "--lb", "8081:80",
		"--probe", "http:80/,interval=2s,timeout=1500ms,healthy=1", "--timeout", "8m")
	if !s.Check(r.Code == 0, "set create pub: %s", r) {
		return
	}
	set := decode[api.ScaleSet](s, s.Must("set", "show", "pub", "-o", "json"))
	s.Check(len(set.LB) == 1 && set.LB[0].Addr == openHost, "frontend: %+v, want %s", set.LB, openHost)

	page, err := ns.get("http://" + openHost + ":8081/")
	s.Check(err == nil && strings.Contains(page, "Hello from pub-0"), "from another namespace through the frontend: %q %v", page, err)

	ip := strings.TrimSpace(s.Gale("vm", "ip", "pub-0").Stdout)
	_, err = ns.get("http://" + ip + ":80/")
	s.Check(err != nil, "another namespace reached the guest %s directly, not through the frontend", ip)

	routes := s.guest("pub-0", "routes", "ip -4 route")
	s.Check(!strings.Contains(routes, "default"), "guest of an open network has a default route: %s", routes)
	s.guest("pub-0", "add a route out by hand", "ip route add 10.99.0.0/24 via "+openHost+" && echo added")
	out := s.Gale("vm", "exec", "pub-0", "--", "curl", "-s", "-m", "4", "http://"+clientAddr+":9999/")
	// 28: curl's timeout (the packets are dropped), not 7 (refused).
	s.Check(out.Code == 28 && !out.Has("outside"), "guest of an open network reached another namespace with a route added by hand: %s", out)

	del := s.Gale("set", "delete", "pub", "--timeout", "3m")
	s.Check(del.Code == 0, "set delete pub: %s", del)
	s.Expect("delete the open network", 0, "network", "delete", "pub")
}
