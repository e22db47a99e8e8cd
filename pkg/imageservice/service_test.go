package imageservice

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/internal/testtool"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/vm"
)

// fixture is an image service on temporary directories with a loopback
// HTTP server publishing files.
type fixture struct {
	svc     *Service
	ops     *operation.Registry
	catalog string
	store   imagestore.Store
	files   map[string][]byte
	hits    map[string]*atomic.Int32
	srv     *httptest.Server
	users   map[string][]string
	gate    chan struct{} // when set, downloads of /slow/* wait for it
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testtool.Need(t, "Debian: qemu-utils", "qemu-img")
	dir := t.TempDir()
	f := &fixture{catalog: filepath.Join(dir, "catalog"), store: imagestore.Store{Dir: filepath.Join(dir, "images")},
		files: map[string][]byte{}, hits: map[string]*atomic.Int32{}, users: map[string][]string{}}
	if err := os.MkdirAll(f.catalog, 0o755); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow/") && f.gate != nil {
			<-f.gate
		}
		name := filepath.Base(r.URL.Path)
		if c, ok := f.hits[name]; ok {
			c.Add(1)
		}
		data, ok := f.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(f.srv.Close)
	log := logrus.New()
	log.SetOutput(io.Discard)
	f.ops = operation.New(0, nil)
	svc, err := New(Config{
		Catalog: image.Catalog{Dirs: []string{f.catalog}}, Store: f.store, Ops: f.ops, Log: log,
		MaxImageBytes: 64 << 20, DownloadRetries: -1,
		VMs: mapVMs(f.users),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	f.svc = svc
	return f
}

// mapVMs is a VMRecords whose VMs all have their image file recorded: it
// maps an image file's path to the VMs based on it.
type mapVMs map[string][]string

func (m mapVMs) VMImages(context.Context) ([]VMImage, error) {
	var out []VMImage
	for path, vms := range m {
		for _, vm := range vms {
			out = append(out, VMImage{VM: vm, ImagePath: path})
		}
	}
	return out, nil
}

func (m mapVMs) RecordImagePath(context.Context, string, string) error {
	return errors.New("every image file is recorded")
}

// publish serves data as name and records it in SHA256SUMS.
func (f *fixture) publish(name string, data []byte) string {
	f.files[name] = data
	f.hits[name] = &atomic.Int32{}
	sum := sha256.Sum256(data)
	f.files["SHA256SUMS"] = append(f.files["SHA256SUMS"], []byte(hex.EncodeToString(sum[:])+"  "+name+"\n")...)
	return hex.EncodeToString(sum[:])
}

func (f *fixture) entry(t *testing.T, name, path, format string) {
	t.Helper()
	doc := fmt.Sprintf(`name: %s
os: test
defaults: {cpus: 1, memory_mib: 512, disk_gib: 1}
boot: bios
user: tester
source:
  url: %s%s
  format: %s
  checksum: {url: %s/SHA256SUMS, algorithm: sha256}
`, name, f.srv.URL, path, format, f.srv.URL)
	if err := os.WriteFile(filepath.Join(f.catalog, name+".yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// qcow2Bytes makes a small qcow2 with a known pattern in it.
func qcow2Bytes(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	if err := os.WriteFile(raw, bytes.Repeat([]byte("gale"), 1<<18), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(raw, 8<<20); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "img.qcow2")
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func gz(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write(data)
	_ = w.Close()
	return b.Bytes()
}

// wait follows op to its end and returns its error text ("" on success)
// and its stages.
func (f *fixture) wait(t *testing.T, id string) (string, []string) {
	t.Helper()
	op, err := f.ops.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stages []string
	var msg string
	err = op.Follow(ctx, func(ev api.Event) error {
		stages = append(stages, ev.Stage)
		msg = ev.Error
		return nil
	})
	if err != nil {
		t.Fatalf("operation did not finish: %v", err)
	}
	return msg, stages
}

func leftovers(t *testing.T, dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestPullVerifiesDecompressesAndRecords(t *testing.T) {
	f := newFixture(t)
	img := qcow2Bytes(t)
	f.publish("disk.qcow2.gz", gz(t, img))
	f.entry(t, "cloud", "/disk.qcow2.gz", "qcow2")

	op, err := f.svc.Pull(context.Background(), api.PullImageRequest{Name: "cloud"})
	if err != nil {
		t.Fatal(err)
	}
	if msg, stages := f.wait(t, op.ID); msg != "" {
		t.Fatalf("pull failed: %s (stages %v)", msg, stages)
	}
	d, err := f.svc.Show(context.Background(), "cloud")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(d.Path)
	if !d.Present || d.Origin != imagestore.OriginPulled || !bytes.Equal(got, img) {
		t.Fatalf("pulled image: present %v origin %q, content equal %v", d.Present, d.Origin, bytes.Equal(got, img))
	}
	if v, _ := d.Record["verified"].(string); !strings.HasPrefix(v, "sha256:") {
		t.Fatalf("record = %v", d.Record)
	}
	// A second pull is immediate and downloads nothing.
	op, err = f.svc.Pull(context.Background(), api.PullImageRequest{Name: "cloud"})
	if err != nil {
		t.Fatal(err)
	}
	if msg, stages := f.wait(t, op.ID); msg != "" || stages[0] != StagePresent {
		t.Fatalf("second pull: %q %v", msg, stages)
	}
	if n := f.hits["disk.qcow2.gz"].Load(); n != 1 {
		t.Fatalf("downloaded %d times", n)
	}
	// Resolve gives the image as a ready template.
	res, err := f.svc.Resolve("cloud")
	if err != nil || res.Fetch != nil || res.Template.Path != d.Path || res.MemoryMiB != 512 {
		t.Fatalf("Resolve = %+v, %v", res, err)
	}
}

func TestPullRefusals(t *testing.T) {
	f := newFixture(t)
	img := qcow2Bytes(t)
	f.publish("disk.qcow2", img)
	f.files["disk-bad.qcow2"] = append([]byte(nil), img...)
	f.files["disk-bad.qcow2"][100] ^= 0xff // served, but not what SHA256SUMS says
	f.files["SHA256SUMS"] = append(f.files["SHA256SUMS"], []byte(strings.Replace(string(f.files["SHA256SUMS"]), "disk.qcow2", "disk-bad.qcow2", 1))...)
	f.entry(t, "badsum", "/disk-bad.qcow2", "qcow2")
	// 200 MiB of zeros gzip to 200 KiB; the cap is 64 MiB.
	f.publish("bomb.raw.gz", gz(t, make([]byte, 200<<20)))
	f.entry(t, "bomb", "/bomb.raw.gz", "raw")
	// A qcow2 that names a host file as its backing file.
	dir := t.TempDir()
	evil := filepath.Join(dir, "evil.qcow2")
	if b, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", evil, "1M").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	evilData, _ := os.ReadFile(evil)
	f.publish("evil.qcow2", evilData)
	f.entry(t, "evil", "/evil.qcow2", "qcow2")

	for _, tt := range []struct{ name, want string }{
		{"badsum", "checksum"},
		{"bomb", "too large"},
		{"evil", "backing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op, err := f.svc.Pull(context.Background(), api.PullImageRequest{Name: tt.name})
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := f.wait(t, op.ID)
			if !strings.Contains(strings.ToLower(msg), tt.want) {
				t.Fatalf("pull error = %q, want it to mention %q", msg, tt.want)
			}
			for _, p := range leftovers(t, f.store.Dir) {
				if strings.Contains(p, tt.name) && !strings.HasSuffix(p, ".part") && !strings.HasSuffix(p, ".part.json") {
					t.Errorf("left behind: %s", p)
				}
			}
		})
	}
	// The refused images are not usable.
	if _, err := f.svc.Show(context.Background(), "evil"); err != nil {
		t.Fatal(err)
	} else if d, _ := f.svc.Show(context.Background(), "evil"); d.Present {
		t.Fatal("evil image present")
	}
}

func TestPullRequestValidation(t *testing.T) {
	f := newFixture(t)
	f.publish("disk.qcow2", qcow2Bytes(t))
	for _, tt := range []struct {
		name string
		req  api.PullImageRequest
		want error
	}{
		{"unknown catalog name", api.PullImageRequest{Name: "nope"}, ErrNotFound},
		{"bad name", api.PullImageRequest{Name: "../x"}, ErrInvalid},
		{"url without checksum", api.PullImageRequest{URL: f.srv.URL + "/disk.qcow2", Name: "x"}, ErrInvalid},
		{"file url", api.PullImageRequest{URL: "file:///etc/passwd", Name: "x", Digest: "sha256:" + strings.Repeat("0", 64)}, ErrInvalid},
		{"bad digest", api.PullImageRequest{URL: f.srv.URL + "/disk.qcow2", Name: "x", Digest: "md5:abc"}, ErrInvalid},
		{"vmdk download", api.PullImageRequest{URL: f.srv.URL + "/disk.vmdk", Name: "x", Format: "vmdk", Digest: "sha256:" + strings.Repeat("0", 64)}, ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.svc.Pull(context.Background(), tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// A URL with a digest is pulled into the local images, named from the URL.
	sum := sha256.Sum256(f.files["disk.qcow2"])
	op, err := f.svc.Pull(context.Background(), api.PullImageRequest{URL: f.srv.URL + "/disk.qcow2", Digest: "sha256:" + hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := f.wait(t, op.ID); msg != "" {
		t.Fatal(msg)
	}
	if d, err := f.svc.Show(context.Background(), "disk"); err != nil || !d.Present || d.Kind != api.ImageKindImport {
		t.Fatalf("Show(disk) = %+v, %v", d, err)
	}
}

func TestConcurrentPullsShareOneDownload(t *testing.T) {
	f := newFixture(t)
	f.publish("disk.qcow2", qcow2Bytes(t))
	f.entry(t, "cloud", "/slow/disk.qcow2", "qcow2")
	f.gate = make(chan struct{})

	op1, err := f.svc.Pull(context.Background(), api.PullImageRequest{Name: "cloud"})
	if err != nil {
		t.Fatal(err)
	}
	op2, err := f.svc.Pull(context.Background(), api.PullImageRequest{Name: "cloud"})
	if err != nil || op2.ID != op1.ID {
		t.Fatalf("second pull = %v, %v; want to join %s", op2.ID, err, op1.ID)
	}
	// A VM create that needs the image joins the same download.
	res, err := f.svc.Resolve("cloud")
	if err != nil || res.Fetch == nil || !res.Template.Pending {
		t.Fatalf("Resolve before the pull = %+v, %v", res, err)
	}
	fetched := make(chan error, 1)
	go func() { fetched <- res.Fetch(context.Background(), nil) }()
	time.Sleep(50 * time.Millisecond)
	close(f.gate)
	if msg, _ := f.wait(t, op1.ID); msg != "" {
		t.Fatal(msg)
	}
	if err := <-fetched; err != nil {
		t.Fatalf("on-demand fetch: %v", err)
	}
	if n := f.hits["disk.qcow2"].Load(); n != 1 {
		t.Fatalf("downloaded %d times, want 1", n)
	}
}

func TestDeleteAndPrune(t *testing.T) {
	f := newFixture(t)
	f.publish("disk.qcow2", qcow2Bytes(t))
	f.entry(t, "cloud", "/disk.qcow2", "qcow2")
	op, err := f.svc.Pull(context.Background(), api.PullImageRequest{Name: "cloud"})
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := f.wait(t, op.ID); msg != "" {
		t.Fatal(msg)
	}
	d, _ := f.svc.Show(context.Background(), "cloud")
	f.users[d.Path] = []string{"web2", "web1"}
	err = f.svc.Delete(context.Background(), "cloud")
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "web1, web2") {
		t.Fatalf("delete in use = %v", err)
	}
	// A stale build from an older recipe, a stray record and a partial
	// download; the stale build is still in use by a VM in a second case.
	stale := filepath.Join(f.store.Dir, "cloud-000000000000.qcow2")
	stray := filepath.Join(f.store.Dir, "gone-111111111111.qcow2.json")
	part := filepath.Join(f.store.DownloadsDir(), "x.download.part")
	for _, p := range []string{stale, stray, part} {
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.svc.Prune(context.Background(), api.PruneRequest{DryRun: true})
	if err != nil || len(res.Removed) != 3 {
		t.Fatalf("dry run = %+v, %v", res, err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatal("dry run removed a file")
	}
	f.users[stale] = []string{"old"}
	if res, err = f.svc.Prune(context.Background(), api.PruneRequest{}); err != nil || len(res.Removed) != 2 {
		t.Fatalf("prune = %+v, %v", res, err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatal("prune removed a build a VM uses")
	}
	delete(f.users, d.Path)
	if res, err = f.svc.Prune(context.Background(), api.PruneRequest{All: true}); err != nil || len(res.Removed) != 1 || res.Removed[0] != d.Path {
		t.Fatalf("prune --all = %+v, %v", res, err)
	}
	if err := f.svc.Delete(context.Background(), "cloud"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete after prune = %v", err)
	}
}

func TestResolve(t *testing.T) {
	f := newFixture(t)
	recipe := "name: tiny\nos: debian\ndefaults: {cpus: 2, memory_mib: 256, disk_gib: 3}\nboot: bios\nuser: gale\n" +
		"packages: [cloud-init]\nbuild: {suite: bookworm, kernel: linux-image-cloud-amd64, disk_gib: 2}\n"
	if err := os.WriteFile(filepath.Join(f.catalog, "tiny.yaml"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, want string }{
		{"tiny", "gale image build tiny"},
		{"nope", "unknown image"},
		{"../etc", "invalid"},
	} {
		if _, err := f.svc.Resolve(tt.name); !errors.Is(err, vm.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("Resolve(%q) = %v, want %q", tt.name, err, tt.want)
		}
	}
	// An imported image resolves with the readiness its record says.
	path := f.store.ImportedPath("legacy")
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, qcow2Bytes(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := imagestore.WriteRecord(path, imagestore.Record{Name: "legacy", Origin: imagestore.OriginImported,
		Readiness: vm.ReadyTCP, ReadyPort: 8080, Boot: "uefi", VirtualSize: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Resolve("legacy")
	if err != nil || res.Readiness.Mode != vm.ReadyTCP || res.Readiness.Port != 8080 || res.Template.Firmware != "uefi" {
		t.Fatalf("Resolve(legacy) = %+v, %v", res, err)
	}
}
