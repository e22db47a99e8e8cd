package lb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/galevm/gale/pkg/internal/testtool"
)

// testNS is a named network namespace made for a test (ip netns add),
// deleted at its cleanup. The test process's own namespace is never changed:
// code runs inside testNS on a locked thread that is thrown away after.
type testNS struct {
	name string
	fd   int // open /run/netns/name
}

// ipCmd runs ip with args and fails the test on error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newTestNS makes the namespace name; it skips the test when namespaces
// cannot be made (not root, no ip, a sandbox without them).
func newTestNS(t *testing.T, name string) *testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	testtool.Need(t, "iproute2, see scripts/packages.txt", "ip")
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespace %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open namespace %s: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &testNS{name: name, fd: fd}
}

// do runs fn on a thread inside the namespace. The thread is locked and
// never unlocked, so the runtime ends it after fn instead of reusing it.
func (n *testNS) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// dial connects from inside the namespace; the connection stays there.
func (n *testNS) dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// get does one HTTP GET on a new connection from inside the namespace and
// returns the body (the backend's name) and the client address the backend
// saw.
func (n *testNS) get(url string, timeout time.Duration) (name, client string, err error) {
	hc := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
				return n.dial(network, addr, timeout)
			},
		},
	}
	resp, err := hc.Get(url)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(string(b)), resp.Header.Get("X-Client"), nil
}

// sysctl reads a file of /proc/sys as seen from the namespace.
func (n *testNS) sysctl(path string) (string, error) {
	var v string
	err := n.do(func() error {
		b, err := os.ReadFile(path)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// setSysctl writes a file of /proc/sys in the namespace.
func (n *testNS) setSysctl(path, val string) error {
	return n.do(func() error { return os.WriteFile(path, []byte(val), 0o644) })
}

// serveBackend starts, inside n, an HTTP server on :httpPort answering
// name (and the client address in X-Client) and a UDP server on :udpPort
// answering name to any datagram. They stop at the test's cleanup.
func serveBackend(t *testing.T, n *testNS, name string, httpPort, udpPort int) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := n.do(func() error {
		var err error
		if ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", httpPort)); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", udpPort))
		return err
	})
	if err != nil {
		t.Fatalf("backend %s: listen: %v", name, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Client", r.RemoteAddr)
			fmt.Fprintln(w, name)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		pc.Close()
	})
}

// udpAsk sends one datagram from a new socket inside n and returns the
// answer.
func (n *testNS) udpAsk(addr string, timeout time.Duration) (string, error) {
	c, err := n.dial("udp4", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("who")); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	k, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:k]), nil
}

// keepAlive is an HTTP/1.1 connection reused for several requests.
type keepAlive struct {
	c net.Conn
	r *bufio.Reader
}

// ask sends one request on the connection and returns the body.
func (k *keepAlive) ask() (string, error) {
	_ = k.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: lb\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.Close {
		return "", errors.New("server closed the keep-alive connection")
	}
	return strings.TrimSpace(string(b)), nil
}
