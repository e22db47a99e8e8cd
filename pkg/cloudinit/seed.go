package cloudinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// VolumeLabel is the ISO volume identifier cloud-init's NoCloud datasource
// looks for.
const VolumeLabel = "cidata"

// Names of the files in a seed.
const (
	UserDataFile      = "user-data"
	MetaDataFile      = "meta-data"
	NetworkConfigFile = "network-config"
)

// SeedFileMode is the permission of a seed ISO. user-data may hold secrets,
// so only the owner may read it; libvirt's dynamic ownership hands the file
// to the qemu user when a domain starts.
const SeedFileMode fs.FileMode = 0o600

// WriteSeed validates cfg and writes its NoCloud seed ISO to path.
//
// The ISO is built in a temporary file in path's directory and then
// published with link(2), which, unlike rename(2), fails if path exists:
// WriteSeed MUST NOT overwrite anything, and an existing path yields an
// error matching ErrExists and os.ErrExist. Readers never see a partial
// ISO. On any failure WriteSeed leaves nothing behind (no path, no
// temporary file or directory). The directory must exist.
func WriteSeed(path string, cfg Config) error {
	seed, err := cfg.Render()
	if err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("seed %s: %w", path, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath) // after a successful link only the name goes
	if err := writeISO(tmp, dir, base, seed); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("seed %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	if err := os.Link(tmpPath, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("seed %s: %w", path, ErrExists)
		}
		return fmt.Errorf("seed %s: publish: %w", path, err)
	}
	return nil
}

// writeISO writes seed as an ISO9660 image with Rock Ridge names to f,
// staging the files in a temporary directory under dir, and syncs f.
func writeISO(f *os.File, dir, base string, seed Seed) error {
	if err := f.Chmod(SeedFileMode); err != nil {
		return err
	}
	workspace, err := os.MkdirTemp(dir, "."+base+".iso-*")
	if err != nil {
		return fmt.Errorf("iso workspace: %w", err)
	}
	defer os.RemoveAll(workspace)

	iso, err := iso9660.Create(file.New(f, false), 0, 0, 0, workspace)
	if err != nil {
		return fmt.Errorf("create iso: %w", err)
	}
	for _, sf := range seed.files() {
		w, err := iso.OpenFile("/"+sf.name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("iso add %s: %w", sf.name, err)
		}
		if _, err := w.Write(sf.data); err != nil {
			_ = w.Close()
			return fmt.Errorf("iso write %s: %w", sf.name, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("iso write %s: %w", sf.name, err)
		}
	}
	if err := iso.Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: VolumeLabel}); err != nil {
		return fmt.Errorf("finalize iso: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync iso: %w", err)
	}
	return nil
}

type seedFile struct {
	name string
	data []byte
}

// files lists the files of s in ISO order.
func (s Seed) files() []seedFile {
	files := []seedFile{{UserDataFile, s.UserData}, {MetaDataFile, s.MetaData}}
	if s.NetworkConfig != nil {
		files = append(files, seedFile{NetworkConfigFile, s.NetworkConfig})
	}
	return files
}
