package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestDownloadFullWithProgress(t *testing.T) {
	content := testData(4<<20+123, 1)
	const pieces = 8
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		step := len(content) / pieces
		for i := 0; i < len(content); i += step {
			w.Write(content[i:min(i+step, len(content))])
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	req := fastRequest(t, ts.URL+"/img")
	var reports []Progress
	req.Progress = func(p Progress) { reports = append(reports, p) }

	start := time.Now()
	res, err := Download(context.Background(), req)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	assertFile(t, req.Dest, content)
	assertAbsent(t, req.Dest+".part", req.Dest+".part.json")
	if want := sha256Of(content); res.Digest != want {
		t.Errorf("digest %v, want %v", res.Digest, want)
	}
	if res.Size != int64(len(content)) || res.Path != req.Dest || res.Resumed || res.Attempts != 1 {
		t.Errorf("result %+v", res)
	}
	if len(reports) < 3 {
		t.Fatalf("got %d progress reports, want several: %+v", len(reports), reports)
	}
	if limit := int(elapsed/progressInterval) + 1; len(reports) > limit {
		t.Errorf("got %d progress reports in %v, want at most %d", len(reports), elapsed, limit)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Done <= reports[i-1].Done {
			t.Errorf("progress Done not increasing: %d then %d", reports[i-1].Done, reports[i].Done)
		}
	}
	last := reports[len(reports)-1]
	if last.Done != int64(len(content)) || last.Total != int64(len(content)) {
		t.Errorf("last progress %+v, want Done == Total == %d", last, len(content))
	}
	if reports[len(reports)-2].Rate <= 0 {
		t.Errorf("no rate in %+v", reports[len(reports)-2])
	}
}

func TestDownloadExpectedSHA512(t *testing.T) {
	content := testData(70000, 2)
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) { serve(w, r, content, "") })
	h := newHash("sha512")
	h.Write(content)
	want := sum("sha512", h)
	req := fastRequest(t, ts.URL)
	exp := Digest{Algorithm: "SHA512", Hex: strings.ToUpper(want.Hex)}
	req.Expected = &exp
	res, err := Download(context.Background(), req)
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if res.Digest != want {
		t.Errorf("digest %v, want %v", res.Digest, want)
	}
	assertFile(t, req.Dest, content)
}

func TestDownloadResumesAfterCut(t *testing.T) {
	content := testData(3<<20, 3)
	modTime := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, etag  string
		wantIfRange string
	}{
		{"ETag", `"v1"`, `"v1"`},
		{"Last-Modified only", "", modTime.Format(http.TimeFormat)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if tt.etag == "" {
					w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
				}
				if n == 0 {
					serveCut(t, w, content, tt.etag, len(content)/2)
					return
				}
				if tt.etag != "" {
					w.Header().Set("ETag", tt.etag)
				}
				http.ServeContent(w, r, "", modTime, bytes.NewReader(content))
			})
			req := fastRequest(t, ts.URL+"/disk.img")
			want := sha256Of(content)
			req.Expected = &want
			res, err := Download(context.Background(), req)
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			assertFile(t, req.Dest, content)
			if !res.Resumed || res.Attempts != 2 || res.Digest != want {
				t.Errorf("result %+v, want resumed after 2 attempts", res)
			}
			reqs := ts.requests()
			if len(reqs) != 2 || !strings.HasPrefix(reqs[1].Range, "bytes=") || reqs[1].Range == "bytes=0-" {
				t.Fatalf("requests %+v, want a second one with a Range", reqs)
			}
			if reqs[1].IfRange != tt.wantIfRange {
				t.Errorf("If-Range %q, want %q", reqs[1].IfRange, tt.wantIfRange)
			}
		})
	}
}

func TestDownloadStartsOver(t *testing.T) {
	v1 := testData(2<<20, 4)
	v2 := testData(2<<20+777, 5)
	tests := []struct {
		name    string
		second  func(w http.ResponseWriter, r *http.Request)
		want    []byte
		ifRange string
	}{{
		name: "server ignores Range",
		second: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(v1)))
			w.Write(v1)
		},
		want: v1,
	}, {
		name:   "file changed, If-Range fails",
		second: func(w http.ResponseWriter, r *http.Request) { serve(w, r, v2, `"v2"`) },
		want:   v2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 0 {
					serveCut(t, w, v1, `"v1"`, len(v1)/3)
					return
				}
				tt.second(w, r)
			})
			req := fastRequest(t, ts.URL)
			res, err := Download(context.Background(), req)
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			assertFile(t, req.Dest, tt.want)
			if res.Digest != sha256Of(tt.want) || res.Resumed || res.Size != int64(len(tt.want)) {
				t.Errorf("result %+v", res)
			}
			if !ts.sawRange() {
				t.Errorf("the second attempt did not ask for a range: %+v", ts.requests())
			}
		})
	}
}

