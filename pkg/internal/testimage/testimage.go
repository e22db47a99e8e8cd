// Package testimage makes disk image fixtures for tests.
package testimage

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// PatternedRaw writes a sparse raw image of size bytes under dir, holding
// 256 KiB of pseudo-random data at five offsets spread over it and holes
// elsewhere, and returns its path. The same arguments give the same bytes.
func PatternedRaw(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	buf := make([]byte, 256<<10)
	for off := int64(0); off+int64(len(buf)) <= size; off += size / 5 {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
