package imageservice

import (
	"context"
	"errors"
	"fmt"

	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/vm"
)

var _ vm.ImageResolver = (*Service)(nil)

// Resolve implements vm.ImageResolver. A catalog entry wins over a local
// image of the same name (imports refuse catalog names, so this only
// matters if a user adds a catalog file later). A published image that is
// not on disk yet resolves with Fetch set: the create downloads it. A build
// recipe that is not built is an error saying which command builds it.
func (s *Service) Resolve(name string) (vm.ResolvedImage, error) {
	if err := image.ValidateName(name); err != nil {
		return vm.ResolvedImage{}, fmt.Errorf("%w: image: %w", vm.ErrInvalid, err)
	}
	t, err := s.cfg.Catalog.Get(name)
	switch {
	case err == nil:
		return s.resolveTemplate(t)
	case !errors.Is(err, image.ErrUnknownTemplate):
		return vm.ResolvedImage{}, fmt.Errorf("%w: image %q: %w", vm.ErrInvalid, name, err)
	}
	path := s.cfg.Store.ImportedPath(name)
	rec, rerr := imagestore.ReadRecord(path)
	if rerr != nil || !exists(path) {
		return vm.ResolvedImage{}, fmt.Errorf("%w: unknown image %q: not in the catalog and not imported (see `gale image list`)", vm.ErrInvalid, name)
	}
	res := vm.ResolvedImage{
		Template:  vm.Template{Name: name, Path: path, Format: disk.FormatQCOW2, Firmware: firmware(rec.Boot)},
		CPUs:      1,
		MemoryMiB: 1024,
		DiskBytes: rec.VirtualSize,
		Readiness: vm.ReadyCheck{Mode: rec.Readiness, Port: rec.ReadyPort},
	}
	return res, nil
}

func (s *Service) resolveTemplate(t *image.Template) (vm.ResolvedImage, error) {
	path := s.cfg.Store.TemplatePath(t.Name, t.RecipeHash())
	res := vm.ResolvedImage{
		Template:  vm.Template{Name: t.Name, Path: path, Format: disk.FormatQCOW2, Firmware: firmware(t.Boot), CPUModel: t.CPUModel},
		CPUs:      t.Defaults.CPUs,
		MemoryMiB: t.Defaults.MemoryMiB,
		DiskBytes: int64(t.Defaults.DiskGiB) << 30,
		Readiness: vm.ReadyCheck{Mode: vm.ReadyCloudInit},
	}
	if exists(path) {
		return res, nil
	}
	if !t.IsSource() {
		return vm.ResolvedImage{}, fmt.Errorf("%w: image %q is not built (%s missing): run `gale image build %s`", vm.ErrInvalid, t.Name, path, t.Name)
	}
	res.Template.Pending = true
	res.Fetch = func(ctx context.Context, progress func(string)) error {
		src := templateSource(s.cfg.Store, t)
		return s.shared(ctx, t.Name, src.key(), func(ctx context.Context, report func(string)) error {
			return s.download(ctx, src, report)
		}, progress)
	}
	return res, nil
}

func firmware(boot string) hypervisor.Firmware {
	if boot == "uefi" {
		return hypervisor.FirmwareUEFI
	}
	return hypervisor.FirmwareBIOS
}
