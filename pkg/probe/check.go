package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// The classes of probe failure. An error from Check matches, with
// errors.Is, at most one of them and also wraps its cause (a *net.OpError,
// context.DeadlineExceeded, ...).
var (
	// ErrRefused: nothing listens on the port (the instance is up, the
	// service is not).
	ErrRefused = errors.New("connection refused")
	// ErrTimeout: no answer within Spec.Timeout (or the caller's deadline).
	ErrTimeout = errors.New("timed out")
	// ErrStatus: the HTTP server answered with a status outside 200-399.
	ErrStatus = errors.New("unhealthy status")
)

// drainLimit is how much of a response body Check reads (and discards) so
// that the server can finish its answer before the connection closes.
const drainLimit = 4 << 10

// transport is shared by all HTTP probes. Keep-alives are off, so every
// probe opens a fresh connection and closes it: a probe tests the instance
// as a new client sees it, and no idle connections are left behind.
var transport = &http.Transport{
	Proxy:                  nil, // probes go straight to the instance, never through HTTP_PROXY
	DialContext:            (&net.Dialer{}).DialContext,
	DisableKeepAlives:      true,
	DisableCompression:     true,
	MaxResponseHeaderBytes: 64 << 10,
}

// client does not follow redirects: a 3xx answer is itself healthy.
var client = &http.Client{
	Transport: transport,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Check probes addr once, within s.Timeout (and ctx):
//
//   - tcp: succeeds when a TCP connection to addr:Port is accepted; the
//     connection is closed at once without sending anything.
//   - http: GETs http://addr:Port/Path (User-Agent gale-probe, Connection:
//     close, no proxy) and succeeds on a status from 200 to 399. Redirects
//     are not followed; at most 4 KiB of the body is read and discarded.
//
// s gets its defaults first; an invalid s, or an invalid addr, is an
// errdefs.Invalid error. A failed probe's error says what was probed and
// what went wrong ("GET http://10.0.0.5:80/healthz: status 503 Service
// Unavailable", "tcp 10.0.0.5:22: connection refused", "... timed out
// after 2s") and matches ErrRefused, ErrTimeout or ErrStatus when it is of
// that class. An IPv4-mapped IPv6 addr is probed as IPv4.
func Check(ctx context.Context, s Spec, addr netip.Addr) error {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return err
	}
	if !addr.IsValid() {
		return invalidf("probe address is not set")
	}
	ap := netip.AddrPortFrom(addr.Unmap(), uint16(s.Port))
	// limit is the time allowed, for messages: s.Timeout unless the
	// caller's deadline is sooner.
	limit := s.Timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < limit {
		limit = time.Until(dl).Round(time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	switch s.Kind {
	case KindTCP:
		return checkTCP(cctx, limit, ap)
	default: // KindHTTP; Validate allows no other
		return checkHTTP(cctx, limit, s, ap)
	}
}

func checkTCP(ctx context.Context, limit time.Duration, ap netip.AddrPort) error {
	what := "tcp " + ap.String()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		return failure(ctx, limit, what, err)
	}
	conn.Close()
	return nil
}

func checkHTTP(ctx context.Context, limit time.Duration, s Spec, ap netip.AddrPort) error {
	u, err := s.requestURL(ap.String())
	if err != nil { // Validate checked the path; this is a bug
		return fmt.Errorf("probe path %q: %w", s.Path, err)
	}
	what := "GET " + u.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("User-Agent", "gale-probe")
	req.Header.Set("Accept", "*/*")
	resp, err := client.Do(req)
	if err != nil {
		return failure(ctx, limit, what, err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit) // the status decides; a slow body does not
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		msg := fmt.Sprintf("%s: status %d", what, resp.StatusCode)
		if text := http.StatusText(resp.StatusCode); text != "" {
			msg += " " + text
		}
		return &checkError{msg: msg, class: ErrStatus}
	}
	return nil
}

// failure describes a failed connection or request: what was probed and
// why, classified as ErrTimeout or ErrRefused when it is one of them.
func failure(ctx context.Context, limit time.Duration, what string, err error) error {
	var nerr net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return &checkError{msg: what + ": canceled", err: err}
	case errors.Is(ctx.Err(), context.DeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &nerr) && nerr.Timeout():
		return &checkError{msg: fmt.Sprintf("%s: timed out after %s", what, limit), class: ErrTimeout, err: err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &checkError{msg: what + ": connection refused", class: ErrRefused, err: err}
	case errors.Is(err, syscall.ECONNRESET):
		return &checkError{msg: what + ": connection reset", err: err}
	case errors.Is(err, syscall.EHOSTUNREACH):
		return &checkError{msg: what + ": host unreachable", err: err}
	case errors.Is(err, syscall.ENETUNREACH):
		return &checkError{msg: what + ": network unreachable", err: err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &checkError{msg: what + ": connection closed without an answer", err: err}
	}
	return &checkError{msg: what + ": " + err.Error(), err: err}
}

// checkError is a failed probe: a short message, its class (ErrRefused,
// ErrTimeout, ErrStatus or nil) and its cause (or nil).
type checkError struct {
	msg   string
	class error
	err   error
}

func (e *checkError) Error() string { return e.msg }

func (e *checkError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.class, e.err} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
