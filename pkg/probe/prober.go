package probe

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Clock is the time source that schedules a Prober's probes. The default
// is the system clock; tests substitute a fake one. The per-probe timeout
// always runs on real time (it is a context deadline).
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C receives the time when the timer fires.
	C() <-chan time.Time
	// Stop releases the timer; it reports whether that kept it from firing.
	Stop() bool
}

// CheckFunc probes one address. It must return once ctx is done: Stop and
// SetTargets wait for running probes to return.
type CheckFunc func(ctx context.Context, addr netip.Addr) error

// Option configures a Prober.
type Option func(*Prober)

// WithChecker makes the Prober probe with check instead of Check with its
// Spec. The ctx check gets carries the Spec's timeout. A nil check keeps
// the default.
func WithChecker(check CheckFunc) Option {
	return func(p *Prober) {
		if check != nil {
			p.check = check
		}
	}
}

// WithClock makes the Prober schedule probes, and time Results, by c. A
// nil c keeps the system clock.
func WithClock(c Clock) Option {
	return func(p *Prober) {
		if c != nil {
			p.clock = c
		}
	}
}

// Prober probes a changing set of named targets, each in its own
// goroutine: a probe at once, then one every Spec.Interval (start to
// start; at once if a probe took longer), never two at a time for the same
// target. Each target has its own Tracker. All methods are safe for
// concurrent use. A Prober holds goroutines until Stop.
type Prober struct {
	spec     Spec
	onChange func(target string, r Result)
	check    CheckFunc
	clock    Clock

	cbMu sync.Mutex // serializes onChange

	mu      sync.Mutex
	targets map[string]*target
	stopped bool
	wg      sync.WaitGroup
}

// target is one probe loop.
type target struct {
	addr    netip.Addr
	tracker *Tracker
	cancel  context.CancelFunc
}

// result is the tracker's Result with the target's address.
func (t *target) result() Result {
	r := t.tracker.Result()
	r.Addr = t.addr
	return r
}

// NewProber returns a Prober with no targets that probes by s.WithDefaults()
// and calls onChange (when not nil) each time a target's Status changes,
// with the target's name and its Result after the change. onChange runs on
// the target's goroutine, one call at a time per Prober; it may call
// SetTargets and Results but not Stop (Stop waits for that goroutine). A
// target's Status does not "change" when SetTargets adds, readdresses or
// removes it: the caller knows of that already.
//
// NewProber panics if s.WithDefaults() is not valid: validate Specs from
// users with Parse or Validate first.
func NewProber(s Spec, onChange func(target string, r Result), opts ...Option) *Prober {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		panic(fmt.Sprintf("probe.NewProber: %v", err))
	}
	p := &Prober{
		spec:     s,
		onChange: onChange,
		clock:    systemClock{},
		targets:  map[string]*target{},
	}
	for _, o := range opts {
		o(p)
	}
	if p.check == nil {
		p.check = func(ctx context.Context, addr netip.Addr) error { return Check(ctx, s, addr) }
	}
	return p
}

// SetTargets makes targets (name to address) the set of probed targets:
// it starts probing the new names, stops probing the names not in targets,
// and restarts, with a fresh Unknown tracker, a name whose address
// changed. A name with the same address keeps its loop and tracker. It
// does not keep the map. After Stop it does nothing.
//
// SetTargets does not wait for the loops it stops (Stop does): once it
// returns no new probe of a stopped loop starts and a running one sees
// its ctx canceled, but an onChange already under way for such a loop may
// still be running. Result.Addr tells which address a call is about.
func (p *Prober) SetTargets(targets map[string]netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	for name, t := range p.targets {
		if addr, ok := targets[name]; !ok || addr != t.addr {
			t.cancel()
			delete(p.targets, name)
		}
	}
	for name, addr := range targets {
		if _, ok := p.targets[name]; !ok {
			p.targets[name] = p.start(name, addr)
		}
	}
}

// start launches the probe loop of a target; p.mu is held.
func (p *Prober) start(name string, addr netip.Addr) *target {
	ctx, cancel := context.WithCancel(context.Background())
	t := &target{addr: addr, tracker: NewTracker(p.spec), cancel: cancel}
	p.wg.Add(1)
	go p.run(ctx, name, t)
	return t
}

// run probes t until ctx is canceled.
func (p *Prober) run(ctx context.Context, name string, t *target) {
	defer p.wg.Done()
	for ctx.Err() == nil {
		start := p.clock.Now()
		cctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
		err := p.check(cctx, t.addr)
		cancel()
		if ctx.Err() != nil {
			return // removed or stopped mid-probe: the result is moot
		}
		if t.tracker.Observe(err, p.clock.Now()) {
			p.notify(ctx, name, t.result())
		}
		wait := p.spec.Interval - p.clock.Now().Sub(start)
		if wait <= 0 {
			continue
		}
		timer := p.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
	}
}

// notify calls onChange unless the target was removed meanwhile.
func (p *Prober) notify(ctx context.Context, name string, r Result) {
	if p.onChange == nil {
		return
	}
	p.cbMu.Lock()
	defer p.cbMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	p.onChange(name, r)
}

// Results returns the current Result of every target, by name; a target
// not probed yet is Unknown with zero times.
func (p *Prober) Results() map[string]Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Result, len(p.targets))
	for name, t := range p.targets {
		out[name] = t.result()
	}
	return out
}

// Stop ends all probe loops, those SetTargets stopped included, and
// returns once they have ended: then no probe or onChange runs any more,
// Results is empty and SetTargets does nothing. Stop may be called more
// than once, but not from onChange.
func (p *Prober) Stop() {
	p.mu.Lock()
	p.stopped = true
	for name, t := range p.targets {
		t.cancel()
		delete(p.targets, name)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// systemClock is the real time.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
