package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validYAML = `name: test-1
os: debian
description: a test template
defaults:
  cpus: 1
  memory_mib: 1024
  disk_gib: 10
boot: bios
user: gale
packages: [cloud-init, openssh-server]
build:
  suite: bookworm
  kernel: linux-image-cloud-amd64
  kernel_cmdline: console=ttyS0
  disk_gib: 2
  mask_units: [apt-daily.timer]
  files:
    - path: /etc/foo.conf
      mode: "0600"
      content: "x\n"
  remove: [/etc/ssh/ssh_host_*]
`

func TestParseTemplateValid(t *testing.T) {
	tmpl, err := ParseTemplate("t.yaml", []byte(validYAML))
	if err != nil {
		t.Fatalf("ParseTemplate: %v", err)
	}
	if tmpl.Name != "test-1" || tmpl.User != "gale" || tmpl.Build.DiskGiB != 2 || len(tmpl.Packages) != 2 {
		t.Fatalf("unexpected decode: %+v", tmpl)
	}
	if got := tmpl.Build.Files[0].FileMode(); got != 0o600 {
		t.Fatalf("FileMode = %o, want 600", got)
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string // textual replacement applied to validYAML
		wantField string
	}{
		{"bad name", "name: test-1", "name: Test_1", "name"},
		{"empty os", "os: debian", "os: ''", "os"},
		{"zero cpus", "cpus: 1", "cpus: 0", "defaults.cpus"},
		{"tiny memory", "memory_mib: 1024", "memory_mib: 64", "defaults.memory_mib"},
		{"unknown firmware", "boot: bios", "boot: coreboot", "boot"},
		{"bad cpu model", "boot: bios", "boot: bios\ncpu_model: 'x y'", "cpu_model"},
		{"root user", "user: gale", "user: root", "user"},
		{"bad user", "user: gale", "user: 'Gale Smith'", "user"},
		{"no packages", "packages: [cloud-init, openssh-server]", "packages: []", "packages"},
		{"bad package", "packages: [cloud-init, openssh-server]", "packages: [cloud-init, 'open ssh']", "packages[1]"},
		{"duplicate package", "packages: [cloud-init, openssh-server]", "packages: [cloud-init, cloud-init]", "packages[1]"},
		{"no suite", "suite: bookworm", "suite: ''", "build.suite"},
		{"bad variant", "suite: bookworm", "suite: bookworm\n  variant: huge", "build.variant"},
		{"no kernel", "kernel: linux-image-cloud-amd64", "kernel: ''", "build.kernel"},
		{"cmdline root", "kernel_cmdline: console=ttyS0", "kernel_cmdline: root=/dev/sda1", "build.kernel_cmdline"},
		{"image bigger than default disk", "  disk_gib: 2", "  disk_gib: 20", "build.disk_gib"},
		{"bad mirror", "suite: bookworm", "suite: bookworm\n  mirror: ftp://example.org/debian", "build.mirror"},
		{"bad unit", "mask_units: [apt-daily.timer]", "mask_units: [apt-daily]", "build.mask_units[0]"},
		{"relative file", "path: /etc/foo.conf", "path: etc/foo.conf", "build.files[0].path"},
		{"unclean file", "path: /etc/foo.conf", "path: /etc/../foo.conf", "build.files[0].path"},
		{"bad mode", `mode: "0600"`, `mode: "rw"`, "build.files[0].mode"},
		{"relative remove", "remove: [/etc/ssh/ssh_host_*]", "remove: [etc/ssh]", "build.remove[0]"},
		{"bad checksum", "boot: bios", "boot: bios\nchecksum:\n  recipe: abc\n  sha256: def", "checksum.recipe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(validYAML, tc.old) {
				t.Fatalf("test bug: %q not in validYAML", tc.old)
			}
			doc := strings.Replace(validYAML, tc.old, tc.new, 1)
			_, err := ParseTemplate("images/t.yaml", []byte(doc))
			if err == nil {
				t.Fatal("ParseTemplate succeeded, want error")
			}
			if !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("error %v does not wrap ErrInvalidTemplate", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.wantField {
				t.Fatalf("error %v: want field %q", err, tc.wantField)
			}
			if !strings.HasPrefix(err.Error(), "images/t.yaml: "+tc.wantField+": ") {
				t.Fatalf("error %q does not name file and field", err)
			}
		})
	}
}

const sourceYAML = `name: cloud-1
os: ubuntu
defaults: {cpus: 1, memory_mib: 1024, disk_gib: 10}
boot: uefi
user: ubuntu
source:
  url: https://images.example.org/releases/cloud-1.img
  format: qcow2
  checksum:
    url: https://images.example.org/releases/SHA256SUMS
    algorithm: sha256
`

