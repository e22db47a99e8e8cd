// Package image loads gale's VM template definitions (images/*.yaml), finds
// them in the catalog and validates image names. Building a recipe is
// pkg/image/builder's job; where images live is pkg/imagestore's.
//
// A template is one of two kinds:
//   - a build recipe (the `build:` section): a Debian suite, a package list,
//     a kernel, a kernel command line and a few files and unit settings that
//     trim the boot. builder.Build turns it into a qcow2 in the image store;
//   - a published cloud image (the `source:` section): a URL, how to verify
//     it (a checksum file or a pinned digest) and its compression. gale
//     downloads it (see pkg/fetch) into the same store.
//
// Either way the image file is named after the template and its RecipeHash
// (imagestore.Store.TemplatePath), so an unchanged recipe is built or
// downloaded once and a changed one (or a changed builder) anew.
package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// BuilderVersion is mixed into every RecipeHash. Bump it whenever a change to
// the builder changes what it produces from the same YAML, so cached images
// made by the old builder are not reused.
const BuilderVersion = "1"

// ErrInvalidTemplate is wrapped by every validation error returned by
// LoadTemplate and ParseTemplate; match it with errors.Is.
var ErrInvalidTemplate = errors.New("invalid template")

// ValidationError names the template file and the field that failed
// validation. It unwraps to ErrInvalidTemplate.
type ValidationError struct {
	File  string // path the template was read from ("" when parsed from bytes)
	Field string // dotted field path, e.g. "build.suite" or "packages[3]"
	Msg   string
}

func (e *ValidationError) Error() string {
	file := e.File
	if file == "" {
		file = "<template>"
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", file, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", file, e.Field, e.Msg)
}

// Unwrap lets errors.Is(err, ErrInvalidTemplate) match.
func (e *ValidationError) Unwrap() error { return ErrInvalidTemplate }

// Template is one VM template definition.
type Template struct {
	// Name identifies the template in the catalog and names the cached image.
	Name string `yaml:"name"`
	// OS is the distribution family, e.g. "debian".
	OS string `yaml:"os"`
	// Description is a one-line human description.
	Description string `yaml:"description"`
	// Defaults are the VM resources used when a create request omits them.
	Defaults Defaults `yaml:"defaults"`
	// Boot is the firmware the image boots with: "bios" (the default) or
	// "uefi" (needs OVMF on the host).
	Boot string `yaml:"boot"`
	// CPUModel, if set, is the guest CPU model when no hardware acceleration
	// is available (TCG), e.g. "Nehalem" for distributions built for
	// x86-64-v2 (RHEL 9 and its rebuilds), which do not boot on qemu64.
	CPUModel string `yaml:"cpu_model"`
	// User is the default login user that cloud-init creates; ssh keys given
	// at create time are installed for it.
	User string `yaml:"user"`
	// Packages are installed into the image in addition to Build.Kernel
	// (build templates only).
	Packages []string `yaml:"packages"`
	// Build says how to produce the image. Exactly one of Build and Source
	// is set.
	Build BuildSpec `yaml:"build"`
	// Source says where to download the image from.
	Source *SourceSpec `yaml:"source"`
	// Checksum records the image last built from this recipe. It is
	// informational: builds are not bit-reproducible (timestamps, UUIDs,
	// package updates on the mirror), so a rebuild may produce a different
	// sha256. It is excluded from RecipeHash.
	Checksum *Checksum `yaml:"checksum,omitempty"`

	file string // where the template was loaded from
	raw  []byte // the YAML bytes, for RecipeHash
}

// Defaults are per-template default VM resources.
type Defaults struct {
	CPUs      int `yaml:"cpus"`
	MemoryMiB int `yaml:"memory_mib"`
	DiskGiB   int `yaml:"disk_gib"`
}

