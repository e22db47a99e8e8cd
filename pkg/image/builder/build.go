// Package builder builds gale's template recipes (pkg/image, the build:
// section) into bootable qcow2 images, offline: mmdebstrap installs the
// packages into a directory, mke2fs turns it into a file system, extlinux
// makes it boot and qemu-img converts the disk. The images it makes, the
// locks it takes and its work directories are in an image store, under the
// names pkg/imagestore gives them; what is inside a work directory is the
// builder's own.
package builder

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/toolrun"
)

// SyslinuxMBR is the BIOS boot code written to the image's first 440 bytes.
const SyslinuxMBR = "/usr/lib/syslinux/mbr/mbr.bin"

// Build stages reported through Options.Progress, in order.
const (
	StageBootstrap  = "bootstrap"  // mmdebstrap installs the packages into a directory
	StageConfigure  = "configure"  // fstab, bootloader config, cloud-init user, clean-up
	StageFilesystem = "filesystem" // partition table and ext4 populated from the directory
	StageBootloader = "bootloader" // extlinux and the MBR boot code
	StageConvert    = "convert"    // raw to qcow2
)

// partOffset is where the single root partition starts (sector 2048).
const partOffset = 1 << 20

// Options tune Build. The zero value is usable.
type Options struct {
	// CacheDir is the image store that holds built images and, during a
	// build, its lock and work directory. Default imagestore.DefaultDir.
	CacheDir string
	// Progress, if set, is called with each Stage* constant as it starts.
	Progress func(stage string)
	// Log, if set, receives the output of the tools Build runs.
	Log io.Writer
	// AptDir is the host apt configuration used to find a mirror when the
	// template has none. Default /etc/apt.
	AptDir string
}

// Build returns the path of the qcow2 image for t, building it first if the
// image store at opts.CacheDir does not hold it.
//
// Contract:
//   - The result is the store's TemplatePath of t. If that file exists,
//     Build returns it at once without checking its content.
//   - Otherwise Build works in a fresh work directory of the store
//     (MakeBuildDir) and renames the finished image into place, so the store
//     never holds a partial image under its final name.
//   - Concurrent Builds of the same template serialise on the store's
//     BuildLockPath; the second one finds the first one's image.
//   - On any failure, and on success, the work directory is removed. Mounts
//     and loop devices are only made inside private mount namespaces
//     (unshare --mount) with auto-clearing loop devices, so even a killed
//     build leaves none behind.
//   - Cancelling ctx kills the running tool's whole process group.
//
// Build needs root and the host tools mmdebstrap, unshare, sfdisk,
// mkfs.ext4, mount, extlinux and qemu-img, plus SyslinuxMBR.
func Build(ctx context.Context, t *image.Template, opts Options) (string, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = imagestore.DefaultDir
	}
	st := imagestore.Store{Dir: opts.CacheDir}
	if opts.AptDir == "" {
		opts.AptDir = "/etc/apt"
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Progress == nil {
		opts.Progress = func(string) {}
	}
	final := st.TemplatePath(t.Name, t.RecipeHash())
	if isFile(final) {
		return final, nil
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", t.Name, err)
	}
	unlock, err := lockFile(ctx, st.BuildLockPath(t.Name))
	if err != nil {
		return "", fmt.Errorf("build %s: %w", t.Name, err)
	}
	defer unlock()
	if isFile(final) { // built by whoever held the lock before us
		return final, nil
	}
	if err := checkTools(); err != nil {
		return "", fmt.Errorf("build %s: %w", t.Name, err)
	}
	mirror, err := ResolveMirror(t, opts.AptDir)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", t.Name, err)
	}

	work, err := st.MakeBuildDir(t.Name)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", t.Name, err)
	}
	defer func() {
		if cerr := removeTree(work); cerr != nil {
			fmt.Fprintf(opts.Log, "image build: cleanup: %v\n", cerr)
		}
	}()
	// apt downloads as the _apt user and needs to traverse the work dir.
	if err := os.Chmod(work, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", t.Name, err)
	}
	b := &builder{t: t, opts: opts, work: work, mirror: mirror}
	start := time.Now()
	out, err := b.run(ctx)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", t.Name, err)
	}
	if err := os.Rename(out, final); err != nil {
		return "", fmt.Errorf("build %s: install image: %w", t.Name, err)
	}
	if d, err := os.Open(opts.CacheDir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	fmt.Fprintf(opts.Log, "image build: %s built in %s\n", final, time.Since(start).Round(100*time.Millisecond))
	return final, nil
}

