package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Manager is what the VM engine needs of disk images. QemuImg is the real
// implementation; the engine takes a Manager so its tests can substitute
// their own.
type Manager interface {
	CreateOverlay(ctx context.Context, path, backingPath, backingFormat string, sizeBytes int64) error
	Info(ctx context.Context, path, format string) (Info, error)
}

// Image formats gale names on qemu-img command lines.
const (
	FormatQCOW2 = "qcow2"
	FormatRaw   = "raw"
)

// knownFormats are the formats accepted for -f/-F. Anything else is refused
// before qemu-img runs, so a format string can never smuggle an option.
var knownFormats = map[string]bool{
	FormatQCOW2: true, FormatRaw: true,
	"qed": true, "vmdk": true, "vdi": true, "vhdx": true, "vpc": true, "parallels": true,
}

// ImageFileMode is the permission of image files CreateOverlay creates.
// Images hold guest data, so only the owner may read them; libvirt's
// dynamic ownership hands them to the qemu user when a domain starts.
const ImageFileMode fs.FileMode = 0o600

// QemuImg manages images by running qemu-img. It is safe for concurrent use
// as long as its Runner is.
type QemuImg struct {
	// Binary is the qemu-img executable; empty means "qemu-img" from PATH.
	Binary string
	// Runner runs the executable; nil means ExecRunner{} (DefaultTimeout).
	Runner Runner
}

var _ Manager = (*QemuImg)(nil)

// NewQemuImg returns a QemuImg that runs qemu-img through r (nil: ExecRunner{}).
func NewQemuImg(r Runner) *QemuImg { return &QemuImg{Runner: r} }

func (q *QemuImg) run(ctx context.Context, args ...string) ([]byte, error) {
	name := q.Binary
	if name == "" {
		name = "qemu-img"
	}
	r := q.Runner
	if r == nil {
		r = ExecRunner{}
	}
	stdout, stderr, err := r.Run(ctx, name, args...)
	if err != nil {
		return stdout, &CommandError{Name: name, Args: args, Stderr: strings.TrimSpace(string(stderr)), Err: err}
	}
	return stdout, nil
}

// CreateOverlay creates a new qcow2 image at path whose backing file is
// backingPath in format backingFormat:
//
//	qemu-img create -f qcow2 -F <backingFormat> -b <abs backingPath> <abs path> [size]
//
// Both paths are made absolute (relative to the current directory) before
// use, and the overlay records the absolute backing path. sizeBytes 0 means
// "the backing image's virtual size"; a positive sizeBytes smaller than the
// backing image's virtual size fails with ErrShrink before anything is
// created. CreateOverlay MUST NOT overwrite anything: if path exists it fails
// with an error matching ErrExists and os.ErrExist. On any failure it removes
// the file it created, and only that file.
func (q *QemuImg) CreateOverlay(ctx context.Context, path, backingPath, backingFormat string, sizeBytes int64) error {
	if sizeBytes < 0 {
		return fmt.Errorf("create overlay %s: %w: size %d is negative", path, ErrInvalidSize, sizeBytes)
	}
	if err := checkFormat(backingFormat); err != nil {
		return fmt.Errorf("create overlay %s: backing %w", path, err)
	}
	dst, err := absPath(path)
	if err != nil {
		return fmt.Errorf("create overlay: %w", err)
	}
	absBacking, err := absPath(backingPath)
	if err != nil {
		return fmt.Errorf("create overlay %s: backing %w", path, err)
	}
	if dst == absBacking {
		return fmt.Errorf("create overlay %s: %w: image cannot be its own backing file", path, ErrInvalidArgument)
	}
	backing, err := q.Info(ctx, absBacking, backingFormat)
	if err != nil {
		return fmt.Errorf("create overlay %s: %w", path, err)
	}
	if sizeBytes > 0 && sizeBytes < backing.VirtualSize {
		return fmt.Errorf("create overlay %s: %w: requested %s (%d bytes) is smaller than backing image %s (%s, %d bytes)",
			path, ErrShrink, FormatSize(sizeBytes), sizeBytes, backingPath, FormatSize(backing.VirtualSize), backing.VirtualSize)
	}

	// Claim the path first: qemu-img create itself truncates whatever is
	// there. From here on the file is ours to remove on failure.
	if err := claim(dst); err != nil {
		return fmt.Errorf("create overlay %s: %w", path, err)
	}

	args := []string{"create", "-q", "-f", FormatQCOW2, "-F", backingFormat, "-b", absBacking, dst}
	if sizeBytes > 0 {
		args = append(args, strconv.FormatInt(sizeBytes, 10))
	}
	if _, err := q.run(ctx, args...); err != nil {
		if rmErr := os.Remove(dst); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			return fmt.Errorf("create overlay %s: %w (and removing it failed: %v)", path, err, rmErr)
		}
		return fmt.Errorf("create overlay %s: %w", path, err)
	}
	return nil
}

// claim creates the empty file path (mode ImageFileMode) for a qemu-img
// command to fill, failing with ErrExists if anything is there already; on
// an error nothing is left.
func claim(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, ImageFileMode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

func checkFormat(format string) error {
	if !knownFormats[format] {
		return fmt.Errorf("%w: unknown image format %q", ErrInvalidArgument, format)
	}
	return nil
}

// absPath validates p and makes it absolute. An absolute path can neither
// be mistaken for a qemu-img option ("-x") nor for a protocol prefix
// ("nbd:...", "json:{...}"), which qemu only recognises before the first '/'.
func absPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: empty path", ErrInvalidArgument)
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w: path %q contains NUL", ErrInvalidArgument, p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%w: path %q: %v", ErrInvalidArgument, p, err)
	}
	return abs, nil
}
