package preflight

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// maxInitramfs bounds the size of an initramfs copied out of the image.
const maxInitramfs = 1 << 30

// safeNameRE matches directory entry names (kernel versions, BLS entries)
// that are used in debugfs requests and guest shell commands.
var safeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]*$`)

// inspection is everything Inspect learnt about an image; report turns it
// into findings.
type inspection struct {
	rawPath string
	layout  *layout
	root    *partition // nil when no root filesystem was found
	guest   *guest     // nil when the root filesystem could not be read
	bootFS  *partition // a separate /boot that is not ext, or nil
	// bootMissing is set when fstab mounts /boot from a filesystem that
	// was not found in the image.
	bootMissing string

	osRelease     map[string]string
	kernels       []kernel
	configs       []configFile
	cloudInit     bool
	guestAgent    bool
	initramfsTool string // "initramfs-tools", "dracut" or ""

	// problems are files that could not be read, for the root-filesystem
	// finding.
	problems []string
}

// kernel is one installed kernel.
type kernel struct {
	Version   string
	Builtin   map[string]bool // modules built into the kernel (modules.builtin)
	Initramfs string          // guest path, "" when none was found
	Contents  *initramfs      // nil when there is no initramfs or it could not be read
	Err       error           // why Contents is nil though Initramfs is set
}

// Inspect reads the raw disk image at rawPath and reports whether it is
// ready to boot as a gale VM. The image is only read, never mounted. The
// error is for an image that cannot be opened or read, a context that
// ends, or missing host tools (debugfs, prlimit); whatever is wrong inside
// the image is reported as findings.
func Inspect(ctx context.Context, rawPath string) (*Report, error) {
	in, err := inspect(ctx, rawPath)
	if err != nil {
		return nil, err
	}
	return in.report(), nil
}

// inspect collects what the checks need.
func inspect(ctx context.Context, rawPath string) (*inspection, error) {
	abs, err := filepath.Abs(rawPath)
	if err != nil {
		return nil, fmt.Errorf("image path: %w", err)
	}
	if strings.ContainsAny(abs, "?\"") {
		return nil, fmt.Errorf("image path %q: contains ? or \", which debugfs cannot address", abs)
	}
	l, err := readLayout(abs)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", abs, err)
	}
	in := &inspection{rawPath: abs, layout: l}
	if err := in.findRoot(ctx); err != nil {
		return nil, err
	}
	if in.guest == nil {
		return in, nil
	}
	if err := in.findBoot(ctx); err != nil {
		return nil, err
	}
	if err := in.collect(ctx); err != nil {
		return nil, err
	}
	return in, nil
}

// soft records err as a problem with what and returns nil, unless err is
// fatal for the whole inspection (a missing tool, the context ending).
func (in *inspection) soft(ctx context.Context, what string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if errors.Is(err, errToolMissing) || ctx.Err() != nil {
		return err
	}
	in.problems = append(in.problems, what+": "+err.Error())
	return nil
}

// openExt returns the ext filesystem of partition p.
func (in *inspection) openExt(p *partition) (*extFS, error) {
	f, err := os.Open(in.rawPath)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	defer func() { _ = f.Close() }()
	s, err := readExtSuper(f, p.Start)
	if err != nil {
		return nil, err
	}
	return &extFS{image: in.rawPath, offset: p.Start, part: p.Index, kind: p.FS, super: s}, nil
}

// findRoot picks the root filesystem: the first ext filesystem with an
// os-release (else the first with an fstab); failing that, the largest
// partition of a type that could hold a root preflight cannot read.
func (in *inspection) findRoot(ctx context.Context) error {
	var withFstab *partition
	var withFstabFS *extFS
	for i := range in.layout.Parts {
		p := &in.layout.Parts[i]
		if !isExt(p.FS) {
			continue
		}
		e, err := in.openExt(p)
		if err != nil {
			in.problems = append(in.problems, fmt.Sprintf("partition %d: %v", p.Index, err))
			continue
		}
		for _, name := range []string{"/etc/os-release", "/usr/lib/os-release"} {
			ok, err := e.exists(ctx, name)
			if err := in.soft(ctx, fmt.Sprintf("partition %d %s", p.Index, name), err); err != nil {
				return err
			}
			if ok {
				in.root, in.guest = p, &guest{root: e}
				return nil
			}
		}
		if withFstab == nil {
			ok, err := e.exists(ctx, fstabPath)
			if err := in.soft(ctx, fmt.Sprintf("partition %d %s", p.Index, fstabPath), err); err != nil {
				return err
			}
			if ok {
				withFstab, withFstabFS = p, e
			}
		}
	}
	if withFstab != nil {
		in.root, in.guest = withFstab, &guest{root: withFstabFS}
		return nil
	}
	for i := range in.layout.Parts {
		p := &in.layout.Parts[i]
		if canHoldRoot(p.FS) && (in.root == nil || p.Size > in.root.Size) {
			in.root = p
		}
	}
	return nil
}

// findBoot finds a separate /boot: when the root's /boot holds no kernel
// or bootloader, another ext partition whose top level does becomes
// /boot. A /boot on another filesystem type is noted, not read.
func (in *inspection) findBoot(ctx context.Context) error {
	entries, err := in.guest.root.list(ctx, "/boot")
	if err := in.soft(ctx, "/boot", err); err != nil {
		return err
	}
	if bootNames(entries) {
		return nil
	}
	for i := range in.layout.Parts {
		p := &in.layout.Parts[i]
		if p == in.root || !isExt(p.FS) {
			continue
		}
		e, err := in.openExt(p)
		if err != nil {
			continue
		}
		top, err := e.list(ctx, "/")
		if err := in.soft(ctx, fmt.Sprintf("partition %d /", p.Index), err); err != nil {
			return err
		}
		if bootNames(top) {
			in.guest.boot = e
			return nil
		}
	}
	fstab, err := in.guest.root.readFile(ctx, fstabPath, maxConfigSize)
	if err := in.soft(ctx, fstabPath, err); err != nil {
		return err
	}
	src := fstabMountSource(fstab, "/boot")
	if src == "" {
		return nil
	}
	for i := range in.layout.Parts {
		p := &in.layout.Parts[i]
		if p != in.root && (p.FS == fsXFS || p.FS == fsBtrfs) {
			in.bootFS = p
			return nil
		}
	}
	in.bootMissing = src
	return nil
}

// collect reads the OS release, kernels, configurations and installed
// agents from the guest.
func (in *inspection) collect(ctx context.Context) error {
	g := in.guest
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := g.readFile(ctx, p, maxConfigSize)
		if err := in.soft(ctx, p, err); err != nil {
			return err
		}
		if data != nil {
			in.osRelease = parseOSRelease(data)
			break
		}
	}
	var err error
	if in.cloudInit, err = in.anyExists(ctx, "/usr/bin/cloud-init", "/usr/local/bin/cloud-init"); err != nil {
		return err
	}
	if in.guestAgent, err = in.anyExists(ctx, "/usr/sbin/qemu-ga", "/usr/bin/qemu-ga"); err != nil {
		return err
	}
	if ok, err := in.anyExists(ctx, "/usr/sbin/update-initramfs", "/sbin/update-initramfs"); err != nil {
		return err
	} else if ok {
		in.initramfsTool = "initramfs-tools"
	} else if ok, err := in.anyExists(ctx, "/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut"); err != nil {
		return err
	} else if ok {
		in.initramfsTool = "dracut"
	}
	if err := in.readConfigs(ctx); err != nil {
		return err
	}
	return in.readKernels(ctx)
}

// anyExists reports whether any of the guest paths exists.
func (in *inspection) anyExists(ctx context.Context, paths ...string) (bool, error) {
	for _, p := range paths {
		ok, err := in.guest.exists(ctx, p)
		if err := in.soft(ctx, p, err); err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// readConfigs reads fstab, the bootloader configurations and the other
// files that name devices; missing ones are skipped.
func (in *inspection) readConfigs(ctx context.Context) error {
	paths := []string{fstabPath}
	paths = append(paths, bootConfigPaths...)
	entries, err := in.guest.list(ctx, blsEntriesDir)
	if err := in.soft(ctx, blsEntriesDir, err); err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsRegular() && strings.HasSuffix(e.Name, ".conf") && safeNameRE.MatchString(e.Name) {
			paths = append(paths, blsEntriesDir+"/"+e.Name)
		}
	}
	paths = append(paths, deviceConfigPaths...)
	for _, p := range paths {
		data, err := in.guest.readFile(ctx, p, maxConfigSize)
		if err := in.soft(ctx, p, err); err != nil {
			return err
		}
		if err == nil {
			in.configs = append(in.configs, configFile{Path: p, Data: data})
		}
	}
	return nil
}

// readKernels lists the installed kernels and what their initramfs holds.
func (in *inspection) readKernels(ctx context.Context) error {
	seen := map[string]bool{}
	for _, dir := range []string{"/lib/modules", "/usr/lib/modules"} {
		entries, err := in.guest.list(ctx, dir)
		if err := in.soft(ctx, dir, err); err != nil {
			return err
		}
		for _, e := range entries {
			if !e.IsDir() || seen[e.Name] || !safeNameRE.MatchString(e.Name) {
				continue
			}
			seen[e.Name] = true
			k, ok, err := in.readKernel(ctx, dir, e.Name)
			if err != nil {
				return err
			}
			if ok {
				in.kernels = append(in.kernels, k)
			}
		}
	}
	sort.Slice(in.kernels, func(i, j int) bool { return versionLess(in.kernels[i].Version, in.kernels[j].Version) })
	return nil
}

// initramfsNames are where distributions put a kernel's initramfs.
var initramfsNames = []string{"/boot/initrd.img-%s", "/boot/initramfs-%s.img", "/boot/initrd-%s", "/boot/initrd-%s.img"}

// readKernel reads one kernel's built-in modules and initramfs. ok is false
// for a leftover directory without modules.dep or modules.builtin.
func (in *inspection) readKernel(ctx context.Context, dir, version string) (kernel, bool, error) {
	k := kernel{Version: version, Builtin: map[string]bool{}}
	base := dir + "/" + version
	builtin, err := in.guest.readFile(ctx, base+"/modules.builtin", maxConfigSize)
	if err := in.soft(ctx, base+"/modules.builtin", err); err != nil {
		return k, false, err
	}
	installed := err == nil
	for _, line := range strings.Split(string(builtin), "\n") {
		if name, ok := moduleName(strings.TrimSpace(line)); ok {
			k.Builtin[name] = true
		}
	}
	if !installed {
		ok, err := in.guest.exists(ctx, base+"/modules.dep")
		if err := in.soft(ctx, base+"/modules.dep", err); err != nil {
			return k, false, err
		}
		if !ok {
			return k, false, nil
		}
	}
	for _, pattern := range initramfsNames {
		p := fmt.Sprintf(pattern, version)
		ok, err := in.guest.exists(ctx, p)
		if err := in.soft(ctx, p, err); err != nil {
			return k, false, err
		}
		if ok {
			k.Initramfs = p
			break
		}
	}
	if k.Initramfs == "" {
		return k, true, nil
	}
	k.Contents, k.Err = in.readInitramfs(ctx, k.Initramfs)
	if k.Err != nil && (errors.Is(k.Err, errToolMissing) || ctx.Err() != nil) {
		return k, false, k.Err
	}
	return k, true, nil
}

// readInitramfs copies the initramfs out of the image and lists it.
func (in *inspection) readInitramfs(ctx context.Context, p string) (*initramfs, error) {
	dir, err := os.MkdirTemp("", "gale-preflight-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	dst := filepath.Join(dir, "initramfs")
	if err := in.guest.dump(ctx, p, dst, maxInitramfs); err != nil {
		return nil, err
	}
	return listInitramfs(ctx, dst)
}

// parseOSRelease parses os-release(5) KEY=value lines.
func parseOSRelease(data []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		m[k] = v
	}
	return m
}

// versionLess orders kernel versions: digit runs numerically, other runs
// as strings.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ra, rest1 := versionRun(a)
		rb, rest2 := versionRun(b)
		if ra != rb {
			da, db := isDigits(ra), isDigits(rb)
			switch {
			case da && db:
				x, y := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
				if len(x) != len(y) {
					return len(x) < len(y)
				}
				return x < y
			case da != db:
				return da // a number sorts before text
			}
			return ra < rb
		}
		a, b = rest1, rest2
	}
	return len(a) < len(b)
}

func versionRun(s string) (string, string) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}

func isDigits(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }
