package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// partState is what Dest+".part.json" records about Dest+".part" so that a
// later attempt can resume it.
type partState struct {
	// URL is the URL the partial data came from.
	URL string `json:"url"`
	// ETag and LastModified are the validators of the response that
	// started the .part; the resuming request sends one as If-Range.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Size is the full size of the file, -1 if the server did not say.
	Size int64 `json:"size"`
}

// ifRange returns the validator to send as If-Range: the ETag unless it is
// weak (weak ETags are not allowed there), else Last-Modified.
func (s *partState) ifRange() string {
	if s.ETag != "" && !strings.HasPrefix(s.ETag, "W/") {
		return s.ETag
	}
	return s.LastModified
}

// partFiles names the files of one download in progress.
type partFiles struct {
	part, state string
}

func newPartFiles(dest string) partFiles {
	return partFiles{part: dest + ".part", state: dest + ".part.json"}
}

// load returns the size of the .part and its state if they belong together
// and to url; otherwise it removes whatever is there and returns 0 and nil.
func (pf partFiles) load(url string) (int64, *partState, error) {
	fi, err := os.Stat(pf.part)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, pf.discard()
	}
	if err != nil {
		return 0, nil, fmt.Errorf("partial download: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return 0, nil, fmt.Errorf("partial download %s is not a regular file", pf.part)
	}
	data, err := os.ReadFile(pf.state)
	if err != nil {
		return 0, nil, pf.discard()
	}
	var st partState
	if json.Unmarshal(data, &st) != nil || st.URL != url ||
		(st.Size >= 0 && fi.Size() > st.Size) {
		return 0, nil, pf.discard()
	}
	return fi.Size(), &st, nil
}

// save writes the state atomically.
func (pf partFiles) save(st *partState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := pf.state + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("save download state: %w", err)
	}
	if err := os.Rename(tmp, pf.state); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save download state: %w", err)
	}
	return nil
}

// discard removes the .part and its state.
func (pf partFiles) discard() error {
	for _, p := range []string{pf.part, pf.state} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale partial download: %w", err)
		}
	}
	return nil
}

// hashPrefix feeds the first n bytes of the .part into h, stopping early
// when ctx is done.
func (pf partFiles) hashPrefix(ctx context.Context, h hash.Hash, n int64) error {
	f, err := os.Open(pf.part)
	if err != nil {
		return fmt.Errorf("hash partial download: %w", err)
	}
	defer f.Close()
	got, err := io.Copy(h, &ctxReader{ctx: ctx, r: io.LimitReader(f, n)})
	if err != nil {
		return fmt.Errorf("hash partial download: %w", err)
	}
	if got != n {
		return fmt.Errorf("hash partial download: %s has %d bytes, expected %d", pf.part, got, n)
	}
	return nil
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, ctxErr(c.ctx)
	}
	return c.r.Read(p)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
