package imageservice

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/galevm/gale/pkg/api"
)

// fakeVMs is a VMRecords over a list of VMs that records image paths the
// way the store does: once, never replacing one.
type fakeVMs struct {
	mu       sync.Mutex
	vms      []VMImage
	recorded int
}

func (f *fakeVMs) VMImages(context.Context) ([]VMImage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]VMImage(nil), f.vms...), nil
}

func (f *fakeVMs) RecordImagePath(_ context.Context, vm, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.vms {
		if f.vms[i].VM == vm && f.vms[i].ImagePath == "" {
			f.vms[i].ImagePath = path
			f.recorded++
		}
	}
	return nil
}

// overlay creates a qcow2 disk at path based on backing (or on nothing).
func overlay(t *testing.T, path, backing string) {
	t.Helper()
	args := []string{"create", "-q", "-f", "qcow2"}
	if backing != "" {
		args = append(args, "-F", "qcow2", "-b", backing)
	}
	args = append(args, path, "8M")
	if b, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v: %s", args, err, b)
	}
}

func TestUsers(t *testing.T) {
	f := newFixture(t)
	f.publish("disk.qcow2", qcow2Bytes(t))
	f.entry(t, "cloud", "/disk.qcow2", "qcow2")
	res, err := f.svc.Resolve("cloud")
	if err != nil {
		t.Fatal(err)
	}
	cloud := res.Template.Path // not pulled: the path it will have

	dir := t.TempDir()
	old := filepath.Join(dir, "old-build.qcow2")
	overlay(t, old, "")
	oldDisk := filepath.Join(dir, "old.qcow2")
	overlay(t, oldDisk, old)
	bare := filepath.Join(dir, "bare.qcow2")
	overlay(t, bare, "")
	garbage := filepath.Join(dir, "garbage.qcow2")
	if err := os.WriteFile(garbage, []byte("not an image"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.qcow2")

	for _, c := range []struct {
		name         string
		vms          []VMImage
		want         map[string][]string
		wantErr      bool
		wantRecorded int
	}{
		{"no VMs", nil, map[string][]string{}, false, 0},
		{"recorded paths, names sorted", []VMImage{
			{VM: "web2", Image: "cloud", ImagePath: cloud, DiskPath: missing},
			{VM: "web1", Image: "cloud", ImagePath: cloud, DiskPath: missing},
		}, map[string][]string{cloud: {"web1", "web2"}}, false, 0},
		{"unrecorded VM: backing file read and recorded", []VMImage{
			{VM: "old", Image: "cloud", DiskPath: oldDisk},
		}, map[string][]string{old: {"old"}}, false, 1},
		{"unrecorded VM still being created: the image its record names", []VMImage{
			{VM: "new", Image: "cloud", DiskPath: missing},
		}, map[string][]string{cloud: {"new"}}, false, 0},
		{"unrecorded VM whose disk has no backing file", []VMImage{
			{VM: "bare", Image: "cloud", DiskPath: bare},
		}, map[string][]string{}, false, 0},
		{"unreadable disk fails closed", []VMImage{
			{VM: "ok", Image: "cloud", ImagePath: cloud},
			{VM: "bad", Image: "cloud", DiskPath: garbage},
		}, nil, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			vms := &fakeVMs{vms: c.vms}
			f.svc.cfg.VMs = vms
			got, err := f.svc.Users(context.Background())
			if (err != nil) != c.wantErr {
				t.Fatalf("Users() error = %v, want error %v", err, c.wantErr)
			}
			if !c.wantErr && !reflect.DeepEqual(got, c.want) {
				t.Errorf("Users() = %v, want %v", got, c.want)
			}
			if vms.recorded != c.wantRecorded {
				t.Errorf("recorded %d image paths, want %d", vms.recorded, c.wantRecorded)
			}
			if c.wantRecorded > 0 {
				// The second call reads the record, not the disk.
				if err := os.Rename(oldDisk, oldDisk+".moved"); err != nil {
					t.Fatal(err)
				}
				defer os.Rename(oldDisk+".moved", oldDisk)
				again, err := f.svc.Users(context.Background())
				if err != nil || !reflect.DeepEqual(again, c.want) || vms.recorded != c.wantRecorded {
					t.Errorf("second Users() = %v, %v (recorded %d); want %v from the record", again, err, vms.recorded, c.want)
				}
			}
		})
	}
}

// TestOldBuildInUseSurvivesPrune: a VM created before image files were
// recorded keeps the older build its disk is based on from being pruned.
func TestOldBuildInUseSurvivesPrune(t *testing.T) {
	f := newFixture(t)
	f.publish("disk.qcow2", qcow2Bytes(t))
	f.entry(t, "cloud", "/disk.qcow2", "qcow2")
	stale := filepath.Join(f.store.Dir, "cloud-000000000000.qcow2")
	if err := os.MkdirAll(f.store.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	overlay(t, stale, "")
	vmDisk := filepath.Join(t.TempDir(), "disk.qcow2")
	overlay(t, vmDisk, stale)
	vms := &fakeVMs{vms: []VMImage{{VM: "old", Image: "cloud", DiskPath: vmDisk}}}
	f.svc.cfg.VMs = vms

	res, err := f.svc.Prune(context.Background(), api.PruneRequest{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("prune removed %s, which a VM's disk is based on (removed %v)", stale, res.Removed)
	}
	if vms.recorded != 1 || vms.vms[0].ImagePath != stale {
		t.Errorf("records = %+v, want the stale build recorded for vm old", vms.vms)
	}

	// An unrecorded VM whose disk cannot be read: nothing is removed.
	if err := os.WriteFile(vmDisk, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	vms.vms[0].ImagePath = ""
	if _, err := f.svc.Prune(context.Background(), api.PruneRequest{All: true}); err == nil {
		t.Errorf("Prune() with an unreadable VM disk = %v, want an error", err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatal("prune removed files although it could not tell which images are used")
	}
}
