package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"syscall"
	"time"
)

// Retry defaults.
const (
	defaultRetries = 5
	defaultBackoff = time.Second
	maxBackoff     = 30 * time.Second
)

// retryPolicy says how often and how patiently to retry.
type retryPolicy struct {
	retries int           // attempts after the first
	backoff time.Duration // delay before the first retry
}

// newRetryPolicy applies the documented defaults: 0 retries means 5 and a
// negative number none; a backoff of 0 means 1 s.
func newRetryPolicy(retries int, backoff time.Duration) retryPolicy {
	switch {
	case retries == 0:
		retries = defaultRetries
	case retries < 0:
		retries = 0
	}
	if backoff <= 0 {
		backoff = defaultBackoff
	}
	return retryPolicy{retries: retries, backoff: backoff}
}

// delay returns the pause before attempt n+1 after attempt n failed with
// err: backoff doubled per retry, capped at 30 s, with "equal jitter" (a
// random value between half and all of it). A longer Retry-After from the
// server is honoured up to the cap.
func (p retryPolicy) delay(n int, err error) time.Duration {
	d := p.backoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	d = d/2 + rand.N(d/2+1)
	var he *HTTPError
	if errors.As(err, &he) && he.retryAfter > d {
		d = min(he.retryAfter, maxBackoff)
	}
	return d
}

// retry runs attempt until it succeeds, fails permanently, the retries are
// used up or ctx is done, and returns the number of attempts made. host
// names the server in the ErrUnreachable error returned when no attempt
// could connect.
func retry(ctx context.Context, p retryPolicy, host string, attempt func(context.Context) error) (int, error) {
	allConnect := true
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return n - 1, fmt.Errorf("download interrupted: %w", ctxErr(ctx))
		}
		err := attempt(ctx)
		if err == nil {
			return n, nil
		}
		if ctx.Err() != nil {
			if errors.Is(err, ctx.Err()) {
				return n, err
			}
			return n, fmt.Errorf("download interrupted: %w (%v)", ctxErr(ctx), err)
		}
		connect := isConnectError(err)
		allConnect = allConnect && connect
		if !isRetryable(err) || n > p.retries {
			if allConnect && connect {
				return n, &unreachableError{host: host, err: connectCause(err)}
			}
			if n > 1 {
				return n, fmt.Errorf("%w (gave up after %d attempts)", err, n)
			}
			return n, err
		}
		t := time.NewTimer(p.delay(n, err))
		select {
		case <-ctx.Done():
			t.Stop()
			return n, fmt.Errorf("download interrupted while waiting to retry: %w (last error: %v)", ctxErr(ctx), err)
		case <-t.C:
		}
	}
}

// isRetryable reports whether err may go away on a later attempt.
func isRetryable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Transient()
	}
	if errors.Is(err, ErrChecksumMismatch) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrBadURL) {
		return false
	}
	var te *transientError
	return errors.As(err, &te)
}

// classifyRequestError marks an error from http.Client.Do: certificate
// problems are permanent, everything else (connect failures, resets,
// timeouts) transient.
func classifyRequestError(err error) error {
	var (
		unknownCA   x509.UnknownAuthorityError
		invalidCert x509.CertificateInvalidError
		hostname    x509.HostnameError
		verify      *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &invalidCert) ||
		errors.As(err, &hostname) || errors.As(err, &verify) {
		return err
	}
	return transient(err)
}

// isConnectError reports whether err means the connection could not even be
// set up: name resolution failed, the connection was refused, the network or
// host is unreachable, or the dial timed out.
func isConnectError(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect") {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ENETUNREACH,
		syscall.EHOSTUNREACH, syscall.ENETDOWN, syscall.EHOSTDOWN} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// unwrapURLError drops the `Get "URL": ` prefix http.Client adds, for
// messages that name the host already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// connectCause returns the most telling part of a connect failure for a
// message that names the host already: the DNS or dial error itself.
func connectCause(err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr
	}
	return err
}
