package imagestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/preflight"
)

// Origins of a local image.
const (
	OriginBuilt    = "built"
	OriginPulled   = "pulled"
	OriginImported = "imported"
)

// Record says where a local image came from.
type Record struct {
	Name   string `json:"name"`
	Origin string `json:"origin"`
	// Source is the URL (pulled) or what was imported: a path, "stdin".
	Source string `json:"source,omitempty"`
	// SourceFormat is the format of the source before conversion.
	SourceFormat string `json:"source_format,omitempty"`
	// SourceBytes is the size of the source as read.
	SourceBytes int64 `json:"source_bytes,omitempty"`
	// SourceSHA256 is the sha256 of the source as read.
	SourceSHA256 string `json:"source_sha256,omitempty"`
	// Verified is the digest the download was checked against ("sha512:...").
	Verified string `json:"verified,omitempty"`
	// VirtualSize is the image's virtual size in bytes.
	VirtualSize int64     `json:"virtual_size,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// OS is what pre-flight found (imported images).
	OS string `json:"os,omitempty"`
	// Boot is "bios" or "uefi".
	Boot string `json:"boot,omitempty"`
	// Readiness is one of pkg/vm's readiness modes (vm.ReadyCloudInit,
	// ...); ReadyPort goes with vm.ReadyTCP.
	Readiness string `json:"readiness,omitempty"`
	ReadyPort int    `json:"ready_port,omitempty"`
	// Preflight is the readiness report of an imported system.
	Preflight *preflight.Report `json:"preflight,omitempty"`
	// Prepared lists the changes --prepare made.
	Prepared []preflight.Change `json:"prepared,omitempty"`
}

// Store is the image directory. The zero value is not usable: set Dir.
type Store struct {
	Dir string
}

// ImportedDir holds imported images.
func (s Store) ImportedDir() string { return filepath.Join(s.Dir, "imported") }

// ImportedPath is where the imported image called name lives.
func (s Store) ImportedPath(name string) string {
	return filepath.Join(s.ImportedDir(), name+".qcow2")
}

// DownloadsDir keeps partial downloads between attempts.
func (s Store) DownloadsDir() string { return filepath.Join(s.Dir, ".downloads") }

// RecordPath is the record beside an image: the image path with ".json"
// (pulled and built) or, for imported images, <name>.json.
func RecordPath(imagePath string) string {
	if filepath.Base(filepath.Dir(imagePath)) == "imported" {
		return strings.TrimSuffix(imagePath, ".qcow2") + ".json"
	}
	return imagePath + ".json"
}

// TempDir makes a fresh work directory under Dir/.tmp. The caller removes
// it when done; CleanTemp removes what a killed process left.
func (s Store) TempDir(prefix string) (string, error) {
	base := filepath.Join(s.Dir, ".tmp")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("image work area: %w", err)
	}
	d, err := os.MkdirTemp(base, prefix+"-")
	if err != nil {
		return "", fmt.Errorf("image work area: %w", err)
	}
	return d, nil
}

// CleanTemp removes every work directory under Dir/.tmp. Call it only when
// no build, pull or import runs (galed's start-up).
func (s Store) CleanTemp() error {
	if err := os.RemoveAll(filepath.Join(s.Dir, ".tmp")); err != nil {
		return fmt.Errorf("clean image work area: %w", err)
	}
	return nil
}

// WriteRecord writes r beside imagePath, atomically (temporary file and
// rename).
func WriteRecord(imagePath string, r Record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode image record: %w", err)
	}
	dst := RecordPath(imagePath)
	f, err := os.CreateTemp(filepath.Dir(dst), ".record-*.tmp")
	if err != nil {
		return fmt.Errorf("write image record: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(data, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp, 0o644)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write image record: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write image record: %w", err)
	}
	return nil
}

// ReadRecord reads the record beside imagePath; a missing record wraps
// os.ErrNotExist.
func ReadRecord(imagePath string) (Record, error) {
	data, err := os.ReadFile(RecordPath(imagePath))
	if err != nil {
		return Record{}, fmt.Errorf("read image record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("read image record %s: %w", RecordPath(imagePath), err)
	}
	return r, nil
}

// Imported is one imported image on disk.
type Imported struct {
	Path   string
	Size   int64 // bytes on disk
	Record Record
}

// ListImported returns the imported images that are complete (image and
// record both present), sorted by name.
func (s Store) ListImported() ([]Imported, error) {
	files, err := filepath.Glob(filepath.Join(s.ImportedDir(), "*.qcow2"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Imported
	for _, f := range files {
		rec, err := ReadRecord(f)
		if err != nil {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			continue
		}
		out = append(out, Imported{Path: f, Size: Allocated(st), Record: rec})
	}
	return out, nil
}

// Publish moves a finished image from the work area to dst without ever
// replacing an existing file: it hard-links src to dst (which fails if dst
// exists, with an error matching os.ErrExist) and then removes src. The
// record, if any, must be written first, so a complete image always has one.
func Publish(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("publish image: %w", err)
	}
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("publish image: %s: %w", dst, os.ErrExist)
		}
		return fmt.Errorf("publish image: %w", err)
	}
	_ = os.Remove(src)
	return nil
}

// Remove deletes an image and its record. Missing files are not an error.
func Remove(imagePath string) error {
	for _, p := range []string{imagePath, RecordPath(imagePath)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove image: %w", err)
		}
	}
	return nil
}

// ImageFiles returns every image file in the store: the cached images
// ("<name>-<hash12>.qcow2", built or pulled) and the imported ones
// ("imported/<name>.qcow2"), each with its directory.
func (s Store) ImageFiles() []string {
	cached, _ := filepath.Glob(filepath.Join(s.Dir, "*.qcow2"))
	imported, _ := filepath.Glob(filepath.Join(s.ImportedDir(), "*.qcow2"))
	return append(cached, imported...)
}

// IsImported says whether the image file p is in the imported area.
func (s Store) IsImported(p string) bool { return filepath.Dir(p) == s.ImportedDir() }

// RecordFiles returns every record in the store, each with the image file
// it describes (which may not exist).
func (s Store) RecordFiles() map[string]string {
	out := map[string]string{}
	cached, _ := filepath.Glob(filepath.Join(s.Dir, "*.qcow2.json"))
	for _, r := range cached {
		out[r] = strings.TrimSuffix(r, ".json")
	}
	imported, _ := filepath.Glob(filepath.Join(s.ImportedDir(), "*.json"))
	for _, r := range imported {
		out[r] = strings.TrimSuffix(r, ".json") + ".qcow2"
	}
	return out
}

// PartialDownloads returns what DownloadsDir holds: downloads that have
// not finished.
func (s Store) PartialDownloads() []string {
	files, _ := filepath.Glob(filepath.Join(s.DownloadsDir(), "*"))
	return files
}

// ImageName is the image name a file in the store belongs to:
// "<name>-<hash12>.qcow2" in the cache, "imported/<name>.qcow2".
func ImageName(p string) string {
	base := strings.TrimSuffix(filepath.Base(p), ".qcow2")
	if filepath.Base(filepath.Dir(p)) == "imported" {
		return base
	}
	if i := strings.LastIndexByte(base, '-'); i > 0 {
		return base[:i]
	}
	return base
}
