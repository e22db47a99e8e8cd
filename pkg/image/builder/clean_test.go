package builder

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestCleanBuilds(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, ".build-debian-12-123456")
	live := filepath.Join(dir, ".build-ubuntu-24.04-987654")
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(filepath.Join(d, "rootfs", "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(dir, "debian-12-f569bdaa9b81.qcow2")
	if err := os.WriteFile(keep, []byte("image"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A build of ubuntu-24.04 holds its lock.
	unlock, err := lockFile(context.Background(), filepath.Join(dir, ".ubuntu-24.04.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	removed, err := CleanBuilds(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != dead {
		t.Fatalf("removed %v, want only %s", removed, dead)
	}
	for _, p := range []string{live, keep} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s was removed: %v", p, err)
		}
	}
}
