package fetch

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// defaultMaxBytes is the size limit when Request.MaxBytes is 0.
const defaultMaxBytes = 64 << 30

// copyBufSize is the size of the buffer a response body is read into.
const copyBufSize = 256 << 10

// Request describes one download.
type Request struct {
	// URL is the http or https URL to download.
	URL string
	// Dest is the final path. It must not be a directory; its directory
	// must exist. Partial data lives in Dest+".part" and the state needed
	// to resume it in Dest+".part.json". Dest is created or replaced, by
	// an atomic rename, only once the digest was verified.
	Dest string
	// Expected is the digest the file must have. When nil, the sha256 of
	// the file is still computed and returned.
	Expected *Digest
	// MaxBytes refuses files larger than this, judged by the announced
	// size and by the bytes received. 0 means 64 GiB.
	MaxBytes int64
	// Retries is the number of attempts after the first on transient
	// errors. 0 means 5; a negative value means no retry.
	Retries int
	// Backoff is the delay before the first retry; it doubles on each
	// further retry up to 30 s, with jitter. 0 means 1 s.
	Backoff time.Duration
	// IdleTimeout abandons an attempt (as a transient error) when no
	// response byte arrived for this long. 0 means 60 s.
	IdleTimeout time.Duration
	// Progress, if not nil, is called from the downloading goroutine at
	// most about 5 times a second, and once more when the transfer is
	// complete (with Done == Total). It must return quickly.
	Progress func(Progress)
	// Client sends the requests. nil means a shared client with a 10 s
	// dial timeout, a 10 s TLS handshake timeout, a 30 s response header
	// timeout, no overall timeout and proxies from the environment.
	Client *http.Client
}

// Result describes a finished download.
type Result struct {
	// Path is the final path, Request.Dest.
	Path string
	// Size is the file's size in bytes.
	Size int64
	// Digest is the file's digest: sha256, or the algorithm of
	// Request.Expected when given.
	Digest Digest
	// Resumed is true when the file includes bytes kept from an earlier
	// attempt or an earlier call rather than fetched from zero.
	Resumed bool
	// Attempts is the number of HTTP attempts made, including the first.
	Attempts int
}

// Download fetches req.URL into req.Dest, resuming a partial download left
// by an earlier call for the same URL, retrying transient failures and
// verifying the digest. On success Dest holds the complete file and the
// .part files are gone.
//
// A resume sends If-Range with the saved ETag (a strong one) or else
// Last-Modified; a server that gave neither is trusted to serve the same
// file when its announced size is unchanged, and the digest, when expected,
// catches the rest.
//
// On failure nothing is created at Dest. The .part is kept for a later
// resume, including after ctx was cancelled, except after a checksum
// mismatch or a size-limit refusal, which remove it. Errors wrap
// ErrBadURL, ErrChecksumMismatch, ErrTooLarge, ErrUnreachable, an
// *HTTPError or, on cancellation, ctx's error, as applies. The returned
// Result's Attempts is set on failure too.
func Download(ctx context.Context, req Request) (Result, error) {
	d, err := newDownload(req)
	if err != nil {
		return Result{}, err
	}
	n, err := retry(ctx, d.policy, d.u.Hostname(), d.attempt)
	d.res.Attempts = n
	if err != nil {
		return d.res, err
	}
	return d.res, nil
}

// download is the state of one Download call across its attempts.
type download struct {
	req      Request
	u        *url.URL
	client   *http.Client
	policy   retryPolicy
	alg      string
	maxBytes int64
	idle     time.Duration
	files    partFiles
	progress progressReporter

	h      hash.Hash // hash of the first hashed bytes of the .part
	hashed int64
	res    Result
}

func newDownload(req Request) (*download, error) {
	u, err := parseURL(req.URL)
	if err != nil {
		return nil, err
	}
	if req.Dest == "" {
		return nil, errors.New("download: no destination path")
	}
	if fi, err := os.Stat(req.Dest); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("download: destination %s is a directory", req.Dest)
	}
	d := &download{
		req:      req,
		u:        u,
		client:   req.Client,
		policy:   newRetryPolicy(req.Retries, req.Backoff),
		alg:      "sha256",
		maxBytes: req.MaxBytes,
		idle:     req.IdleTimeout,
		files:    newPartFiles(req.Dest),
		progress: progressReporter{fn: req.Progress},
	}
	if req.Expected != nil {
		exp, err := newDigest(req.Expected.Algorithm, req.Expected.Hex)
		if err != nil {
			return nil, fmt.Errorf("download: expected digest: %w", err)
		}
		d.req.Expected = &exp
		d.alg = exp.Algorithm
	}
	if d.client == nil {
		d.client = defaultClient()
	}
	if d.maxBytes <= 0 {
		d.maxBytes = defaultMaxBytes
	}
	if d.idle <= 0 {
		d.idle = defaultIdleTimeout
	}
	return d, nil
}

