package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/errdefs"
)

// server starts an httptest server and returns it with its address and an
// HTTP spec for its port and path.
func server(t *testing.T, path string, h http.HandlerFunc) (netip.Addr, Spec) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	return ap.Addr(), Spec{Kind: KindHTTP, Port: int(ap.Port()), Path: path, Interval: time.Second, Timeout: 500 * time.Millisecond}
}

func TestCheckHTTPStatus(t *testing.T) {
	tests := []struct {
		code  int
		want  string // "" for healthy, else a substring of the error
		class error
	}{
		{200, "", nil},
		{204, "", nil},
		{301, "", nil},
		{302, "", nil},
		{399, "", nil},
		{400, "status 400 Bad Request", ErrStatus},
		{404, "status 404 Not Found", ErrStatus},
		{500, "status 500 Internal Server Error", ErrStatus},
		{503, "status 503 Service Unavailable", ErrStatus},
		{599, "status 599", ErrStatus},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			var (
				mu  sync.Mutex
				got []*http.Request
			)
			addr, spec := server(t, "/healthz?x=1", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
				if tt.code >= 300 && tt.code < 400 {
					w.Header().Set("Location", "/broken")
				}
				if r.URL.Path == "/broken" { // a followed redirect would land here
					w.WriteHeader(500)
					return
				}
				w.WriteHeader(tt.code)
				w.Write([]byte("body"))
			})
			err := Check(context.Background(), spec, addr)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
			} else {
				if err == nil {
					t.Fatalf("Check = nil, want an error containing %q", tt.want)
				}
				if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "GET http://127.0.0.1:") {
					t.Errorf("Check = %q, want GET http://127.0.0.1:...: ...%s", err, tt.want)
				}
				if !errors.Is(err, tt.class) {
					t.Errorf("Check = %q, not of class %v", err, tt.class)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 {
				t.Fatalf("server got %d requests, want 1 (redirects are not followed)", len(got))
			}
			r := got[0]
			if r.Method != http.MethodGet || r.URL.RequestURI() != "/healthz?x=1" || !r.Close || r.UserAgent() != "gale-probe" {
				t.Errorf("request %s %s close=%v agent=%q, want GET /healthz?x=1 with Connection: close by gale-probe", r.Method, r.URL.RequestURI(), r.Close, r.UserAgent())
			}
		})
	}
}

// TestCheckHTTPDefaultPath: a Spec without a path GETs "/".
func TestCheckHTTPDefaultPath(t *testing.T) {
	paths := make(chan string, 1)
	addr, spec := server(t, "", func(w http.ResponseWriter, r *http.Request) { paths <- r.URL.RequestURI() })
	spec.Interval, spec.Timeout = 0, 0 // defaults
	if err := Check(context.Background(), spec, addr); err != nil {
		t.Fatal(err)
	}
	if p := <-paths; p != "/" {
		t.Errorf("path = %q, want /", p)
	}
}

// TestCheckHTTPBigBody: a big or endless body does not hold the probe up
// past the drain limit.
func TestCheckHTTPBigBody(t *testing.T) {
	addr, spec := server(t, "/", func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	start := time.Now()
	if err := Check(context.Background(), spec, addr); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if d := time.Since(start); d > spec.Timeout {
		t.Errorf("Check took %s, more than the timeout %s", d, spec.Timeout)
	}
}

func TestCheckHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	addr, spec := server(t, "/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	spec.Timeout = 100 * time.Millisecond
	start := time.Now()
	err := Check(context.Background(), spec, addr)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Check = nil, want a timeout")
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Check = %q, want ErrTimeout wrapping context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "/slow: timed out after 100ms") {
		t.Errorf("Check = %q, want .../slow: timed out after 100ms", err)
	}
	if elapsed < spec.Timeout || elapsed > spec.Interval {
		t.Errorf("Check took %s, want about the timeout %s", elapsed, spec.Timeout)
	}
}

