package fetch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// testData returns n pseudo-random bytes, the same for the same seed.
func testData(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

// sha256Of returns the sha256 Digest of b.
func sha256Of(b []byte) Digest {
	s := sha256.Sum256(b)
	return Digest{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// seenRequest is what a test server records of a request.
type seenRequest struct {
	Range, IfRange string
}

// testServer is an httptest server on 127.0.0.1 whose handler gets the
// 0-based number of each request, and which records every request.
type testServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newTestServer(t testing.TB, handler func(w http.ResponseWriter, r *http.Request, n int)) *testServer {
	t.Helper()
	ts := &testServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		n := len(ts.seen)
		ts.seen = append(ts.seen, seenRequest{Range: r.Header.Get("Range"), IfRange: r.Header.Get("If-Range")})
		ts.mu.Unlock()
		handler(w, r, n)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// requests returns a copy of the recorded requests.
func (ts *testServer) requests() []seenRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]seenRequest(nil), ts.seen...)
}

// sawRange reports whether any request asked for a range.
func (ts *testServer) sawRange() bool {
	for _, r := range ts.requests() {
		if r.Range != "" {
			return true
		}
	}
	return false
}

// serve answers with content under etag, honouring Range and If-Range.
func serve(w http.ResponseWriter, r *http.Request, content []byte, etag string) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
}

// serveCut announces all of content but sends only its first n bytes, then
// drops the connection.
func serveCut(t testing.TB, w http.ResponseWriter, content []byte, etag string, n int) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	w.WriteHeader(http.StatusOK)
	w.Write(content[:n])
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// fastRequest returns a Request for url into a new temporary directory,
// with millisecond backoff.
func fastRequest(t testing.TB, url string) Request {
	t.Helper()
	return Request{URL: url, Dest: filepath.Join(t.TempDir(), "image.qcow2"), Backoff: time.Millisecond}
}

// assertFile fails unless path holds want.
func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read result: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (sha256 %s), want %d bytes (sha256 %s)",
			path, len(got), sha256Of(got).Hex, len(want), sha256Of(want).Hex)
	}
}

// assertAbsent fails if any of paths exists.
func assertAbsent(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists, want it absent", p)
		} else if !os.IsNotExist(err) {
			t.Errorf("stat %s: %v", p, err)
		}
	}
}