func TestDownloadChecksumMismatch(t *testing.T) {
	content := testData(100000, 6)
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) { serve(w, r, content, `"x"`) })
	req := fastRequest(t, ts.URL)
	wrong := sha256Of([]byte("something else"))
	req.Expected = &wrong
	_, err := Download(context.Background(), req)
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("err = %v, want ErrChecksumMismatch", err)
	}
	for _, s := range []string{wrong.String(), sha256Of(content).String()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	assertAbsent(t, req.Dest, req.Dest+".part", req.Dest+".part.json")
	if n := len(ts.requests()); n != 1 {
		t.Errorf("%d requests, want 1 (no retry)", n)
	}
}

func TestDownloadHTTPStatus(t *testing.T) {
	content := testData(5000, 7)
	tests := []struct {
		name         string
		statuses     []int // answered before the content, one per request
		wantStatus   int   // 0: success
		wantRequests int
	}{
		{"404 is permanent", []int{404}, 404, 1},
		{"403 is permanent", []int{403}, 403, 1},
		{"410 is permanent", []int{410}, 410, 1},
		{"400 is permanent", []int{400}, 400, 1},
		{"503 twice then 200", []int{503, 503}, 0, 3},
		{"429, 500, 502, 504, 408 then 200", []int{429, 500, 502, 504, 408}, 0, 6},
		{"503 until retries run out", []int{503, 503, 503, 503}, 503, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n < len(tt.statuses) {
					http.Error(w, "no", tt.statuses[n])
					return
				}
				serve(w, r, content, "")
			})
			req := fastRequest(t, ts.URL+"/x.img")
			if tt.wantStatus == 503 {
				req.Retries = 2
			}
			res, err := Download(context.Background(), req)
			if got := len(ts.requests()); got != tt.wantRequests || res.Attempts != tt.wantRequests {
				t.Errorf("%d requests, %d attempts; want %d", got, res.Attempts, tt.wantRequests)
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("Download: %v", err)
				}
				assertFile(t, req.Dest, content)
				return
			}
			var he *HTTPError
			if !errors.As(err, &he) || he.StatusCode != tt.wantStatus || he.URL != ts.URL+"/x.img" {
				t.Fatalf("err = %v, want an *HTTPError %d for the URL", err, tt.wantStatus)
			}
			assertAbsent(t, req.Dest)
		})
	}
}

func TestDownloadTooLarge(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
	}{{
		name: "Content-Length over the limit",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(64<<20))
			w.WriteHeader(http.StatusOK)
			w.Write(make([]byte, 1<<20))
		},
	}, {
		name: "no Content-Length, endless body",
		handler: func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 64<<10)
			for i := 0; i < 4096; i++ { // 256 MiB at most
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) { tt.handler(w, r) })
			req := fastRequest(t, ts.URL)
			req.MaxBytes = 1 << 20
			start := time.Now()
			_, err := Download(context.Background(), req)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			if n := len(ts.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			assertAbsent(t, req.Dest, req.Dest+".part", req.Dest+".part.json")
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDownloadUnreachable(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		req := fastRequest(t, "http://"+closedPort(t)+"/debian.qcow2")
		req.Retries = 2
		res, err := Download(context.Background(), req)
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err = %v, want ErrUnreachable wrapping ECONNREFUSED", err)
		}
		for _, s := range []string{"cannot reach 127.0.0.1", "offline", "gale image import"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
		if res.Attempts != 3 {
			t.Errorf("%d attempts, want 3", res.Attempts)
		}
	})
	t.Run("DNS failure", func(t *testing.T) {
		var dials atomic.Int32
		client := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return nil, &net.DNSError{Err: "no such host", Name: "mirror", IsNotFound: true}
			},
		}}
		req := fastRequest(t, "http://"+closedPort(t)+"/x")
		req.Client, req.Retries = client, 1
		_, err := Download(context.Background(), req)
		var dnsErr *net.DNSError
		if !errors.Is(err, ErrUnreachable) || !errors.As(err, &dnsErr) {
			t.Fatalf("err = %v, want ErrUnreachable wrapping a *net.DNSError", err)
		}
		if n := dials.Load(); n != 2 {
			t.Errorf("%d dials, want 2", n)
		}
	})
	t.Run("one attempt connected", func(t *testing.T) {
		ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) { http.Error(w, "busy", 503) })
		var dials atomic.Int32
		client := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if dials.Add(1) == 1 {
					return (&net.Dialer{}).DialContext(ctx, network, ts.Listener.Addr().String())
				}
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			},
			DisableKeepAlives: true,
		}}
		req := fastRequest(t, ts.URL)
		req.Client, req.Retries = client, 2
		_, err := Download(context.Background(), req)
		if err == nil || errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v, want an error other than ErrUnreachable", err)
		}
	})
}

