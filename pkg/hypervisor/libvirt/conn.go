package libvirt

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/hypervisor"
)

var (
	eventLoopOnce sync.Once
	eventLoopErr  error
)

// startEventLoop registers libvirt's default event loop implementation once
// per process and runs it in a goroutine for the life of the process. It
// must run before the first connection is opened: keepalive, the close
// callback and domain events all need it.
func startEventLoop(log logrus.FieldLogger) error {
	eventLoopOnce.Do(func() {
		if err := lv.EventRegisterDefaultImpl(); err != nil {
			eventLoopErr = fmt.Errorf("register libvirt event loop: %w", err)
			return
		}
		go func() {
			for {
				if err := lv.EventRunDefaultImpl(); err != nil {
					log.WithError(err).Error("libvirt event loop iteration failed")
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	})
	return eventLoopErr
}

// session is one libvirt connection and the callbacks registered on it.
type session struct {
	conn       *lv.Connect
	gen        uint64
	callbackID int // lifecycle callback id; -1 when registration failed
	users      sync.WaitGroup
}

// retire waits for in-flight calls on s, deregisters its callbacks and
// closes it. With wait false it does so in the background.
func (s *session) retire(log logrus.FieldLogger, wait bool) error {
	run := func() error {
		s.users.Wait()
		_ = s.conn.UnregisterCloseCallback()
		if s.callbackID >= 0 {
			_ = s.conn.DomainEventDeregister(s.callbackID)
		}
		if _, err := s.conn.Close(); err != nil {
			log.WithError(err).WithField("gen", s.gen).Debug("closing libvirt connection")
			return fmt.Errorf("close libvirt connection: %w", err)
		}
		return nil
	}
	if wait {
		return run()
	}
	go func() { _ = run() }()
	return nil
}

// acquire returns a live session, reconnecting if needed, and counts the
// caller as one of its users: the caller must call s.users.Done() when its
// call returns. It fails with hypervisor.ErrUnavailable while libvirt cannot
// be reached (honouring the reconnect backoff) and with ctx's error when
// ctx is done.
func (d *Driver) acquire(ctx context.Context) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("libvirt driver is closed: %w", hypervisor.ErrUnavailable)
	}
	if s := d.sess; s != nil {
		if alive, err := s.conn.IsAlive(); err == nil && alive {
			s.users.Add(1)
			return s, nil
		}
		d.dropLocked(s, "connection is no longer alive")
	}
	if err := d.connectLocked(time.Now()); err != nil {
		return nil, err
	}
	d.sess.users.Add(1)
	return d.sess, nil
}

// with runs fn on a live connection. When fn fails with an error that means
// the connection is gone, the session is dropped so that the next call (or
// the reconnect loop) opens a new one. fn's error is returned as is.
func (d *Driver) with(ctx context.Context, fn func(c *lv.Connect) error) error {
	s, err := d.acquire(ctx)
	if err != nil {
		return err
	}
	err = fn(s.conn)
	s.users.Done()
	if err != nil && isConnectionError(err) {
		d.drop(s.gen, err.Error())
	}
	return err
}

// connectLocked opens a new session unless the backoff forbids it yet.
// d.mu must be held and d.sess must be nil.
func (d *Driver) connectLocked(now time.Time) error {
	if now.Before(d.nextAttempt) {
		return fmt.Errorf("connect to %s: next attempt in %s, last error: %v: %w",
			d.uri, d.nextAttempt.Sub(now).Round(time.Millisecond), d.lastErr, hypervisor.ErrUnavailable)
	}
	s, err := d.dial(d.gen + 1)
	if err != nil {
		d.lastErr = err
		d.nextAttempt = now.Add(d.backoff)
		d.backoff = min(d.backoff*2, d.opts.ReconnectMax)
		d.log.WithError(err).WithField("retry_in", d.backoff).Warn("libvirt connection failed")
		d.kickLoop()
		return fmt.Errorf("connect to %s: %w: %w", d.uri, hypervisor.ErrUnavailable, readable(err))
	}
	d.gen = s.gen
	d.sess = s
	d.backoff = d.opts.ReconnectMin
	d.nextAttempt = time.Time{}
	d.lastErr = nil
	if s.gen > 1 {
		d.log.WithField("gen", s.gen).Info("reconnected to libvirt")
	}
	return nil
}

// dial opens a connection and registers keepalive, the close callback and
// the lifecycle event callback on it.
func (d *Driver) dial(gen uint64) (*session, error) {
	c, err := lv.NewConnect(d.uri)
	if err != nil {
		return nil, err
	}
	s := &session{conn: c, gen: gen, callbackID: -1}
	if d.opts.KeepAliveInterval > 0 {
		// Local drivers (test://, qemu:///embed) do not support keepalive.
		if err := c.SetKeepAlive(d.opts.KeepAliveInterval, d.opts.KeepAliveCount); err != nil {
			d.log.WithError(err).Debug("libvirt keepalive not enabled")
		}
	}
	if err := c.RegisterCloseCallback(func(_ *lv.Connect, reason lv.ConnectCloseReason) {
		d.drop(gen, fmt.Sprintf("libvirt closed the connection (reason %d)", reason))
	}); err != nil {
		d.log.WithError(err).Debug("libvirt close callback not registered")
	}
	id, err := c.DomainEventLifecycleRegister(nil, func(_ *lv.Connect, dom *lv.Domain, ev *lv.DomainEventLifecycle) {
		d.events.Publish(lifecycleEvent(dom, ev))
	})
	if err != nil {
		_ = c.UnregisterCloseCallback()
		_, _ = c.Close()
		return nil, fmt.Errorf("register lifecycle events: %w", err)
	}
	s.callbackID = id
	return s, nil
}

// drop retires the session of generation gen if it is still current and
// wakes the reconnect loop. Stale generations are ignored, so a late close
// callback never kills a newer connection.
func (d *Driver) drop(gen uint64, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess != nil && d.sess.gen == gen {
		d.dropLocked(d.sess, reason)
	}
}

// dropLocked retires s (in the background: in-flight calls finish first).
// d.mu must be held.
func (d *Driver) dropLocked(s *session, reason string) {
	d.log.WithField("gen", s.gen).Warnf("libvirt connection lost: %s", reason)
	d.sess = nil
	_ = s.retire(d.log, false)
	d.kickLoop()
}

// kickLoop wakes the reconnect loop without blocking.
func (d *Driver) kickLoop() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// reconnectLoop reconnects in the background after a connection is lost,
// with exponential backoff, so that event subscribers resume receiving
// events even when no call is made. It ends when the driver is closed.
func (d *Driver) reconnectLoop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.done:
			return
		case <-d.kick:
		}
		for {
			d.mu.Lock()
			if d.closed || d.sess != nil {
				d.mu.Unlock()
				break
			}
			now := time.Now()
			wait := d.nextAttempt.Sub(now)
			if wait <= 0 {
				if err := d.connectLocked(now); err == nil {
					d.mu.Unlock()
					break
				}
				wait = d.nextAttempt.Sub(now)
			}
			d.mu.Unlock()
			// Drain a kick sent by connectLocked itself.
			select {
			case <-d.kick:
			default:
			}
			select {
			case <-d.done:
				return
			case <-time.After(wait):
			}
		}
	}
}

// generation returns the current session's generation (0 when disconnected).
func (d *Driver) generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess == nil {
		return 0
	}
	return d.sess.gen
}
