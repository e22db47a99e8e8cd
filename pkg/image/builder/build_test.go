package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galevm/gale/pkg/image"
)

const recipe = `name: test-1
os: debian
defaults: {cpus: 1, memory_mib: 1024, disk_gib: 10}
boot: bios
user: gale
packages: [cloud-init]
build:
  suite: bookworm
  kernel: linux-image-cloud-amd64
  disk_gib: 2
`

func TestBuildReturnsCachedImage(t *testing.T) {
	tmpl, err := image.ParseTemplate("", []byte(recipe))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The name images built before have, so their caches are found.
	want := filepath.Join(dir, "test-1-"+tmpl.RecipeHash()[:12]+".qcow2")
	if err := os.WriteFile(want, []byte("qcow2"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stages []string
	got, err := Build(t.Context(), tmpl, Options{CacheDir: dir, Progress: func(s string) { stages = append(stages, s) }})
	if err != nil || got != want {
		t.Fatalf("Build = %q, %v; want %q", got, err, want)
	}
	if len(stages) != 0 {
		t.Fatalf("cached build ran stages %v", stages)
	}
}

func TestNewUUID(t *testing.T) {
	u, err := newUUID()
	if err != nil {
		t.Fatal(err)
	}
	if len(u) != 36 || u[14] != '4' || strings.Count(u, "-") != 4 {
		t.Fatalf("newUUID = %q, not a v4 UUID", u)
	}
}

func TestMountsUnderUnescape(t *testing.T) {
	if got := unescapeMountinfo(`/a\040b`); got != "/a b" {
		t.Fatalf("unescape = %q", got)
	}
}
