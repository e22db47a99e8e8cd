package fetch

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors. Errors returned by this package wrap one of them where it
// applies; test with errors.Is.
var (
	// ErrChecksumMismatch means the downloaded data did not have the
	// expected digest. The partial data has been removed.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrTooLarge means a download, a checksum file or a decompressed
	// output would exceed its size limit.
	ErrTooLarge = errors.New("too large")
	// ErrUnreachable means no attempt could connect to the host (DNS
	// failure, connection refused, network or host unreachable, dial
	// timeout): the machine is most likely offline.
	ErrUnreachable = errors.New("host unreachable")
	// ErrBadURL means the URL could not be parsed or its scheme is not
	// http or https.
	ErrBadURL = errors.New("unsupported URL")
	// ErrCorrupt means compressed input could not be decoded: it is
	// truncated or damaged.
	ErrCorrupt = errors.New("corrupt compressed data")
)

// HTTPError is a response whose status code is not the one the request
// needed. Errors returned for such responses wrap an *HTTPError; use
// errors.As to get the status code.
type HTTPError struct {
	// StatusCode is the HTTP status code the server answered with.
	StatusCode int
	// URL is the requested URL with any password redacted.
	URL string

	retryAfter time.Duration // from a Retry-After header, 0 if none
}

// Error returns "GET <url>: <code> <status text>".
func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// Transient reports whether the status is one worth retrying later: 408,
// 429, 500, 502, 503 or 504.
func (e *HTTPError) Transient() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// unreachableError reports that no attempt could connect to host.
type unreachableError struct {
	host string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %v; this host seems to be offline. "+
		"Download the image elsewhere and use \"gale image import\", or retry later", e.host, e.err)
}

func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// transientError marks a network failure that a later attempt may not hit.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err: err} }