func TestDownloadCancelKeepsPartForResume(t *testing.T) {
	content := testData(2<<20, 8)
	half := len(content) / 2
	release := make(chan struct{})
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			w.Header().Set("ETag", `"c"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			w.Write(content[:half])
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		serve(w, r, content, `"c"`)
	})
	defer close(release)
	req := fastRequest(t, ts.URL)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Download(ctx, req)
		errc <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if fi, err := os.Stat(req.Dest + ".part"); err == nil && fi.Size() == int64(half) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first half never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Download did not return promptly after cancel")
	}
	assertAbsent(t, req.Dest)
	if fi, err := os.Stat(req.Dest + ".part"); err != nil || fi.Size() != int64(half) {
		t.Fatalf(".part after cancel: %v, %v", fi, err)
	}

	res, err := Download(context.Background(), req)
	if err != nil {
		t.Fatalf("second Download: %v", err)
	}
	assertFile(t, req.Dest, content)
	if !res.Resumed || res.Digest != sha256Of(content) {
		t.Errorf("result %+v", res)
	}
	if reqs := ts.requests(); reqs[len(reqs)-1].Range != fmt.Sprintf("bytes=%d-", half) {
		t.Errorf("requests %+v, want the last from byte %d", reqs, half)
	}
}

func TestDownloadCancelDuringBackoff(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) { http.Error(w, "busy", 503) })
	req := fastRequest(t, ts.URL)
	req.Backoff = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Download(ctx, req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v to notice the cancellation", d)
	}
}

func TestDownloadStaleState(t *testing.T) {
	content := testData(300000, 9)
	tests := []struct {
		name  string
		state string // "" writes no state file
	}{
		{"no state file", ""},
		{"state for another URL", `{"url":"http://127.0.0.1:1/other.img","etag":"\"e\"","size":300000}`},
		{"unreadable state", `{not json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) { serve(w, r, content, `"e"`) })
			req := fastRequest(t, ts.URL)
			if err := os.WriteFile(req.Dest+".part", []byte("stale bytes from elsewhere"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.state != "" {
				if err := os.WriteFile(req.Dest+".part.json", []byte(tt.state), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Download(context.Background(), req)
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			assertFile(t, req.Dest, content)
			if ts.sawRange() || res.Resumed {
				t.Errorf("resumed a stale .part: %+v, %+v", ts.requests(), res)
			}
		})
	}
}

func TestDownloadPartAlreadyComplete(t *testing.T) {
	content := testData(200000, 10)
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) { serve(w, r, content, `"done"`) })
	req := fastRequest(t, ts.URL+"/a.img")
	st, _ := json.Marshal(partState{URL: req.URL, ETag: `"done"`, Size: int64(len(content))})
	os.WriteFile(req.Dest+".part", content, 0o600)
	os.WriteFile(req.Dest+".part.json", st, 0o600)
	want := sha256Of(content)
	req.Expected = &want

	res, err := Download(context.Background(), req)
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	assertFile(t, req.Dest, content)
	assertAbsent(t, req.Dest+".part", req.Dest+".part.json")
	if !res.Resumed || res.Size != int64(len(content)) {
		t.Errorf("result %+v", res)
	}
	if reqs := ts.requests(); len(reqs) != 1 || reqs[0].Range != fmt.Sprintf("bytes=%d-", len(content)) {
		t.Errorf("requests %+v, want one range request from the end", reqs)
	}
}

