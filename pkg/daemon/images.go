package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/image/inspect"
	"github.com/galevm/gale/pkg/imageops"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/store"
	"github.com/galevm/gale/pkg/vm"
)

// newImages makes the image service: the catalog in the shipped and the
// user's directories, the image store, and a view of which VMs use which
// image file (read from each VM disk's backing file). It clears what a
// killed galed left in the image work area.
func newImages(cfg Config, ops *operation.Registry, disks *disk.QemuImg, engine *vm.Engine, st *store.Store, log *logrus.Logger) (*imageops.Service, error) {
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
	var svc *imageops.Service
	// users fails closed: a VM whose disk cannot be read makes the answer
	// an error (delete and prune then refuse), and a VM whose disk does not
	// exist yet (still being created) uses the image its row names.
	users := func(ctx context.Context) (map[string][]string, error) {
		vms, err := st.ListVMs(ctx)
		if err != nil {
			return nil, err
		}
		out := map[string][]string{}
		for _, v := range vms {
			diskPath := engine.Paths(v.Name).DiskPath
			if _, err := os.Stat(diskPath); os.IsNotExist(err) {
				if res, err := svc.Resolve(v.Image); err == nil {
					out[res.Template.Path] = append(out[res.Template.Path], v.Name)
				}
				continue
			}
			info, err := disks.Info(ctx, diskPath, disk.FormatQCOW2)
			if err != nil {
				return nil, fmt.Errorf("backing file of vm %s: %w", v.Name, err)
			}
			if info.BackingFilename == "" {
				continue
			}
			p := filepath.Clean(info.BackingFilename)
			out[p] = append(out[p], v.Name)
		}
		return out, nil
	}
	svc, err = imageops.New(imageops.Config{
		Catalog:        image.Catalog{Dirs: []string{cfg.CatalogDir, cfg.UserCatalogDir}},
		Store:          imagestore.Store{Dir: cfg.ImageDir},
		Ops:            ops,
		Disks:          disks,
		Users:          users,
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
