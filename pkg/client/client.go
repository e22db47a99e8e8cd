// Package client is the typed Go client of galed's REST API over its unix
// socket. The gale CLI and the end-to-end tests use it; it speaks only the
// types and paths of pkg/api.
//
// Every method takes a context that bounds the whole request. Non-2xx
// answers come back as *Error, which matches the sentinels (ErrNotFound,
// ErrConflict, ...) with errors.Is; a socket nobody listens on comes back
// as an error matching ErrUnreachable.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/galevm/gale/pkg/api"
)

// baseURL is the URL prefix of every request; the host is ignored because
// the transport always dials the socket.
const baseURL = "http://gale"

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// Client talks to one galed over its unix socket. It is safe for
// concurrent use.
type Client struct {
	socket string
	http   *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithLogger makes the client report every request (method, path, status,
// duration) to logf; the CLI uses it for --debug.
func WithLogger(logf func(format string, args ...any)) Option {
	return func(c *Client) {
		c.http.Transport = &loggingTransport{next: c.http.Transport, logf: logf}
	}
}

// New returns a client for the galed listening on socket (api.DefaultSocket
// when empty). It does not connect until the first request.
func New(socket string, opts ...Option) *Client {
	if socket == "" {
		socket = api.DefaultSocket
	}
	dialer := &net.Dialer{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
		MaxIdleConns:       4,
	}
	// No client-wide timeout: exec and event streams are long; callers bound
	// requests with their context.
	c := &Client{socket: socket, http: &http.Client{Transport: tr}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// loggingTransport reports each round trip to logf.
type loggingTransport struct {
	next http.RoundTripper
	logf func(format string, args ...any)
}

func (t *loggingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		t.logf("%s %s: %v (%s)", r.Method, r.URL.RequestURI(), err, time.Since(start).Round(time.Millisecond))
		return nil, err
	}
	t.logf("%s %s: %s (%s)", r.Method, r.URL.RequestURI(), resp.Status, time.Since(start).Round(time.Millisecond))
	return resp, nil
}

// Socket returns the path of the socket the client dials.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// expandPath fills the {name} and {id} parameters of an api path template,
// escaping each value.
func expandPath(tmpl string, params ...string) string {
	for i := 0; i+1 < len(params); i += 2 {
		tmpl = strings.Replace(tmpl, "{"+params[i]+"}", url.PathEscape(params[i+1]), 1)
	}
	return tmpl
}

// request describes one HTTP exchange.
type request struct {
	method string
	path   string
	query  url.Values
	body   any       // JSON-encoded when not nil
	raw    io.Reader // sent as is (application/octet-stream) when body is nil
	accept string    // default application/json
}

// send performs req and returns the response when its status is 2xx. On
// any other status it decodes the error envelope into *Error and closes the
// body. The caller closes the body of a successful response.
func (c *Client) send(ctx context.Context, req request) (*http.Response, error) {
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", req.method, req.path, err)
		}
		body = bytes.NewReader(b)
	}
	u := baseURL + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	if req.body == nil && req.raw != nil {
		body = req.raw
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	switch {
	case req.body != nil:
		hreq.Header.Set("Content-Type", "application/json")
	case req.raw != nil:
		hreq.Header.Set("Content-Type", "application/octet-stream")
	}
	accept := req.accept
	if accept == "" {
		accept = "application/json"
	}
	hreq.Header.Set("Accept", accept)
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, c.transportError(ctx, req, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// do performs req and decodes a JSON answer into out (skipped when out is
// nil).
func (c *Client) do(ctx context.Context, req request, out any) error {
	resp, err := c.send(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", req.method, req.path, err)
	}
	return nil
}

// transportError turns a failed round trip into an error that says what to
// do: start galed, fix the socket's permissions, or nothing (the caller's
// context ended).
func (c *Client) transportError(ctx context.Context, req request, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s %s: %w", req.method, req.path, ctxErr)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		hint := "is galed running? start it with `galed` (see README)"
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			hint = "permission denied: add your user to the gale group (sudo usermod -aG gale $USER, then log in again) or run as root"
		}
		return &UnreachableError{Socket: c.socket, Hint: hint, Err: err}
	}
	return fmt.Errorf("%s %s: %w", req.method, req.path, err)
}