// parseURL accepts absolute http and https URLs with a host.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w %q: only http and https are supported", ErrBadURL, u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w %q: no host", ErrBadURL, u.Redacted())
	}
	return u, nil
}

// attempt makes one HTTP request and, on success, leaves the verified file
// at Dest and fills d.res.
func (d *download) attempt(ctx context.Context) error {
	offset, st, err := d.files.load(d.req.URL)
	if err != nil {
		return err
	}
	// Hash the bytes kept on disk before asking for the rest, so that a
	// long re-hash does not leave the response waiting.
	if err := d.hashUpTo(ctx, offset); err != nil {
		return err
	}
	actx, wd, stop := newWatchdog(ctx, d.idle)
	defer stop()

	hreq, err := http.NewRequestWithContext(actx, http.MethodGet, d.req.URL, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	// The bytes on disk must be the bytes of the file: no transparent
	// content encoding, whose offsets differ.
	hreq.Header.Set("Accept-Encoding", "identity")
	if offset > 0 {
		hreq.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if v := st.ifRange(); v != "" {
			hreq.Header.Set("If-Range", v)
		}
	}
	resp, err := d.client.Do(hreq)
	if err != nil {
		return networkError(ctx, actx, "download "+d.u.Redacted(), err)
	}
	defer resp.Body.Close()
	wd.kick()

	var total int64 // expected final size, -1 if unknown
	switch {
	case resp.StatusCode == http.StatusOK:
		offset, total = 0, resp.ContentLength
		if total > d.maxBytes {
			return d.tooLarge(fmt.Sprintf("the server announces %d bytes", total))
		}
		st = &partState{URL: d.req.URL, ETag: resp.Header.Get("ETag"),
			LastModified: resp.Header.Get("Last-Modified"), Size: total}
		if err := d.files.save(st); err != nil {
			return err
		}
		d.h, d.hashed = nil, 0
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		if total, err = d.checkPartial(resp, offset, st); err != nil {
			return err
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		return d.checkComplete(resp, offset, st)
	default:
		return d.httpError(resp)
	}
	if err := d.hashUpTo(ctx, offset); err != nil {
		return err
	}
	return d.receive(ctx, actx, wd, resp.Body, offset, total)
}

// checkPartial validates a 206 answer to a resume from offset and returns
// the expected final size (-1 if unknown). A mismatch discards the .part so
// that the next attempt starts over.
func (d *download) checkPartial(resp *http.Response, offset int64, st *partState) (int64, error) {
	start, _, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
	switch {
	case !ok || start != offset:
		return 0, d.restart(fmt.Sprintf("the server sent range %q for a request from byte %d",
			resp.Header.Get("Content-Range"), offset))
	case size >= 0 && st.Size >= 0 && size != st.Size:
		return 0, d.restart(fmt.Sprintf("the file changed size from %d to %d bytes", st.Size, size))
	case st.ETag != "" && resp.Header.Get("ETag") != "" && resp.Header.Get("ETag") != st.ETag:
		return 0, d.restart("the file's ETag changed")
	}
	if size < 0 && resp.ContentLength >= 0 {
		size = offset + resp.ContentLength
	}
	if size > d.maxBytes {
		return 0, d.tooLarge(fmt.Sprintf("the server announces %d bytes", size))
	}
	return size, nil
}

// checkComplete handles a 416 answer to a resume from offset: the .part is
// complete if the server's size (or the saved one) equals offset.
func (d *download) checkComplete(resp *http.Response, offset int64, st *partState) error {
	_, _, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
	if !ok || size < 0 {
		size = st.Size
	}
	if size != offset {
		return d.restart(fmt.Sprintf("the server cannot serve bytes from %d on", offset))
	}
	// attempt hashed the offset bytes before sending the request.
	d.progress.start(offset, offset, offset)
	d.progress.finish()
	return d.finish(offset, true)
}

// receive appends body to the .part, which holds offset bytes, expecting a
// final size of total (-1 if unknown), then verifies and renames the file.
func (d *download) receive(ctx, actx context.Context, wd *watchdog, body io.Reader, offset, total int64) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if offset == 0 {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(d.files.part, flags, 0o600)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer f.Close()

	d.progress.start(offset, offset, total)
	done := offset
	buf := make([]byte, copyBufSize)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			wd.kick()
			if done+int64(n) > d.maxBytes {
				return d.tooLarge(fmt.Sprintf("received more than %d bytes", d.maxBytes))
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("download: %w", err)
			}
			d.h.Write(buf[:n])
			done += int64(n)
			d.hashed = done
			d.progress.add(int64(n))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return networkError(ctx, actx, "download "+d.u.Redacted()+": reading the body", rerr)
		}
	}
	if total >= 0 && done != total {
		if done < total {
			return transient(fmt.Errorf("read body of %s: got %d of %d bytes: %w",
				d.u.Redacted(), done, total, io.ErrUnexpectedEOF))
		}
		return d.restart(fmt.Sprintf("the server sent %d bytes, more than the %d it announced", done, total))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	d.progress.finish()
	return d.finish(done, offset > 0)
}

// finish verifies the digest of the complete .part of size bytes and moves
// it to Dest.
func (d *download) finish(size int64, resumed bool) error {
	got := sum(d.alg, d.h)
	if exp := d.req.Expected; exp != nil && got != *exp {
		if err := d.files.discard(); err != nil {
			return err
		}
		d.h, d.hashed = nil, 0
		return fmt.Errorf("%w for %s: expected %s, got %s", ErrChecksumMismatch, d.u.Redacted(), exp, got)
	}
	if err := os.Rename(d.files.part, d.req.Dest); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if err := os.Remove(d.files.state); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("download: %w", err)
	}
	if err := syncDir(filepath.Dir(d.req.Dest)); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	d.res = Result{Path: d.req.Dest, Size: size, Digest: got, Resumed: resumed}
	return nil
}

