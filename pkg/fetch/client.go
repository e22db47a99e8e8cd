package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts of the default client and of every download.
const (
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 30 * time.Second
	// defaultIdleTimeout is how long a response body may deliver no byte
	// before the attempt is abandoned as stalled.
	defaultIdleTimeout = 60 * time.Second
)

// defaultClient is shared by every call that passes no client, so that
// connections are reused.
var defaultClient = sync.OnceValue(func() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          16,
		ForceAttemptHTTP2:     true,
	}}
})

// errStalled is the cause given to an attempt's context when its response
// stopped delivering data.
var errStalled = errors.New("no data received within the idle timeout; the transfer stalled")

// watchdog cancels an attempt when no progress was reported for idle.
type watchdog struct {
	idle  time.Duration
	timer *time.Timer
}

// newWatchdog returns a context derived from ctx that is cancelled with
// errStalled when kick is not called for idle, and a function that stops the
// watchdog and releases the context.
func newWatchdog(ctx context.Context, idle time.Duration) (context.Context, *watchdog, func()) {
	actx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{idle: idle, timer: time.AfterFunc(idle, func() { cancel(errStalled) })}
	return actx, w, func() {
		w.timer.Stop()
		cancel(nil)
	}
}

// kick records progress, restarting the idle period.
func (w *watchdog) kick() { w.timer.Reset(w.idle) }

// networkError classifies a failure of a request or of its body in an
// attempt whose context actx derives from ctx, and prefixes it with what:
// the caller's cancellation (wrapping ctx's cause), a stall (transient), or a
// network error (see classifyRequestError).
func networkError(ctx, actx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctxErr(ctx))
	}
	if errors.Is(context.Cause(actx), errStalled) {
		return transient(fmt.Errorf("%s: %w", what, errStalled))
	}
	return classifyRequestError(fmt.Errorf("%s: %w", what, unwrapURLError(err)))
}

// ctxErr returns the error of a done ctx: its cause, also matching
// ctx.Err() with errors.Is when the cause is a custom one.
func ctxErr(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, ctx.Err()) {
		return cause
	}
	return fmt.Errorf("%w: %w", ctx.Err(), cause)
}
