package preflight

import (
	"context"
	"strings"
)

// guest is the inspected system's file tree: its root filesystem and,
// when /boot is a separate ext partition, that one mounted at /boot.
type guest struct {
	root *extFS
	boot *extFS // nil when /boot is on the root filesystem
}

// locate maps a guest path to the filesystem holding it and the path
// inside that filesystem.
func (g *guest) locate(p string) (*extFS, string) {
	if g.boot != nil && (p == "/boot" || strings.HasPrefix(p, "/boot/")) {
		rest := strings.TrimPrefix(p, "/boot")
		if rest == "" {
			rest = "/"
		}
		return g.boot, rest
	}
	return g.root, p
}

func (g *guest) readFile(ctx context.Context, p string, limit int64) ([]byte, error) {
	fs, q := g.locate(p)
	return fs.readFile(ctx, q, limit)
}

func (g *guest) exists(ctx context.Context, p string) (bool, error) {
	fs, q := g.locate(p)
	return fs.exists(ctx, q)
}

func (g *guest) list(ctx context.Context, dir string) ([]dirEntry, error) {
	fs, q := g.locate(dir)
	return fs.list(ctx, q)
}

func (g *guest) dump(ctx context.Context, p, dst string, limit int64) error {
	fs, q := g.locate(p)
	return fs.dump(ctx, q, dst, limit)
}

func (g *guest) writeFile(ctx context.Context, p string, data []byte) error {
	fs, q := g.locate(p)
	return fs.writeFile(ctx, q, data)
}

// bootNames reports whether a directory listing looks like /boot: kernels,
// initramfs images or bootloader directories.
func bootNames(entries []dirEntry) bool {
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name, "vmlinuz"),
			strings.HasPrefix(e.Name, "initrd"),
			strings.HasPrefix(e.Name, "initramfs-"),
			e.IsDir() && (e.Name == "grub" || e.Name == "grub2" || e.Name == "extlinux" || e.Name == "syslinux" || e.Name == "loader"):
			return true
		}
	}
	return false
}