// BuildSpec is the build recipe of a template.
type BuildSpec struct {
	// Suite is the Debian suite, e.g. "bookworm".
	Suite string `yaml:"suite"`
	// Components are the archive components; default [main].
	Components []string `yaml:"components"`
	// Mirror is the Debian mirror URL. Empty means: use the mirror configured
	// in the host's apt sources (see builder.HostMirror). The environment
	// variable GALE_IMAGE_MIRROR overrides both.
	Mirror string `yaml:"mirror"`
	// Variant is the mmdebstrap variant; default "minbase".
	Variant string `yaml:"variant"`
	// Kernel is the kernel package, e.g. "linux-image-cloud-amd64".
	Kernel string `yaml:"kernel"`
	// KernelCmdline is appended after "root=UUID=<uuid> ro".
	KernelCmdline string `yaml:"kernel_cmdline"`
	// DiskGiB is the virtual size of the built image. VMs grow it on create.
	DiskGiB int `yaml:"disk_gib"`
	// Compress writes a zlib-compressed qcow2 (smaller, slower to read).
	Compress bool `yaml:"compress"`
	// EnableUnits are enabled with systemctl in the image.
	EnableUnits []string `yaml:"enable_units"`
	// MaskUnits are masked (linked to /dev/null) in the image.
	MaskUnits []string `yaml:"mask_units"`
	// DpkgOptions are dpkg configuration lines (e.g.
	// "path-exclude=/usr/share/doc/*") applied from the first package on,
	// including the essential set, and kept in the image's dpkg.cfg.d.
	DpkgOptions []string `yaml:"dpkg_options"`
	// Files are written into the root filesystem before packages are
	// installed, so package scripts (dpkg path filters, initramfs) see them.
	Files []File `yaml:"files"`
	// Remove are paths deleted from the root filesystem after installation
	// (e.g. ssh host keys generated by package scripts). Glob patterns allowed.
	Remove []string `yaml:"remove"`
}

// SourceSpec is a published image to download.
type SourceSpec struct {
	// URL is the image's http(s) URL.
	URL string `yaml:"url"`
	// Format is the image format once decompressed: "qcow2" or "raw".
	Format string `yaml:"format"`
	// Compression is how the download is compressed: "none", "gz", "xz" or
	// "zst". Empty means: guessed from the URL's suffix.
	Compression string `yaml:"compression"`
	// Checksum says how the download is verified. Required.
	Checksum SourceChecksum `yaml:"checksum"`
}

// SourceChecksum verifies a download: either a checksum file published next
// to the image (URL and Algorithm, optionally File), or a pinned Digest.
type SourceChecksum struct {
	// URL is a checksum file (SHA256SUMS, SHA512SUMS, CHECKSUM, *.sha512).
	URL string `yaml:"url"`
	// Algorithm is "sha256" or "sha512".
	Algorithm string `yaml:"algorithm"`
	// File is the name the checksum file lists the image under; default the
	// last element of the image URL's path.
	File string `yaml:"file"`
	// Digest pins the image: "sha256:<hex>" or "sha512:<hex>".
	Digest string `yaml:"digest"`
}

// FileName is the name the checksum file lists the image under.
func (c SourceChecksum) FileName(imageURL string) string {
	if c.File != "" {
		return c.File
	}
	if u, err := url.Parse(imageURL); err == nil {
		return path.Base(u.Path)
	}
	return path.Base(imageURL)
}

// IsSource reports whether the template is a published image to download
// rather than a recipe to build.
func (t *Template) IsSource() bool { return t.Source != nil }

// Kind is "pull" for a published image and "build" for a recipe.
func (t *Template) Kind() string {
	if t.IsSource() {
		return "pull"
	}
	return "build"
}

// File is a file written into the image.
type File struct {
	Path    string `yaml:"path"`
	Mode    string `yaml:"mode"` // octal, e.g. "0644"; default "0644"
	Content string `yaml:"content"`
}

// Checksum records the result of a build of this recipe.
type Checksum struct {
	// Recipe is the 12-hex-digit RecipeHash prefix the image was built from.
	Recipe string `yaml:"recipe"`
	// SHA256 is the hex sha256 of the produced qcow2 file.
	SHA256 string `yaml:"sha256"`
}

// FileMode returns the file's mode, defaulting to 0644. Valid only after
// validation.
func (f File) FileMode() os.FileMode {
	if f.Mode == "" {
		return 0o644
	}
	m, _ := strconv.ParseUint(f.Mode, 8, 32)
	return os.FileMode(m)
}

// File returns the path the template was loaded from ("" if parsed from bytes).
func (t *Template) File() string { return t.file }

// LoadTemplate reads and validates the template at path. Errors name the file
// and, for validation failures, the field; validation errors wrap
// ErrInvalidTemplate.
func LoadTemplate(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load template: %w", err)
	}
	return ParseTemplate(path, data)
}

