package cloudinit

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/galevm/gale/pkg/internal/testtool"
)

// readISO reads every regular file in the root of the ISO at path with
// go-diskfs and returns the volume label and the files.
func readISO(t *testing.T, path string) (string, map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	iso, err := iso9660.Read(file.New(f, true), fi.Size(), 0, 0)
	if err != nil {
		t.Fatalf("read iso: %v", err)
	}
	entries, err := iso.ReadDir(".")
	if err != nil {
		t.Fatalf("read iso root: %v", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("unexpected directory %s in seed", e.Name())
			continue
		}
		b, err := iso.ReadFile(e.Name())
		if err != nil {
			t.Fatalf("read %s from iso: %v", e.Name(), err)
		}
		files[e.Name()] = b
	}
	return iso.Label(), files
}

func wantFiles(s Seed) map[string][]byte {
	m := map[string][]byte{}
	for _, f := range s.files() {
		m[f.name] = f.data
	}
	return m
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func seedConfigs() map[string]Config {
	big := validConfig()
	big.UserData = append([]byte("#!/bin/sh\n# "), bytes.Repeat([]byte("x"), MaxUserDataBytes-13)...)
	big.UserData = append(big.UserData, '\n')
	noNet := validConfig()
	noNet.Network = nil
	empty := Config{InstanceID: "i-empty", Hostname: "bare"}
	return map[string]Config{"full": validConfig(), "max user-data": big, "no network": noNet, "defaults": empty}
}

func TestWriteSeedReadBack(t *testing.T) {
	for name, cfg := range seedConfigs() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "seed.iso")
			if err := WriteSeed(path, cfg); err != nil {
				t.Fatal(err)
			}
			want, err := cfg.Render()
			if err != nil {
				t.Fatal(err)
			}
			label, files := readISO(t, path)
			// go-diskfs pads the 32-byte identifier with NULs; blkid, which
			// cloud-init asks for the label, stops at the first NUL.
			if label = strings.TrimRight(label, "\x00 "); label != VolumeLabel {
				t.Errorf("volume label = %q, want %q", label, VolumeLabel)
			}
			if !reflectEqualFiles(files, wantFiles(want)) {
				t.Errorf("iso files differ:\n got %q\nwant %q", files, wantFiles(want))
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != SeedFileMode {
				t.Errorf("seed mode = %v, %v; want %v", fi.Mode().Perm(), err, SeedFileMode)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"seed.iso"}) {
				t.Errorf("directory holds %q, want only seed.iso", names)
			}
		})
	}
}

func reflectEqualFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// TestWriteSeedIsoinfo reads the seed back with an independent reader.
func TestWriteSeedIsoinfo(t *testing.T) {
	testtool.Need(t, "Debian: genisoimage", "isoinfo")
	for name, cfg := range seedConfigs() {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seed.iso")
			if err := WriteSeed(path, cfg); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("isoinfo", "-d", "-i", path).CombinedOutput()
			if err != nil {
				t.Fatalf("isoinfo -d: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Volume id: "+VolumeLabel+"\n") {
				t.Errorf("isoinfo -d does not show volume id %q:\n%s", VolumeLabel, out)
			}
			if !strings.Contains(string(out), "Rock Ridge signatures version") {
				t.Errorf("isoinfo -d shows no Rock Ridge:\n%s", out)
			}
			want, err := cfg.Render()
			if err != nil {
				t.Fatal(err)
			}
			list, err := exec.Command("isoinfo", "-i", path, "-R", "-f").Output()
			if err != nil {
				t.Fatalf("isoinfo -f: %v", err)
			}
			var wantList []string
			for name := range wantFiles(want) {
				wantList = append(wantList, "/"+name)
			}
			gotList := strings.Fields(string(list))
			slices.Sort(gotList)
			slices.Sort(wantList)
			if !slices.Equal(gotList, wantList) {
				t.Errorf("isoinfo -R -f = %q, want %q", gotList, wantList)
			}
			for name, data := range wantFiles(want) {
				got, err := exec.Command("isoinfo", "-i", path, "-R", "-x", "/"+name).Output()
				if err != nil {
					t.Fatalf("isoinfo -x /%s: %v", name, err)
				}
				if !bytes.Equal(got, data) {
					t.Errorf("isoinfo -x /%s:\n got %q\nwant %q", name, got, data)
				}
			}
		})
	}
}

func TestWriteSeedRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.iso")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteSeed(path, validConfig())
	if !errors.Is(err, ErrExists) || !errors.Is(err, os.ErrExist) {
		t.Fatalf("WriteSeed() = %v, want ErrExists and os.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("existing seed overwritten: %q", b)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"seed.iso"}) {
		t.Errorf("directory holds %q, want only seed.iso", names)
	}
}

// TestPublishRefusesRace covers a path that appears while the ISO is built.
func TestPublishRefusesRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.iso")
	// A dangling symlink: Lstat sees it, and link(2) must not follow it.
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), path); err != nil {
		t.Fatal(err)
	}
	if err := WriteSeed(path, validConfig()); !errors.Is(err, os.ErrExist) {
		t.Fatalf("WriteSeed() over a symlink = %v, want os.ErrExist", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteSeed followed the symlink")
	}
}

func TestWriteSeedFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		subdir  string
		wantErr error
	}{
		{name: "invalid config", cfg: Config{InstanceID: "../x", Hostname: "vm"}, wantErr: ErrInvalidConfig},
		{name: "invalid user-data", cfg: Config{InstanceID: "i", Hostname: "vm", UserData: []byte("#cloud-config\n- x\n")}, wantErr: ErrInvalidUserData},
		{name: "missing directory", cfg: validConfig(), subdir: "missing", wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.subdir, "seed.iso")
			if err := WriteSeed(path, tt.cfg); !errors.Is(err, tt.wantErr) {
				t.Fatalf("WriteSeed() = %v, want %v", err, tt.wantErr)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("directory holds %q after failure", names)
			}
		})
	}
}

func TestWriteSeedReadOnlyDirLeavesNothing(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: directory permissions do not apply")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if err := WriteSeed(filepath.Join(dir, "seed.iso"), validConfig()); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("WriteSeed() = %v, want os.ErrPermission", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q after failure", names)
	}
}

// TestWriteSeedBlkid checks the label the way cloud-init finds the seed.
func TestWriteSeedBlkid(t *testing.T) {
	testtool.Need(t, "Debian: util-linux", "blkid")
	path := filepath.Join(t.TempDir(), "seed.iso")
	if err := WriteSeed(path, validConfig()); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("blkid", "-p", "-o", "export", path).Output()
	if err != nil {
		t.Fatalf("blkid -p: %v", err)
	}
	for _, want := range []string{"LABEL=" + VolumeLabel, "TYPE=iso9660"} {
		if !slices.Contains(strings.Split(string(out), "\n"), want) {
			t.Errorf("blkid output lacks %s:\n%s", want, out)
		}
	}
}
