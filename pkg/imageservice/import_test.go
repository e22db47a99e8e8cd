package imageservice

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/vm"
)

// TestImportRawWithQcow2Header imports, as raw, a file that is a qcow2
// naming a host file as its backing file: it stays raw, keeps the file's
// size and bytes, and the backing file is never read.
func TestImportRawWithQcow2Header(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("SECRET", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "disk.img")
	if b, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", src, "1G").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	st, _ := os.Stat(src)
	op, err := f.svc.Import(context.Background(), api.ImportImageRequest{Name: "hdr", Path: src, Format: "raw", NoPreflight: true}, Caller{UID: 0, Known: true})
	if err != nil {
		t.Fatal(err)
	}
	if msg, stages := f.wait(t, op.ID); msg != "" {
		t.Fatalf("import: %s (%v)", msg, stages)
	}
	path := f.store.ImportedPath("hdr")
	rec, err := imagestore.ReadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	// qemu gives a raw image the file's size rounded up to whole sectors.
	wantSize := (st.Size() + 511) / 512 * 512
	if rec.VirtualSize != wantSize || rec.SourceFormat != "raw" || rec.SourceBytes != st.Size() || len(rec.SourceSHA256) != 64 {
		t.Fatalf("record = %+v, want virtual size %d", rec, wantSize)
	}
	if b, err := exec.Command("qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", src, path).CombinedOutput(); err != nil {
		t.Fatalf("imported image differs from the raw file: %v %s", err, b)
	}
	if rec.Readiness != vm.ReadyBoot {
		t.Fatalf("readiness without pre-flight = %q, want boot", rec.Readiness)
	}
}
