package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain fails the run if a goroutine of this package, or an HTTP
// connection, outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitNoLeaks(2 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitNoLeaks waits up to d for every goroutine running code of this
// package (but not a test) or an HTTP connection to end; it returns the
// stacks of those left.
func waitNoLeaks(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		var leaked []string
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "testing.(*M).") || strings.Contains(g, "probe.TestMain") {
				continue // this goroutine
			}
			if strings.Contains(g, "gale/pkg/probe.(*Prober)") || strings.Contains(g, "net/http.(*persistConn)") ||
				strings.Contains(g, "net/http.(*conn).serve") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, failing the test after 2s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeClock is a Clock that moves only by Advance.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*fakeTimer]bool
	stopped int // timers released by Stop before firing
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), timers: map[*fakeTimer]bool{}}
}

type fakeTimer struct {
	clk  *fakeClock
	when time.Time
	c    chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, when: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
	} else {
		c.timers[t] = true
	}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	if !t.clk.timers[t] {
		return false
	}
	delete(t.clk.timers, t)
	t.clk.stopped++
	return true
}

// Advance moves the time on by d and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.when.After(c.now) {
			t.c <- c.now
			delete(c.timers, t)
		}
	}
}

// counts returns the number of pending timers and of stopped ones.
func (c *fakeClock) counts() (pending, stopped int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers), c.stopped
}

// fakeChecker answers probes from a table of outcomes per address
// (success unless set) and counts them.
type fakeChecker struct {
	mu          sync.Mutex
	fail        map[netip.Addr]error
	calls       map[netip.Addr]int
	inflight    map[netip.Addr]int
	maxInflight int
	block       chan struct{} // when set, each probe waits for a receive from it (or ctx)
}

func newFakeChecker() *fakeChecker {
	return &fakeChecker{fail: map[netip.Addr]error{}, calls: map[netip.Addr]int{}, inflight: map[netip.Addr]int{}}
}

func (f *fakeChecker) check(ctx context.Context, addr netip.Addr) error {
	f.mu.Lock()
	f.calls[addr]++
	f.inflight[addr]++
	f.maxInflight = max(f.maxInflight, f.inflight[addr])
	block := f.block
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[addr]--
		f.mu.Unlock()
	}()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("probe ctx has no deadline")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[addr]
}

func (f *fakeChecker) setFail(addr netip.Addr, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[addr] = err
}

func (f *fakeChecker) callsTo(addr netip.Addr) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[addr]
}

func (f *fakeChecker) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.inflight {
		n += v
	}
	return n
}

// recorder collects onChange calls.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) onChange(target string, res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s %s %s", target, res.Addr, res.Status))
}

// take returns the events since the last take, sorted.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	sort.Strings(ev)
	return ev
}
