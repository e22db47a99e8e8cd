package imageservice

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/operation"
)

// Delete removes the local file of an image: a pulled or built catalog
// image (the catalog entry stays, so it can be pulled or built again) or
// an imported image. It is refused, naming them, while VMs use the image,
// and while another operation runs on it.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	var path string
	t, err := s.cfg.Catalog.Get(name)
	switch {
	case err == nil:
		path = s.cfg.Store.TemplatePath(t.Name, t.RecipeHash())
	case errors.Is(err, image.ErrUnknownTemplate):
		path = s.cfg.Store.ImportedPath(name)
	default:
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	_, err = s.cfg.Ops.Do(ctx, operation.KindDelete, target(name), func(ctx context.Context, _ *operation.Op) error {
		if !exists(path) {
			return fmt.Errorf("%w: %q has no local image to delete", ErrNotFound, name)
		}
		users, err := s.users(ctx, path)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("%w: %q is the base of VM disks: %s (delete those VMs first)", ErrInUse, name, strings.Join(users, ", "))
		}
		return imagestore.Remove(path)
	})
	return err
}

// Prune removes what no VM needs: images built from older recipes, partial
// downloads, leftovers of interrupted work and stray records; with All, also
// every current image no VM uses. Files that VMs' disks are based on are
// never removed. Images with an operation running are skipped.
func (s *Service) Prune(ctx context.Context, req api.PruneRequest) (api.PruneResult, error) {
	res := api.PruneResult{Removed: []string{}}
	inUse := map[string]bool{}
	m, err := s.Users(ctx)
	if err != nil {
		return res, fmt.Errorf("find the VMs using images: %w", err)
	}
	for p := range m {
		inUse[p] = true
	}
	current := map[string]string{} // path -> image name
	entries, err := s.cfg.Catalog.Entries()
	if err != nil {
		return res, err
	}
	// Images of a catalog entry that does not load right now (a typo in
	// a user file) are left alone: fixing the file makes them current again.
	var unreadable []string
	for _, e := range entries {
		if e.Template != nil {
			current[s.cfg.Store.TemplatePath(e.Template.Name, e.Template.RecipeHash())] = e.Name
		} else {
			unreadable = append(unreadable, e.Name+"-")
		}
	}
	imported, err := s.cfg.Store.ListImported()
	if err != nil {
		return res, err
	}
	for _, im := range imported {
		current[im.Path] = im.Record.Name
	}

	var candidates []string
	busy := func(p string) bool { return s.cfg.Ops.Active(target(imagestore.ImageName(p))) != "" }
	for _, p := range s.cfg.Store.ImageFiles() {
		_, isCurrent := current[p]
		imported := s.cfg.Store.IsImported(p)
		switch {
		case inUse[p], busy(p), hasPrefix(filepath.Base(p), unreadable):
		case !isCurrent && imported && !req.All:
			// An imported image whose record is missing cannot be made
			// again: only --all removes it.
		case !isCurrent, req.All:
			candidates = append(candidates, p)
		}
	}
	// Records without an image, and partial downloads of images no pull is
	// fetching right now.
	for r, img := range s.cfg.Store.RecordFiles() {
		if _, err := os.Stat(img); errors.Is(err, os.ErrNotExist) && !busy(img) {
			candidates = append(candidates, r)
		}
	}
	downloads := s.cfg.Store.PartialDownloads()
	s.mu.Lock()
	pulling := len(s.flights) > 0
	s.mu.Unlock()
	if !pulling {
		candidates = append(candidates, downloads...)
	}
	sort.Strings(candidates)
	for _, p := range candidates {
		st, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if !req.DryRun {
			if strings.HasSuffix(p, ".qcow2") {
				err = imagestore.Remove(p)
			} else {
				err = os.Remove(p)
			}
			if err != nil {
				return res, fmt.Errorf("prune %s: %w", p, err)
			}
		}
		res.Removed = append(res.Removed, p)
		res.FreedBytes += imagestore.Allocated(st)
	}
	return res, nil
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
