package metrics

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// fileVersion is the version of the file format Save writes.
const fileVersion = 1

// file is what Save writes with encoding/gob. Sample times are stored as
// deltas (gob writes integers as varints: about 5 bytes for a 10 s step
// instead of 9 for a Unix time in nanoseconds).
type file struct {
	Version int
	Series  []fileSeries
}

// fileSeries is one series in a file.
type fileSeries struct {
	Object, Metric string
	// Times[0] is the first sample's Unix time in nanoseconds, Times[i]
	// the time since sample i-1.
	Times  []int64
	Values []float64
}

// Save writes every series to path atomically: to a temporary file in the
// same directory (mode 0600), synced, then renamed over path. On error path
// is left as it was. The store stays usable (it is only read-locked while
// it is copied, not while the file is written).
func (s *Store) Save(path string) (err error) {
	snap := s.snapshot()
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save metrics: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 64<<10)
	if err := gob.NewEncoder(w).Encode(snap); err != nil {
		return fmt.Errorf("save metrics: encode %s: %w", tmp.Name(), err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("save metrics: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save metrics: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save metrics: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save metrics: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable; best effort
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// snapshot copies the store into the file form.
func (s *Store) snapshot() *file {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f := &file{Version: fileVersion}
	for o, m := range s.objects {
		for name, r := range m {
			if r.n == 0 {
				continue
			}
			ser := fileSeries{Object: o, Metric: name, Times: make([]int64, r.n), Values: make([]float64, r.n)}
			prev := int64(0)
			for i := 0; i < r.n; i++ {
				p := r.at(i)
				ser.Times[i], ser.Values[i] = p.t-prev, p.v
				prev = p.t
			}
			f.Series = append(f.Series, ser)
		}
	}
	return f
}

// Load adds the series saved at path to the store, merged in time order
// with what it holds; a missing file is not an error. Samples older than
// the store's retention (counted back from now) are dropped, and each
// series keeps at most its ring limit (see Store). A file that cannot be
// decoded is an error and adds nothing.
func (s *Store) Load(path string) error {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load metrics: %w", err)
	}
	defer fh.Close()
	var f file
	if err := gob.NewDecoder(bufio.NewReaderSize(fh, 64<<10)).Decode(&f); err != nil {
		return fmt.Errorf("load metrics: decode %s: %w", path, err)
	}
	if f.Version != fileVersion {
		return fmt.Errorf("load metrics: %s: unsupported version %d (want %d)", path, f.Version, fileVersion)
	}
	for _, ser := range f.Series {
		if len(ser.Times) != len(ser.Values) {
			return fmt.Errorf("load metrics: %s: series %s %s has %d times and %d values",
				path, ser.Object, ser.Metric, len(ser.Times), len(ser.Values))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := s.clock().Add(-s.retention).UnixNano()
	for _, ser := range f.Series {
		t := int64(0)
		for i, d := range ser.Times {
			t += d
			v := ser.Values[i]
			if t >= cut && !math.IsNaN(v) && !math.IsInf(v, 0) {
				s.addLocked(ser.Object, ser.Metric, point{t: t, v: v})
			}
		}
	}
	return nil
}