type builder struct {
	t      *image.Template
	opts   Options
	work   string
	mirror string
}

func (b *builder) rootfs() string  { return filepath.Join(b.work, "rootfs") }
func (b *builder) overlay() string { return filepath.Join(b.work, "overlay") }
func (b *builder) rawDisk() string { return filepath.Join(b.work, "disk.raw") }

// run executes all stages and returns the path of the qcow2 in the work dir.
func (b *builder) run(ctx context.Context) (string, error) {
	uuid, err := newUUID()
	if err != nil {
		return "", err
	}
	b.opts.Progress(StageBootstrap)
	if err := b.bootstrap(ctx); err != nil {
		return "", fmt.Errorf("%s: %w", StageBootstrap, err)
	}
	b.opts.Progress(StageConfigure)
	if err := b.configure(uuid); err != nil {
		return "", fmt.Errorf("%s: %w", StageConfigure, err)
	}
	b.opts.Progress(StageFilesystem)
	partSize, err := b.filesystem(ctx, uuid)
	if err != nil {
		return "", fmt.Errorf("%s: %w", StageFilesystem, err)
	}
	// The directory tree is no longer needed; free the space before convert.
	if err := removeTree(b.rootfs()); err != nil {
		return "", fmt.Errorf("%s: %w", StageFilesystem, err)
	}
	b.opts.Progress(StageBootloader)
	if err := b.bootloader(ctx, partSize); err != nil {
		return "", fmt.Errorf("%s: %w", StageBootloader, err)
	}
	b.opts.Progress(StageConvert)
	out := filepath.Join(b.work, "image.qcow2")
	args := []string{"convert", "-f", "raw", "-O", "qcow2"}
	if b.t.Build.Compress {
		args = append(args, "-c")
	}
	args = append(args, b.rawDisk(), out)
	if err := b.cmd(ctx, "qemu-img", args...); err != nil {
		return "", fmt.Errorf("%s: %w", StageConvert, err)
	}
	f, err := os.Open(out)
	if err != nil {
		return "", fmt.Errorf("%s: %w", StageConvert, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("%s: sync: %w", StageConvert, err)
	}
	return out, nil
}

// bootstrap writes build.files into an overlay tree, then runs mmdebstrap,
// which copies the overlay in before installing packages (so dpkg path
// filters and initramfs settings apply to the first install) and enables and
// masks units afterwards.
func (b *builder) bootstrap(ctx context.Context) error {
	for _, f := range b.t.Build.Files {
		if err := writeFile(b.overlay(), f.Path, []byte(f.Content), f.FileMode()); err != nil {
			return err
		}
	}
	userCfg, err := b.defaultUserConfig()
	if err != nil {
		return err
	}
	if err := writeFile(b.overlay(), "/etc/cloud/cloud.cfg.d/80-gale-user.cfg", userCfg, 0o644); err != nil {
		return err
	}
	if strings.ContainsAny(b.work, "'\n") {
		return fmt.Errorf("work directory %q contains a quote or newline", b.work)
	}
	bs := b.t.Build
	variant := bs.Variant
	if variant == "" {
		variant = "minbase"
	}
	comps := bs.Components
	if len(comps) == 0 {
		comps = []string{"main"}
	}
	include := append([]string{bs.Kernel}, b.t.Packages...)
	args := []string{
		"--mount", "--propagation", "private", "--",
		"mmdebstrap", "--mode=root", "--format=directory",
		"--variant=" + variant,
		"--components=" + strings.Join(comps, ","),
		"--include=" + strings.Join(include, ","),
		"--aptopt=Acquire::Retries \"3\"",
		"--setup-hook=cp -a '" + b.overlay() + "'/. \"$1\"/",
	}
	for _, o := range bs.DpkgOptions {
		args = append(args, "--dpkgopt="+o)
	}
	if len(bs.EnableUnits) > 0 {
		args = append(args, "--customize-hook=chroot \"$1\" systemctl enable "+strings.Join(bs.EnableUnits, " "))
	}
	if len(bs.MaskUnits) > 0 {
		args = append(args, "--customize-hook=chroot \"$1\" systemctl mask "+strings.Join(bs.MaskUnits, " "))
	}
	args = append(args, bs.Suite, b.rootfs(), b.mirror)
	return b.cmd(ctx, "unshare", args...)
}

// defaultUserConfig renders the cloud-init drop-in that makes Template.User
// the distro's default user (the one "users: [default]" creates and ssh keys
// from meta-data go to).
func (b *builder) defaultUserConfig() ([]byte, error) {
	type defaultUser struct {
		Name       string   `yaml:"name"`
		LockPasswd bool     `yaml:"lock_passwd"`
		Gecos      string   `yaml:"gecos"`
		Groups     []string `yaml:"groups"`
		Sudo       []string `yaml:"sudo"`
		Shell      string   `yaml:"shell"`
	}
	doc := map[string]any{
		"system_info": map[string]any{
			"default_user": defaultUser{
				Name:       b.t.User,
				LockPasswd: true,
				Gecos:      "gale default user",
				Groups:     []string{"adm", "sudo", "systemd-journal"},
				Sudo:       []string{"ALL=(ALL) NOPASSWD:ALL"},
				Shell:      "/bin/bash",
			},
		},
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("render default user: %w", err)
	}
	return append([]byte("# Generated by the gale image builder from the template's user field.\n"), out...), nil
}

// configure writes the files that depend on the root filesystem's UUID and
// removes per-machine state.
func (b *builder) configure(uuid string) error {
	root := b.rootfs()
	for _, link := range []string{"/vmlinuz", "/initrd.img"} {
		if _, err := os.Stat(filepath.Join(root, link)); err != nil {
			return fmt.Errorf("kernel package %s left no %s: %w", b.t.Build.Kernel, link, err)
		}
	}
	// fsck pass 0: a fresh overlay of a cleanly built image needs no check,
	// and skipping it keeps e2fsck out of the initramfs and the boot.
	fstab := fmt.Sprintf("# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=%s / ext4 defaults,errors=remount-ro 0 0\n", uuid)
	// PROMPT 0 without TIMEOUT boots the default entry at once. The /vmlinuz
	// and /initrd.img symlinks are kept current by kernel upgrades in the guest.
	extlinux := fmt.Sprintf(`DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=UUID=%s ro %s
`, uuid, b.t.Build.KernelCmdline)
	for _, f := range []struct {
		path    string
		content string
	}{
		{"/etc/fstab", fstab},
		{"/boot/extlinux/extlinux.conf", extlinux},
		{"/etc/hostname", b.t.Name + "\n"},
		{"/etc/machine-id", ""}, // empty: systemd generates one on first boot
	} {
		if err := writeFile(root, f.path, []byte(f.content), 0o644); err != nil {
			return err
		}
	}
	remove := append([]string{"/var/lib/dbus/machine-id"}, b.t.Build.Remove...)
	for _, pattern := range remove {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return fmt.Errorf("remove %s: %w", pattern, err)
		}
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return fmt.Errorf("remove %s: %w", pattern, err)
			}
		}
	}
	return nil
}

