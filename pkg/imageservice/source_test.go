package imageservice

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOpenSource(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: files must belong to another user")
	}
	area := t.TempDir()
	outside := t.TempDir()
	write := func(p string) string {
		t.Helper()
		if err := os.WriteFile(p, []byte("disk"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inArea := write(filepath.Join(area, "disk.raw"))
	theirs := write(filepath.Join(area, "theirs.raw"))
	hostFile := write(filepath.Join(outside, "secret"))
	if err := os.Chown(inArea, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	_ = theirs // owned by root: another user's file for uid 1000
	if err := os.Symlink("disk.raw", filepath.Join(area, "alias.raw")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostFile, filepath.Join(area, "escape.raw")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../"+filepath.Base(outside)+"/secret", filepath.Join(area, "relescape.raw")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(area, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Service{cfg: Config{ImportDir: area}}
	root, user := Caller{UID: 0, Known: true}, Caller{UID: 1000, Known: true}
	tests := []struct {
		name, path string
		who        Caller
		want       string // "" means it opens
	}{
		{"root reads any path", hostFile, root, ""},
		{"root is refused a symlink", filepath.Join(area, "alias.raw"), root, "is a symlink"},
		{"root, relative path", "disk.raw", root, "absolute"},
		{"root, unclean path", area + "/../" + filepath.Base(area) + "/disk.raw", root, "clean"},
		{"user inside the area", inArea, user, ""},
		{"user, symlink inside the area", filepath.Join(area, "alias.raw"), user, ""},
		{"user, host path", hostFile, user, "only root"},
		{"user, another user's file in the area", theirs, user, "belongs to another user"},
		{"unknown caller, host path", hostFile, Caller{}, "only root"},
		{"user, absolute symlink out of the area", filepath.Join(area, "escape.raw"), user, "out of the import area"},
		{"user, relative symlink out of the area", filepath.Join(area, "relescape.raw"), user, "out of the import area"},
		{"user, the area itself", area, user, "only root"},
		{"FIFO", filepath.Join(area, "fifo"), root, "not a regular file or block device"},
		{"directory", outside, root, "not a regular file or block device"},
		{"missing", filepath.Join(area, "nope"), user, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := s.openSource(tt.path, tt.who)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("openSource: %v", err)
				}
				f.Close()
				return
			}
			if err == nil {
				f.Close()
				t.Fatalf("opened %s, want an error containing %q", tt.path, tt.want)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

// TestStampSeesWrites: the import compares the source's stamp before its
// checks and after its last read; any write in between must show.
func TestStampSeesWrites(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(p, []byte("header"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, err := stamp(f)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := stamp(f); again != before {
		t.Fatal("stamp changed without a write")
	}
	// Same length, same bytes back: only the change time tells.
	for _, content := range []string{"HEADER", "header"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := stamp(f); after == before {
		t.Fatal("stamp did not change after the file was written")
	}
}