// TestCheckCallerDeadline: a caller's deadline sooner than the timeout
// wins, and the message says how long the probe had.
func TestCheckCallerDeadline(t *testing.T) {
	release := make(chan struct{})
	addr, spec := server(t, "/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := Check(ctx, spec, addr)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Check = %v, want a timeout", err)
	}
	_, after, _ := strings.Cut(err.Error(), "timed out after ")
	if d, perr := time.ParseDuration(after); perr != nil || d > 50*time.Millisecond || d < 10*time.Millisecond {
		t.Errorf("Check = %v, want timed out after about 50ms (the caller's deadline, not the 500ms timeout)", err)
	}
}

func TestCheckCanceled(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	addr, spec := server(t, "/", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	err := Check(ctx, spec, addr)
	if err == nil || !strings.HasSuffix(err.Error(), ": canceled") || !errors.Is(err, context.Canceled) {
		t.Errorf("Check = %v, want canceled", err)
	}
	if errors.Is(err, ErrTimeout) || errors.Is(err, ErrRefused) {
		t.Errorf("Check = %v: a canceled probe is neither a timeout nor refused", err)
	}
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestCheckTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	loop := netip.MustParseAddr("127.0.0.1")
	spec := Spec{Kind: KindTCP, Port: l.Addr().(*net.TCPAddr).Port}
	if err := Check(context.Background(), spec, loop); err != nil {
		t.Fatalf("Check of a listening port: %v", err)
	}
	if err := <-accepted; err != nil {
		t.Fatalf("accept: %v", err)
	}
	// An IPv4-mapped address is probed as IPv4.
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	if err := Check(context.Background(), spec, netip.MustParseAddr("::ffff:127.0.0.1")); err != nil {
		t.Fatalf("Check of a mapped address: %v", err)
	}
}

func TestCheckRefused(t *testing.T) {
	port := closedPort(t)
	loop := netip.MustParseAddr("127.0.0.1")
	for _, tt := range []struct {
		spec Spec
		want string
	}{
		{Spec{Kind: KindTCP, Port: port}, "tcp 127.0.0.1:" + strconv.Itoa(port) + ": connection refused"},
		{Spec{Kind: KindHTTP, Port: port, Path: "/up"}, "GET http://127.0.0.1:" + strconv.Itoa(port) + "/up: connection refused"},
	} {
		t.Run(string(tt.spec.Kind), func(t *testing.T) {
			err := Check(context.Background(), tt.spec, loop)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Check = %v, want %q", err, tt.want)
			}
			var op *net.OpError
			if !errors.Is(err, ErrRefused) || !errors.As(err, &op) {
				t.Errorf("Check = %v, want ErrRefused wrapping the *net.OpError", err)
			}
		})
	}
}

func TestCheckIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "[::1]:"+strconv.Itoa(l.Addr().(*net.TCPAddr).Port) {
			w.WriteHeader(400)
		}
	}))
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	spec := Spec{Kind: KindHTTP, Port: l.Addr().(*net.TCPAddr).Port}
	if err := Check(context.Background(), spec, netip.IPv6Loopback()); err != nil {
		t.Fatalf("Check over IPv6: %v", err)
	}
}

func TestCheckInvalid(t *testing.T) {
	loop := netip.MustParseAddr("127.0.0.1")
	for name, tt := range map[string]struct {
		spec Spec
		addr netip.Addr
	}{
		"no kind":    {Spec{Port: 80}, loop},
		"no port":    {Spec{Kind: KindTCP}, loop},
		"bad path":   {Spec{Kind: KindHTTP, Port: 80, Path: "x"}, loop},
		"no address": {Spec{Kind: KindTCP, Port: 80}, netip.Addr{}},
	} {
		t.Run(name, func(t *testing.T) {
			err := Check(context.Background(), tt.spec, tt.addr)
			if !errdefs.Is(err, errdefs.Invalid) {
				t.Errorf("Check = %v, want an invalid error", err)
			}
		})
	}
}
