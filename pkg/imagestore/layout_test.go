package imagestore

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTemplatePath(t *testing.T) {
	hash := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, c := range []struct{ dir, want string }{
		{DefaultDir, "/var/lib/gale/images/debian-12-0123456789ab.qcow2"},
		{"/c", "/c/debian-12-0123456789ab.qcow2"},
	} {
		t.Run(c.dir, func(t *testing.T) {
			p := Store{Dir: c.dir}.TemplatePath("debian-12", hash)
			if p != c.want {
				t.Fatalf("TemplatePath = %q, want %q", p, c.want)
			}
			if ImageName(p) != "debian-12" {
				t.Fatalf("ImageName(%q) = %q, want debian-12", p, ImageName(p))
			}
		})
	}
}

func TestDownloadPath(t *testing.T) {
	s := Store{Dir: "/i"}
	if got, want := s.DownloadPath(s.ImportedPath("srv")), "/i/.downloads/srv.qcow2.download"; got != want {
		t.Fatalf("DownloadPath = %q, want %q", got, want)
	}
}

func TestBuildDirs(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if got, want := s.BuildLockPath("ubuntu-24.04"), filepath.Join(s.Dir, ".ubuntu-24.04.lock"); got != want {
		t.Fatalf("BuildLockPath = %q, want %q", got, want)
	}
	made, err := s.MakeBuildDir("debian-12")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(made), ".build-debian-12-") || filepath.Dir(made) != s.Dir {
		t.Fatalf("MakeBuildDir = %q, want %s/.build-debian-12-*", made, s.Dir)
	}
	// An older build's directory, and a name without a template.
	for _, d := range []string{".build-ubuntu-24.04-987654", ".build-x"} {
		if err := os.Mkdir(filepath.Join(s.Dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.BuildDirs()
	if err != nil {
		t.Fatal(err)
	}
	want := []BuildDir{{Path: made, Name: "debian-12"}, {Path: filepath.Join(s.Dir, ".build-ubuntu-24.04-987654"), Name: "ubuntu-24.04"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("BuildDirs = %+v, want %+v", got, want)
	}
}