func TestDownloadStalledBodyIsRetried(t *testing.T) {
	content := testData(1<<20, 11)
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			w.Header().Set("ETag", `"s"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			w.Write(content[:1000])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		serve(w, r, content, `"s"`)
	})
	req := fastRequest(t, ts.URL)
	req.IdleTimeout = 150 * time.Millisecond
	res, err := Download(context.Background(), req)
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	assertFile(t, req.Dest, content)
	if res.Attempts != 2 || !res.Resumed {
		t.Errorf("result %+v, want a resumed second attempt", res)
	}
}

func TestDownloadBadRequests(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, url, dest string
		wantBadURL      bool
	}{
		{"file URL", "file:///etc/passwd", filepath.Join(dir, "a"), true},
		{"ftp URL", "ftp://127.0.0.1/a.img", filepath.Join(dir, "a"), true},
		{"no scheme", "127.0.0.1/a.img", filepath.Join(dir, "a"), true},
		{"unparsable", "http://[::1", filepath.Join(dir, "a"), true},
		{"no host", "http:///a.img", filepath.Join(dir, "a"), true},
		{"destination is a directory", "http://127.0.0.1:1/a.img", dir, false},
		{"no destination", "http://127.0.0.1:1/a.img", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Download(context.Background(), Request{URL: tt.url, Dest: tt.dest})
			if err == nil || errors.Is(err, ErrBadURL) != tt.wantBadURL {
				t.Fatalf("err = %v, want ErrBadURL: %v", err, tt.wantBadURL)
			}
		})
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in                string
		first, last, size int64
		ok                bool
	}{
		{"bytes 10-19/20", 10, 19, 20, true},
		{"bytes 10-19/*", 10, 19, -1, true},
		{"bytes */20", -1, -1, 20, true},
		{"bytes 10-20/20", 0, 0, 0, false},
		{"bytes 19-10/20", 0, 0, 0, false},
		{"items 1-2/3", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tt := range tests {
		f, l, s, ok := parseContentRange(tt.in)
		if ok != tt.ok || ok && (f != tt.first || l != tt.last || s != tt.size) {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v", tt.in, f, l, s, ok)
		}
	}
}

func TestIfRange(t *testing.T) {
	tests := []struct {
		st   partState
		want string
	}{
		{partState{ETag: `"abc"`, LastModified: "Mon, 02 Jan 2006 15:04:05 GMT"}, `"abc"`},
		{partState{ETag: `W/"abc"`, LastModified: "Mon, 02 Jan 2006 15:04:05 GMT"}, "Mon, 02 Jan 2006 15:04:05 GMT"},
		{partState{LastModified: "Mon, 02 Jan 2006 15:04:05 GMT"}, "Mon, 02 Jan 2006 15:04:05 GMT"},
		{partState{}, ""},
	}
	for _, tt := range tests {
		if got := tt.st.ifRange(); got != tt.want {
			t.Errorf("ifRange(%+v) = %q, want %q", tt.st, got, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	p := newRetryPolicy(0, 100*time.Millisecond)
	if p.retries != 5 {
		t.Errorf("default retries %d", p.retries)
	}
	if newRetryPolicy(-1, 0).retries != 0 || newRetryPolicy(-1, 0).backoff != time.Second {
		t.Error("negative retries or default backoff wrong")
	}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 3: 400 * time.Millisecond, 20: maxBackoff} {
		for range 50 {
			d := p.delay(n, nil)
			if d < want/2 || d > want {
				t.Fatalf("delay(%d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if d := p.delay(1, &HTTPError{StatusCode: 503, retryAfter: 7 * time.Second}); d != 7*time.Second {
		t.Errorf("Retry-After ignored: %v", d)
	}
}

func BenchmarkDownloadLoopback(b *testing.B) {
	content := testData(256<<20, 12)
	ts := newTestServer(b, func(w http.ResponseWriter, r *http.Request, n int) { serve(w, r, content, `"b"`) })
	dir := b.TempDir()
	b.SetBytes(int64(len(content)))
	b.ResetTimer()
	for b.Loop() {
		dest := filepath.Join(dir, "bench.img")
		if _, err := Download(context.Background(), Request{URL: ts.URL, Dest: dest}); err != nil {
			b.Fatal(err)
		}
		os.Remove(dest)
	}
}