// hashUpTo makes d.h cover the first offset bytes of the .part, reusing the
// running hash of the previous attempt when it stopped exactly there.
func (d *download) hashUpTo(ctx context.Context, offset int64) error {
	if d.h != nil && d.hashed == offset {
		return nil
	}
	d.h, d.hashed = newHash(d.alg), 0
	if offset == 0 {
		return nil
	}
	if err := d.files.hashPrefix(ctx, d.h, offset); err != nil {
		d.h = nil
		return err
	}
	d.hashed = offset
	return nil
}

// httpError turns an unexpected status into an *HTTPError.
func (d *download) httpError(resp *http.Response) error {
	he := &HTTPError{StatusCode: resp.StatusCode, URL: d.u.Redacted()}
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
		he.retryAfter = time.Duration(s) * time.Second
	}
	return he
}

// tooLarge discards the partial data and returns an ErrTooLarge error.
func (d *download) tooLarge(why string) error {
	if err := d.files.discard(); err != nil {
		return err
	}
	d.h, d.hashed = nil, 0
	return fmt.Errorf("download %s: %w: %s, the limit is %d bytes", d.u.Redacted(), ErrTooLarge, why, d.maxBytes)
}

// restart discards the partial data and returns a transient error, so that
// the next attempt fetches the file from the start.
func (d *download) restart(why string) error {
	if err := d.files.discard(); err != nil {
		return err
	}
	d.h, d.hashed = nil, 0
	return transient(fmt.Errorf("download %s: %s; starting over", d.u.Redacted(), why))
}

// parseContentRange parses "bytes first-last/size" or "bytes */size"; size
// is -1 when given as "*". For the "*/size" form first and last are -1.
func parseContentRange(s string) (first, last, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, sz, found := strings.Cut(strings.TrimSpace(rest), "/")
	if !found {
		return 0, 0, 0, false
	}
	size = -1
	if sz != "*" {
		v, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || v < 0 {
			return 0, 0, 0, false
		}
		size = v
	}
	if rng == "*" {
		return -1, -1, size, true
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first || (size >= 0 && last >= size) {
		return 0, 0, 0, false
	}
	return first, last, size, true
}