func TestSourceTemplate(t *testing.T) {
	tmpl, err := ParseTemplate("c.yaml", []byte(sourceYAML))
	if err != nil {
		t.Fatalf("ParseTemplate: %v", err)
	}
	if !tmpl.IsSource() || tmpl.Kind() != "pull" {
		t.Fatalf("IsSource/Kind = %v/%s, want true/pull", tmpl.IsSource(), tmpl.Kind())
	}
	if got := tmpl.Source.Checksum.FileName(tmpl.Source.URL); got != "cloud-1.img" {
		t.Fatalf("FileName = %q, want cloud-1.img", got)
	}
	// The description and defaults do not change what is downloaded.
	other, err := ParseTemplate("c.yaml", []byte(strings.Replace(sourceYAML, "disk_gib: 10", "disk_gib: 20", 1)+"description: bigger\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.RecipeHash() != other.RecipeHash() {
		t.Fatal("recipe hash of a source template changed with its defaults")
	}
	moved, err := ParseTemplate("c.yaml", []byte(strings.Replace(sourceYAML, "releases/cloud-1.img", "releases/cloud-2.img", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.RecipeHash() == moved.RecipeHash() {
		t.Fatal("recipe hash of a source template ignores its URL")
	}
}

func TestSourceTemplateErrors(t *testing.T) {
	tests := []struct {
		name, old, new, wantField string
	}{
		{"file url", "https://images.example.org/releases/cloud-1.img", "file:///etc/passwd", "source.url"},
		{"bad format", "format: qcow2", "format: vmdk", "source.format"},
		{"bad compression", "format: qcow2", "format: qcow2\n  compression: rar", "source.compression"},
		{"no checksum", "  checksum:\n    url: https://images.example.org/releases/SHA256SUMS\n    algorithm: sha256\n", "", "source.checksum"},
		{"md5", "algorithm: sha256", "algorithm: md5", "source.checksum.algorithm"},
		{"both checksum kinds", "algorithm: sha256", "algorithm: sha256\n    digest: sha256:" + strings.Repeat("a", 64), "source.checksum"},
		{"short digest", "    url: https://images.example.org/releases/SHA256SUMS\n    algorithm: sha256", "    digest: sha256:abc", "source.checksum.digest"},
		{"checksum file with a path", "algorithm: sha256", "algorithm: sha256\n    file: ../x", "source.checksum.file"},
		{"source and build", "boot: uefi", "boot: uefi\nbuild: {suite: bookworm}", "source"},
		{"packages on a source", "boot: uefi", "boot: uefi\npackages: [vim]", "packages"},
		{"neither", sourceYAML[strings.Index(sourceYAML, "source:"):], "", "build"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(sourceYAML, tc.old) {
				t.Fatalf("test bug: %q not in sourceYAML", tc.old)
			}
			doc := strings.Replace(sourceYAML, tc.old, tc.new, 1)
			_, err := ParseTemplate("c.yaml", []byte(doc))
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.wantField {
				t.Fatalf("err = %v, want a ValidationError for field %q", err, tc.wantField)
			}
		})
	}
}

func TestParseTemplateDecodeErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"empty", "", "empty document"},
		{"unknown field", validYAML + "colour: blue\n", "field colour not found"},
		{"wrong type", strings.Replace(validYAML, "cpus: 1", "cpus: many", 1), "cannot unmarshal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTemplate("x.yaml", []byte(tc.doc))
			if err == nil || !errors.Is(err, ErrInvalidTemplate) || !strings.Contains(err.Error(), tc.want) ||
				!strings.HasPrefix(err.Error(), "x.yaml: ") {
				t.Fatalf("err = %v, want ErrInvalidTemplate naming x.yaml and containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadTemplate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(p, []byte(validYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := LoadTemplate(p)
	if err != nil {
		t.Fatalf("LoadTemplate: %v", err)
	}
	if tmpl.File() != p {
		t.Fatalf("File() = %q, want %q", tmpl.File(), p)
	}
	_, err = LoadTemplate(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: err = %v", err)
	}
}

// TestRepoTemplates keeps the shipped templates valid.
func TestRepoTemplates(t *testing.T) {
	paths, err := filepath.Glob("../../images/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no templates found: %v", err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			tmpl, err := LoadTemplate(p)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSuffix(filepath.Base(p), ".yaml"); tmpl.Name != want {
				t.Fatalf("name %q does not match file name %q", tmpl.Name, want)
			}
		})
	}
}

func TestRecipeHash(t *testing.T) {
	hash := func(doc string) string {
		t.Helper()
		tmpl, err := ParseTemplate("", []byte(doc))
		if err != nil {
			t.Fatalf("ParseTemplate: %v", err)
		}
		return tmpl.RecipeHash()
	}
	base := hash(validYAML)
	if len(base) != 64 {
		t.Fatalf("RecipeHash length %d, want 64", len(base))
	}
	checksum := "checksum:\n  recipe: 0123456789ab\n  sha256: " + strings.Repeat("a", 64) + "\n"
	tests := []struct {
		name string
		doc  string
		same bool
	}{
		{"identical", validYAML, true},
		{"comment added", "# a comment\n" + validYAML, true},
		{"checksum added", validYAML + checksum, true},
		{"key order", strings.Replace(validYAML, "os: debian\ndescription: a test template\n", "description: a test template\nos: debian\n", 1), true},
		{"flow vs block list", strings.Replace(validYAML, "packages: [cloud-init, openssh-server]", "packages:\n  - cloud-init\n  - openssh-server", 1), true},
		{"package added", strings.Replace(validYAML, "openssh-server]", "openssh-server, sudo]", 1), false},
		{"cmdline changed", strings.Replace(validYAML, "console=ttyS0", "console=ttyS0 quiet", 1), false},
		{"file content changed", strings.Replace(validYAML, `content: "x\n"`, `content: "y\n"`, 1), false},
		{"compress toggled", strings.Replace(validYAML, "disk_gib: 2", "disk_gib: 2\n  compress: true", 1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hash(tc.doc); (got == base) != tc.same {
				t.Fatalf("hash equal = %v, want %v", got == base, tc.same)
			}
		})
	}
}