// ParseTemplate decodes and validates template YAML. file is used only in
// error messages and may be empty. Unknown fields are rejected.
func ParseTemplate(file string, data []byte) (*Template, error) {
	var t Template
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ValidationError{File: file, Msg: "empty document"}
		}
		return nil, &ValidationError{File: file, Msg: "decode YAML: " + err.Error()}
	}
	t.file = file
	t.raw = append([]byte(nil), data...)
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)
	userRE     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	debPkgRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	suiteRE    = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	unitRE     = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|target|path|mount)$`)
	hexRE      = regexp.MustCompile(`^[0-9a-f]+$`)
	modeRE     = regexp.MustCompile(`^0?[0-7]{3,4}$`)
	variantRE  = regexp.MustCompile(`^(extract|custom|essential|apt|required|minbase|buildd|important|debootstrap|standard)$`)
	cmdlineRE  = regexp.MustCompile(`^[\x21-\x7e ]*$`)
	cpuModelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Validate checks every field and returns the first problem as a
// *ValidationError. It fills no defaults.
func (t *Template) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ValidationError{File: t.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case !nameRE.MatchString(t.Name):
		return bad("name", "%q must be lower-case letters, digits, '.' or '-' (max 63)", t.Name)
	case strings.TrimSpace(t.OS) == "":
		return bad("os", "must not be empty")
	case t.Defaults.CPUs < 1 || t.Defaults.CPUs > 64:
		return bad("defaults.cpus", "%d out of range 1..64", t.Defaults.CPUs)
	case t.Defaults.MemoryMiB < 128:
		return bad("defaults.memory_mib", "%d is below 128", t.Defaults.MemoryMiB)
	case t.Defaults.DiskGiB < 1:
		return bad("defaults.disk_gib", "%d is below 1", t.Defaults.DiskGiB)
	case t.Boot != "bios" && t.Boot != "uefi":
		return bad("boot", "%q unsupported (want \"bios\" or \"uefi\")", t.Boot)
	case t.CPUModel != "" && !cpuModelRE.MatchString(t.CPUModel):
		return bad("cpu_model", "%q is not a CPU model name", t.CPUModel)
	case !userRE.MatchString(t.User) || t.User == "root":
		return bad("user", "%q is not a valid non-root login name", t.User)
	}
	hasBuild := !reflect.DeepEqual(t.Build, BuildSpec{})
	switch {
	case t.Source != nil && hasBuild:
		return bad("source", "a template has either source or build, not both")
	case t.Source != nil && len(t.Packages) > 0:
		return bad("packages", "only build templates install packages")
	case t.Source != nil:
		return t.validateSource(bad)
	case !hasBuild:
		return bad("build", "a template needs a build or a source section")
	case len(t.Packages) == 0:
		return bad("packages", "must list at least one package")
	}
	seen := map[string]bool{}
	for i, p := range t.Packages {
		if !debPkgRE.MatchString(p) {
			return bad(fmt.Sprintf("packages[%d]", i), "%q is not a Debian package name", p)
		}
		if seen[p] {
			return bad(fmt.Sprintf("packages[%d]", i), "%q listed twice", p)
		}
		seen[p] = true
	}
	b := &t.Build
	switch {
	case !suiteRE.MatchString(b.Suite):
		return bad("build.suite", "%q is not a suite name", b.Suite)
	case b.Variant != "" && !variantRE.MatchString(b.Variant):
		return bad("build.variant", "%q is not an mmdebstrap variant", b.Variant)
	case !debPkgRE.MatchString(b.Kernel):
		return bad("build.kernel", "%q is not a Debian package name", b.Kernel)
	case !cmdlineRE.MatchString(b.KernelCmdline) || strings.Contains(b.KernelCmdline, "root="):
		return bad("build.kernel_cmdline", "must be printable ASCII on one line and must not set root= (the builder does)")
	case b.DiskGiB < 1:
		return bad("build.disk_gib", "%d is below 1", b.DiskGiB)
	case b.DiskGiB > t.Defaults.DiskGiB:
		return bad("build.disk_gib", "%d exceeds defaults.disk_gib %d (VM disks only grow)", b.DiskGiB, t.Defaults.DiskGiB)
	}
	if b.Mirror != "" {
		if err := CheckMirrorURL(b.Mirror); err != nil {
			return bad("build.mirror", "%v", err)
		}
	}
	for i, c := range b.Components {
		if !suiteRE.MatchString(c) {
			return bad(fmt.Sprintf("build.components[%d]", i), "%q is not a component name", c)
		}
	}
	for i, u := range b.EnableUnits {
		if !unitRE.MatchString(u) {
			return bad(fmt.Sprintf("build.enable_units[%d]", i), "%q is not a unit name with a type suffix", u)
		}
	}
	for i, u := range b.MaskUnits {
		if !unitRE.MatchString(u) {
			return bad(fmt.Sprintf("build.mask_units[%d]", i), "%q is not a unit name with a type suffix", u)
		}
	}
	for i, o := range b.DpkgOptions {
		if strings.TrimSpace(o) == "" || strings.ContainsAny(o, "\n\r") {
			return bad(fmt.Sprintf("build.dpkg_options[%d]", i), "%q must be one non-empty line", o)
		}
	}
	files := map[string]bool{}
	for i, f := range b.Files {
		field := fmt.Sprintf("build.files[%d]", i)
		if err := checkImagePath(f.Path); err != nil {
			return bad(field+".path", "%v", err)
		}
		if files[f.Path] {
			return bad(field+".path", "%q listed twice", f.Path)
		}
		files[f.Path] = true
		if f.Mode != "" && !modeRE.MatchString(f.Mode) {
			return bad(field+".mode", "%q is not an octal mode like \"0644\"", f.Mode)
		}
	}
	for i, r := range b.Remove {
		field := fmt.Sprintf("build.remove[%d]", i)
		if err := checkImagePath(r); err != nil {
			return bad(field, "%v", err)
		}
		if _, err := path.Match(r, ""); err != nil {
			return bad(field, "bad glob: %v", err)
		}
	}
	if c := t.Checksum; c != nil {
		if len(c.Recipe) != 12 || !hexRE.MatchString(c.Recipe) {
			return bad("checksum.recipe", "%q is not 12 lower-case hex digits", c.Recipe)
		}
		if len(c.SHA256) != 64 || !hexRE.MatchString(c.SHA256) {
			return bad("checksum.sha256", "%q is not 64 lower-case hex digits", c.SHA256)
		}
	}
	return nil
}

// validateSource checks the source section of a download template.
func (t *Template) validateSource(bad func(field, format string, args ...any) error) error {
	src := t.Source
	if err := checkHTTPURL(src.URL); err != nil {
		return bad("source.url", "%v", err)
	}
	if src.Format != "qcow2" && src.Format != "raw" {
		return bad("source.format", "%q unsupported (want \"qcow2\" or \"raw\")", src.Format)
	}
	switch src.Compression {
	case "", "none", "gz", "xz", "zst":
	default:
		return bad("source.compression", "%q unsupported (want none, gz, xz or zst)", src.Compression)
	}
	c := src.Checksum
	switch {
	case c.URL == "" && c.Digest == "":
		return bad("source.checksum", "needs a checksum file (url and algorithm) or a pinned digest; gale never uses an unverified download")
	case c.URL != "" && c.Digest != "":
		return bad("source.checksum", "set either url or digest, not both")
	case c.Digest != "":
		algo, hexDigest, ok := strings.Cut(c.Digest, ":")
		want := map[string]int{"sha256": 64, "sha512": 128}[algo]
		if !ok || want == 0 || len(hexDigest) != want || !hexRE.MatchString(hexDigest) {
			return bad("source.checksum.digest", "%q is not \"sha256:<64 hex>\" or \"sha512:<128 hex>\"", c.Digest)
		}
	default:
		if err := checkHTTPURL(c.URL); err != nil {
			return bad("source.checksum.url", "%v", err)
		}
		if c.Algorithm != "sha256" && c.Algorithm != "sha512" {
			return bad("source.checksum.algorithm", "%q unsupported (want sha256 or sha512)", c.Algorithm)
		}
		if c.File != "" && (strings.ContainsAny(c.File, "/\x00\n") || c.File == "." || c.File == "..") {
			return bad("source.checksum.file", "%q must be a plain file name", c.File)
		}
	}
	return nil
}

// checkImagePath accepts absolute, clean paths below / other than / itself.
func checkImagePath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is not absolute", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not clean (want %q)", p, path.Clean(p))
	case p == "/":
		return fmt.Errorf("%q is the root directory", p)
	}
	return nil
}

// CheckMirrorURL accepts what build.mirror accepts: an http(s) URL with a
// host.
func CheckMirrorURL(s string) error { return checkHTTPURL(s) }

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// RecipeHash returns the hex sha256 identifying what builder.Build produces from this
// template: it covers BuilderVersion and the template's content, but not the
// checksum field (which records a build's result), YAML comments, key order
// or formatting. Two templates with equal RecipeHash build equivalent images.
func (t *Template) RecipeHash() string {
	var doc any
	// raw was decoded successfully in ParseTemplate, so this cannot fail; a
	// Template built in code (no raw) hashes its marshalled form instead.
	raw := t.raw
	if raw == nil {
		raw, _ = yaml.Marshal(t)
	}
	_ = yaml.Unmarshal(raw, &doc)
	if m, ok := doc.(map[string]any); ok {
		delete(m, "checksum")
		if src, ok := m["source"]; ok && t.Source != nil {
			// A download is the same file whatever the description or
			// defaults say: hash only where it comes from and how it is
			// verified.
			doc = map[string]any{"source": src}
		}
	}
	canon, err := json.Marshal(doc) // encoding/json sorts map keys
	if err != nil {
		canon = raw // non-string keys: fall back to the exact bytes
	}
	h := sha256.New()
	fmt.Fprintf(h, "gale-image-builder/%s\n", BuilderVersion)
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil))
}