// filesystem creates the sparse raw disk with one bootable partition at 1 MiB
// and populates an ext4 file system in it from the root directory (mke2fs -d,
// no mount needed). It returns the partition size in bytes.
func (b *builder) filesystem(ctx context.Context, uuid string) (int64, error) {
	size := int64(b.t.Build.DiskGiB) << 30
	f, err := os.OpenFile(b.rawDisk(), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("create raw disk: %w", err)
	}
	partSize := size - partOffset
	table := fmt.Sprintf("label: dos\nunit: sectors\nstart=%d, size=%d, type=83, bootable\n", partOffset/512, partSize/512)
	if err := b.cmdStdin(ctx, strings.NewReader(table), "sfdisk", "--no-reread", "--no-tell-kernel", b.rawDisk()); err != nil {
		return 0, err
	}
	err = b.cmd(ctx, "mkfs.ext4", "-q", "-F", "-t", "ext4",
		"-L", "gale-root", "-U", uuid,
		"-m", "1",
		"-E", "offset="+strconv.Itoa(partOffset),
		"-d", b.rootfs(),
		b.rawDisk(), strconv.FormatInt(partSize/1024, 10)+"k")
	return partSize, err
}

// bootloader installs extlinux into the partition and the syslinux MBR into
// the disk's first 440 bytes. The mount happens inside a private mount
// namespace, on a loop device set up by mount -o loop (which sets the
// auto-clear flag), so a killed build leaves neither mount nor loop device.
func (b *builder) bootloader(ctx context.Context, partSize int64) error {
	mnt := filepath.Join(b.work, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return err
	}
	script := `mount -t ext4 -o "loop,offset=$3,sizelimit=$4" "$1" "$2"
rc=0
extlinux --install "$2/boot/extlinux" || rc=$?
umount "$2" || rc=$?
exit $rc`
	if err := b.cmd(ctx, "unshare", "--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", script, "sh", b.rawDisk(), mnt,
		strconv.Itoa(partOffset), strconv.FormatInt(partSize, 10)); err != nil {
		return err
	}
	mbr, err := os.ReadFile(SyslinuxMBR)
	if err != nil {
		return fmt.Errorf("read MBR boot code: %w", err)
	}
	if len(mbr) > 440 {
		return fmt.Errorf("%s is %d bytes, want at most 440", SyslinuxMBR, len(mbr))
	}
	f, err := os.OpenFile(b.rawDisk(), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(mbr, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write MBR boot code: %w", err)
	}
	return nil
}

func (b *builder) cmd(ctx context.Context, name string, args ...string) error {
	return b.cmdStdin(ctx, nil, name, args...)
}

// cmdStdin runs a tool through toolrun (in its own process group, so
// cancelling ctx kills its children too; no timeout or output cap: a build
// takes as long as it takes), copies its output to the log and puts the
// tail of its standard error into the error.
func (b *builder) cmdStdin(ctx context.Context, stdin io.Reader, name string, args ...string) error {
	log := &syncWriter{w: b.opts.Log}
	fmt.Fprintf(log, "+ %s %s\n", name, strings.Join(args, " "))
	_, err := toolrun.Run(ctx, toolrun.Spec{
		Argv:      append([]string{name}, args...),
		MaxOutput: -1,
		Stdin:     stdin,
		Stdout:    log,
		Stderr:    log,
		Env:       toolEnv(),
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%s: %w", name, ctx.Err())
	}
	return err
}

// syncWriter serializes writes to w: a tool's stdout and stderr are copied
// to the log from two goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// toolEnv is the host environment without locale and Python settings (which
// would leak into package scripts in the image, e.g. PYTHONDONTWRITEBYTECODE
// would leave the image without bytecode), plus a fixed locale.
func toolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PYTHON") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive")
}

