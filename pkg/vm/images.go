package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/image"
)

// ResolvedImage is a template ready to create VMs from, with its defaults.
type ResolvedImage struct {
	Template  Template
	CPUs      int
	MemoryMiB int
	DiskBytes int64
}

// ImageResolver turns an image name from a create request into a template.
type ImageResolver interface {
	// Resolve returns the image called name. An unknown or unbuilt image is
	// an error wrapping ErrInvalid whose text says what to do.
	Resolve(name string) (ResolvedImage, error)
}

// Catalog resolves images from template definitions (Dir/NAME.yaml) and
// their builds in CacheDir (see image.CachePath). It does not build.
type Catalog struct {
	Dir      string // template definitions, e.g. /usr/share/gale/images
	CacheDir string // built images; "" means image.DefaultCacheDir
}

// Resolve implements ImageResolver.
func (c Catalog) Resolve(name string) (ResolvedImage, error) {
	if err := hypervisor.ValidateName(name); err != nil {
		return ResolvedImage{}, fmt.Errorf("%w: image: %w", ErrInvalid, err)
	}
	file := filepath.Join(c.Dir, name+".yaml")
	t, err := image.LoadTemplate(file)
	if errors.Is(err, os.ErrNotExist) {
		return ResolvedImage{}, fmt.Errorf("%w: unknown image %q (no %s; see `gale image list`)", ErrInvalid, name, file)
	}
	if err != nil {
		return ResolvedImage{}, fmt.Errorf("%w: image %q: %w", ErrInvalid, name, err)
	}
	path := image.CachePath(c.CacheDir, t)
	if _, err := os.Stat(path); err != nil {
		return ResolvedImage{}, fmt.Errorf("%w: image %q is not built (%s missing): run `gale image build %s`", ErrInvalid, name, path, name)
	}
	return ResolvedImage{
		Template:  Template{Name: t.Name, Path: path, Format: disk.FormatQCOW2},
		CPUs:      t.Defaults.CPUs,
		MemoryMiB: t.Defaults.MemoryMiB,
		DiskBytes: int64(t.Defaults.DiskGiB) << 30,
	}, nil
}

// List returns every template in Dir, sorted by name, saying whether it is built.
func (c Catalog) List() ([]api.Image, error) {
	files, err := filepath.Glob(filepath.Join(c.Dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	out := []api.Image{}
	for _, f := range files {
		t, err := image.LoadTemplate(f)
		if err != nil {
			out = append(out, api.Image{Name: strings.TrimSuffix(filepath.Base(f), ".yaml"), Origin: "built"})
			continue
		}
		img := api.Image{Name: t.Name, OS: t.OS, Buildable: true, Origin: "built"}
		if st, err := os.Stat(image.CachePath(c.CacheDir, t)); err == nil {
			img.Present, img.Path, img.SizeBytes = true, image.CachePath(c.CacheDir, t), st.Size()
		}
		out = append(out, img)
	}
	return out, nil
}
