package daemon

import (
	"context"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/image/inspect"
	"github.com/galevm/gale/pkg/imageservice"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/parent"
	"github.com/galevm/gale/pkg/store"
	"github.com/galevm/gale/pkg/vm"
)

// newImages makes the image service: the catalog in the shipped and the
// user's directories, the image store, and the VM rows that say which
// image file each VM's disk is based on. It clears what a killed galed
// left in the image work area.
func newImages(cfg Config, ops *operation.Registry, disks *disk.QemuImg, engine *vm.Engine, parents *parent.Manager, st *store.Store, log *logrus.Logger) (*imageservice.Service, error) {
	maxImage, err := cfg.MaxImageBytes()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.ImageDir, 0o755); err != nil {
		return nil, fmt.Errorf("image dir: %w", err)
	}
	if cfg.ImportDir != "" {
		// Group gale may drop files here for import; nobody else may look.
		// Setgid, so what they drop stays in the group.
		if err := os.MkdirAll(cfg.ImportDir, 0o770); err != nil {
			return nil, fmt.Errorf("import dir: %w", err)
		}
		giveToGroup(cfg.ImportDir)
		if err := os.Chmod(cfg.ImportDir, 0o770|os.ModeSetgid); err != nil {
			return nil, fmt.Errorf("import dir: %w", err)
		}
	}
	svc, err := imageservice.New(imageservice.Config{
		Catalog:        image.Catalog{Dirs: []string{cfg.CatalogDir, cfg.UserCatalogDir}},
		Store:          imagestore.Store{Dir: cfg.ImageDir},
		Ops:            ops,
		Disks:          disks,
		VMs:            vmImages{store: st, engine: engine, parents: parents},
		Limits:         inspect.Limits{MaxVirtualSize: maxImage},
		MaxImageBytes:  maxImage,
		MaxUploadBytes: maxImage,
		ImportDir:      cfg.ImportDir,
		Log:            log,
	})
	if err != nil {
		return nil, err
	}
	if err := svc.CleanUp(); err != nil {
		log.WithError(err).Warn("clean image work area")
	}
	if entries, err := svc.CatalogProblems(); err == nil {
		for _, e := range entries {
			log.WithError(e).Warn("image catalog entry not usable")
		}
	}
	return svc, nil
}

// vmImages gives the image service the VM rows of the store: the image
// each VM was created from, and where its disk is.
type vmImages struct {
	store   *store.Store
	engine  *vm.Engine
	parents *parent.Manager
}

var _ imageservice.VMRecords = vmImages{}

// VMImages implements imageservice.VMRecords.
func (v vmImages) VMImages(ctx context.Context) ([]imageservice.VMImage, error) {
	rows, err := v.store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]imageservice.VMImage, len(rows))
	for i, r := range rows {
		out[i] = imageservice.VMImage{VM: r.Name, Image: r.Image, ImagePath: r.ImagePath, DiskPath: v.engine.Paths(r.Name).DiskPath}
	}
	// A saved parent's disk is an overlay of its image too.
	parents, err := v.parents.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range parents {
		out = append(out, imageservice.VMImage{VM: p.Name, Image: p.Image, ImagePath: p.ImagePath})
	}
	return out, nil
}

// RecordImagePath implements imageservice.VMRecords.
func (v vmImages) RecordImagePath(ctx context.Context, name, path string) error {
	return v.store.SetVMImagePath(ctx, name, path)
}