func checkTools() error {
	var missing []string
	for _, tool := range []string{"mmdebstrap", "unshare", "sfdisk", "mkfs.ext4", "mount", "extlinux", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat(SyslinuxMBR); err != nil {
		missing = append(missing, SyslinuxMBR+" (syslinux-common)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing host tools: %s", strings.Join(missing, ", "))
	}
	return nil
}

// writeFile writes content to root+path, creating parent directories.
func writeFile(root, path string, content []byte, mode os.FileMode) error {
	full := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(full, content, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Chmod(full, mode) // WriteFile's mode is subject to umask and ignored for existing files
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func newUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("generate uuid: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]), nil
}

// lockFile takes an exclusive flock on path, polling so ctx can cancel the wait.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// mountsUnder lists mount points in this mount namespace at or below dir.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var found []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			found = append(found, mp)
		}
	}
	return found, sc.Err()
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

// removeTree deletes dir, but refuses if anything is mounted below it: a
// recursive delete through a bind mount of /dev or /proc would destroy host
// state.
func removeTree(dir string) error {
	mps, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("check mounts under %s: %w", dir, err)
	}
	if len(mps) > 0 {
		return fmt.Errorf("refusing to delete %s: still mounted: %s", dir, strings.Join(mps, ", "))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete %s: %w", dir, err)
	}
	return nil
}
