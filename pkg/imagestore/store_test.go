package imagestore

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

func TestLayout(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	files := []string{
		"debian-12-0123456789ab.qcow2", "debian-12-0123456789ab.qcow2.json", "gone-111111111111.qcow2.json",
		"imported/srv.qcow2", "imported/srv.json", "imported/lost.json", ".downloads/x.download.part",
	}
	for _, f := range files {
		p := filepath.Join(s.Dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	at := func(f string) string { return filepath.Join(s.Dir, f) }

	t.Run("image files", func(t *testing.T) {
		got := s.ImageFiles()
		sort.Strings(got)
		want := []string{at("debian-12-0123456789ab.qcow2"), at("imported/srv.qcow2")}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ImageFiles() = %q, want %q", got, want)
		}
	})
	t.Run("records and their images", func(t *testing.T) {
		want := map[string]string{
			at("debian-12-0123456789ab.qcow2.json"): at("debian-12-0123456789ab.qcow2"),
			at("gone-111111111111.qcow2.json"):      at("gone-111111111111.qcow2"),
			at("imported/srv.json"):                 at("imported/srv.qcow2"),
			at("imported/lost.json"):                at("imported/lost.qcow2"),
		}
		if got := s.RecordFiles(); !reflect.DeepEqual(got, want) {
			t.Errorf("RecordFiles() = %q, want %q", got, want)
		}
		for r, img := range want {
			if RecordPath(img) != r {
				t.Errorf("RecordPath(%q) = %q, want %q", img, RecordPath(img), r)
			}
		}
	})
	t.Run("partial downloads", func(t *testing.T) {
		if got, want := s.PartialDownloads(), []string{at(".downloads/x.download.part")}; !reflect.DeepEqual(got, want) {
			t.Errorf("PartialDownloads() = %q, want %q", got, want)
		}
	})
	for _, c := range []struct{ path, want string }{
		{at("debian-12-0123456789ab.qcow2"), "debian-12"},
		{at("imported/srv.qcow2"), "srv"},
		{at("imported/my-server.qcow2"), "my-server"},
		{at("plain.qcow2"), "plain"},
	} {
		t.Run("image name of "+filepath.Base(c.path), func(t *testing.T) {
			if got := ImageName(c.path); got != c.want {
				t.Errorf("ImageName(%q) = %q, want %q", c.path, got, c.want)
			}
			if got := s.IsImported(c.path); got != (filepath.Base(filepath.Dir(c.path)) == "imported") {
				t.Errorf("IsImported(%q) = %v", c.path, got)
			}
		})
	}
}
