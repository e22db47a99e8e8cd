package imageservice

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/galevm/gale/pkg/disk"
)

// VMImage is what the image service knows of one VM: the image it was
// created from and the image file its disk is an overlay of.
type VMImage struct {
	// VM is the VM's name.
	VM string
	// Image is the image name the VM was created from.
	Image string
	// ImagePath is the absolute path of the image file the VM's disk is
	// based on (its backing file), as recorded at create; "" for a VM
	// created before image files were recorded.
	ImagePath string
	// DiskPath is the VM's disk, read for its backing file when ImagePath
	// is "".
	DiskPath string
}

// VMRecords is the image service's view of the VMs, kept by whoever owns
// them (galed implements it over the store).
type VMRecords interface {
	// VMImages returns one entry per VM, including VMs still being
	// created or deleted.
	VMImages(ctx context.Context) ([]VMImage, error)
	// RecordImagePath records path as the image file of vm's disk. It
	// MUST NOT replace a path already recorded, and a VM that no longer
	// exists is not an error.
	RecordImagePath(ctx context.Context, vm, path string) error
}

// Users maps the path of every image file that VM disks are based on to
// the names of those VMs, sorted. It reads the VMs' records; a VM without
// a recorded image file (created before they were recorded) has its
// disk's backing file read once and recorded, so an image used by a VM,
// however old, is never mistaken for unused. It fails closed: a disk whose
// backing file cannot be read makes the answer an error, and callers then
// delete nothing. A VM whose disk does not exist yet (still being created)
// counts as a user of the image its record names. With no VMRecords
// configured no image has users.
func (s *Service) Users(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	if s.cfg.VMs == nil {
		return out, nil
	}
	vms, err := s.cfg.VMs.VMImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list VMs: %w", err)
	}
	for _, v := range vms {
		p := v.ImagePath
		if p == "" {
			if p, err = s.imagePathOf(ctx, v); err != nil {
				return nil, err
			}
		}
		if p != "" {
			p = filepath.Clean(p)
			out[p] = append(out[p], v.VM)
		}
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out, nil
}

// imagePathOf finds the image file of a VM whose record names none: the
// backing file of its disk, recorded for next time, or, while the disk
// does not exist yet, the current file of the image its record names. ""
// means the VM uses no image file.
func (s *Service) imagePathOf(ctx context.Context, v VMImage) (string, error) {
	log := s.log.WithField("vm", v.VM)
	if _, err := os.Stat(v.DiskPath); errors.Is(err, fs.ErrNotExist) {
		if res, err := s.Resolve(v.Image); err == nil {
			return res.Template.Path, nil
		}
		return "", nil
	}
	info, err := s.cfg.Disks.Info(ctx, v.DiskPath, disk.FormatQCOW2)
	if err != nil {
		return "", fmt.Errorf("backing file of vm %s: %w", v.VM, err)
	}
	if info.BackingFilename == "" {
		return "", nil
	}
	p := filepath.Clean(info.BackingFilename)
	if err := s.cfg.VMs.RecordImagePath(ctx, v.VM, p); err != nil {
		log.WithError(err).Warn("record the image file of a VM")
	} else {
		log.WithField("image", p).Info("recorded the image file of a VM created before image files were recorded")
	}
	return p, nil
}

// users returns the VMs using the image file at path, sorted.
func (s *Service) users(ctx context.Context, path string) ([]string, error) {
	m, err := s.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the VMs using %s: %w", path, err)
	}
	return append([]string(nil), m[path]...), nil
}
