package imageservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/vm"
)

// List returns the catalog entries (present on disk or not), then the local
// images, sorted by name within each group. A catalog file that does not
// load is listed with its error.
func (s *Service) List(ctx context.Context) ([]api.Image, error) {
	entries, err := s.cfg.Catalog.Entries()
	if err != nil {
		return nil, err
	}
	out := []api.Image{}
	for _, e := range entries {
		out = append(out, s.catalogImage(e))
	}
	imported, err := s.cfg.Store.ListImported()
	if err != nil {
		return nil, fmt.Errorf("list imported images: %w", err)
	}
	for _, im := range imported {
		out = append(out, importedImage(im))
	}
	return out, nil
}

func (s *Service) catalogImage(e image.Entry) api.Image {
	if e.Err != nil {
		return api.Image{Name: e.Name, Kind: "invalid", Error: e.Err.Error()}
	}
	t := e.Template
	img := api.Image{Name: t.Name, Kind: t.Kind(), OS: t.OS, Description: t.Description, Buildable: !t.IsSource()}
	presentFile(&img, s.cfg.Store.TemplatePath(t.Name, t.RecipeHash()))
	if img.Present && img.Origin == "" {
		img.Origin = imagestore.OriginBuilt
		if t.IsSource() {
			img.Origin = imagestore.OriginPulled
		}
	}
	return img
}

func importedImage(im imagestore.Imported) api.Image {
	return api.Image{
		Name: im.Record.Name, Kind: api.ImageKindImport, OS: im.Record.OS, Present: true, Path: im.Path,
		SizeBytes: im.Size, Origin: im.Record.Origin, Description: "from " + im.Record.Source,
	}
}

// Show describes one image: its catalog entry or local record, and the VMs
// that use it.
func (s *Service) Show(ctx context.Context, name string) (api.ImageDetail, error) {
	if err := checkName(name); err != nil {
		return api.ImageDetail{}, err
	}
	var d api.ImageDetail
	t, err := s.cfg.Catalog.Get(name)
	switch {
	case err == nil:
		d.Image = s.catalogImage(image.Entry{Name: name, Template: t})
		d.File, d.User, d.Boot = t.File(), t.User, t.Boot
		d.CPUs, d.MemoryMiB, d.DiskBytes = t.Defaults.CPUs, t.Defaults.MemoryMiB, int64(t.Defaults.DiskGiB)<<30
		d.Readiness = vm.ReadyCloudInit
		if t.IsSource() {
			d.SourceURL = t.Source.URL
			d.Checksum = t.Source.Checksum.Digest
			if d.Checksum == "" {
				d.Checksum = t.Source.Checksum.Algorithm + " from " + t.Source.Checksum.URL
			}
		}
	case errors.Is(err, image.ErrUnknownTemplate):
		path := s.cfg.Store.ImportedPath(name)
		rec, rerr := imagestore.ReadRecord(path)
		if rerr != nil || !exists(path) {
			return api.ImageDetail{}, fmt.Errorf("%w: %q is neither in the catalog nor imported (see `gale image list`)", ErrNotFound, name)
		}
		d.Image = importedImage(imagestore.Imported{Path: path, Record: rec})
		presentFile(&d.Image, path)
		d.Boot, d.Readiness = rec.Boot, rec.Readiness
		if rec.Readiness == vm.ReadyTCP {
			d.Readiness = fmt.Sprintf("%s:%d", rec.Readiness, rec.ReadyPort)
		}
		if rec.Origin == imagestore.OriginPulled {
			d.SourceURL = rec.Source
			d.Checksum = rec.Verified
		}
	default:
		d.Image = api.Image{Name: name, Kind: "invalid", Error: err.Error()}
		d.UsedBy = []string{}
		return d, nil
	}
	if d.Present {
		if rec, err := imagestore.ReadRecord(d.Path); err == nil {
			d.VirtualSize = rec.VirtualSize
			raw, _ := json.Marshal(rec)
			_ = json.Unmarshal(raw, &d.Record)
		}
		users, err := s.users(ctx, d.Path)
		if err != nil {
			return api.ImageDetail{}, err
		}
		d.UsedBy = users
	}
	if d.UsedBy == nil {
		d.UsedBy = []string{}
	}
	return d, nil
}
