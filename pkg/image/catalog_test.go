package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCatalogOverridesAndErrors(t *testing.T) {
	system, user := t.TempDir(), t.TempDir()
	write := func(dir, file, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(system, "cloud-1.yaml", sourceYAML)
	write(system, "test-1.yaml", validYAML)
	write(system, "README.md", "not a template")
	// The user's cloud-1 replaces the system one; a broken file and a
	// misnamed one are reported, not fatal.
	write(user, "cloud-1.yaml", strings.Replace(sourceYAML, "user: ubuntu", "user: admin", 1))
	write(user, "broken.yaml", "name: broken\nos: x\n")
	write(user, "other.yaml", validYAML)
	c := Catalog{Dirs: []string{system, user, filepath.Join(t.TempDir(), "missing")}}

	entries, err := c.Entries()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "broken,cloud-1,other,test-1" {
		t.Fatalf("entries = %s", got)
	}
	if entries[0].Err == nil || !errors.Is(entries[0].Err, ErrInvalidTemplate) || !strings.Contains(entries[0].Err.Error(), "broken.yaml") {
		t.Fatalf("broken entry error = %v", entries[0].Err)
	}
	if entries[1].Template == nil || entries[1].Template.User != "admin" {
		t.Fatalf("cloud-1 not taken from the user directory: %+v", entries[1])
	}
	var ve *ValidationError
	if !errors.As(entries[2].Err, &ve) || ve.Field != "name" {
		t.Fatalf("misnamed entry error = %v", entries[2].Err)
	}

	if tmpl, err := c.Get("cloud-1"); err != nil || tmpl.User != "admin" {
		t.Fatalf("Get(cloud-1) = %v, %v", tmpl, err)
	}
	for _, name := range []string{"nope", "../etc/passwd", "a/b"} {
		if _, err := c.Get(name); !errors.Is(err, ErrUnknownTemplate) {
			t.Fatalf("Get(%q) err = %v, want ErrUnknownTemplate", name, err)
		}
	}
}

func TestShippedCatalogIsValid(t *testing.T) {
	entries, err := Catalog{Dirs: []string{"../../images"}}.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 9 {
		t.Fatalf("only %d catalog entries", len(entries))
	}
	for _, e := range entries {
		if e.Err != nil {
			t.Errorf("%s: %v", e.Name, e.Err)
		}
	}
}
