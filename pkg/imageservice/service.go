// Package imageservice is galed's image service: it lists the catalog and the
// local images, resolves an image name for a VM create, and runs the long
// image work as operations with progress: build, pull (also on demand from
// a create), import, plus delete and prune.
//
// Operations on one image hold the target "image/<name>", so a build, pull,
// import or delete of the same name never run at once. Downloads of the same
// image are shared: a second pull, or a VM create that needs the image,
// joins the running download instead of starting another.
package imageservice

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/image/builder"
	"github.com/galevm/gale/pkg/image/inspect"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/operation"
)

// Sentinel errors; galed maps them to status codes.
var (
	ErrInvalid  = errdefs.New(errdefs.Invalid, "invalid image request")
	ErrNotFound = errdefs.New(errdefs.NotFound, "image not found")
	ErrExists   = errdefs.New(errdefs.Conflict, "image exists")
	ErrInUse    = errdefs.New(errdefs.Conflict, "image in use")
)

// DefaultMaxImageBytes caps a decompressed download (a decompression bomb
// stops there).
const DefaultMaxImageBytes int64 = 64 << 30

// Config wires a Service. Catalog, Store and Ops are required.
type Config struct {
	Catalog image.Catalog
	Store   imagestore.Store
	Ops     *operation.Registry
	// Disks converts images; nil means qemu-img from PATH.
	Disks *disk.QemuImg
	// VMs tells which VMs use which image file (see Users); nil means
	// none do.
	VMs VMRecords
	// HTTP is the client for downloads; nil means fetch's default.
	HTTP *http.Client
	// Limits bound what an imported or downloaded image may be.
	Limits inspect.Limits
	// MaxImageBytes caps decompressed downloads; 0 means DefaultMaxImageBytes.
	MaxImageBytes int64
	// ImportDir is the import area: callers other than root may import
	// files below it (and only there); symlinks never lead out of it.
	ImportDir string
	// MaxUploadBytes bounds an image upload through the API (0:
	// inspect.DefaultMaxVirtualSize).
	MaxUploadBytes int64
	// DownloadRetries is passed to fetch (0: its default).
	DownloadRetries int
	Log             logrus.FieldLogger
}

// Service implements the image API. It is safe for concurrent use.
type Service struct {
	cfg Config
	log logrus.FieldLogger

	// ctx outlives requests: shared downloads run in it. Operations run
	// in cfg.Ops.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	flights map[string]*flight
}

// New returns a Service. Close stops its background work.
func New(cfg Config) (*Service, error) {
	if cfg.Store.Dir == "" || cfg.Ops == nil {
		return nil, errors.New("imageservice: Store.Dir and Ops are required")
	}
	if cfg.Disks == nil {
		cfg.Disks = disk.NewQemuImg(nil)
	}
	if cfg.MaxImageBytes == 0 {
		cfg.MaxImageBytes = DefaultMaxImageBytes
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, log: cfg.Log, ctx: ctx, cancel: cancel, flights: map[string]*flight{}}, nil
}

// Close cancels running image work (partial downloads stay for a resume)
// and waits for it to end: it closes the operation registry, then stops the
// shared downloads.
func (s *Service) Close() {
	s.cfg.Ops.Close()
	s.cancel()
	s.wg.Wait()
}

// CleanUp removes what a killed galed left: the work area, and the work
// directories of builds that were killed (a build that still runs, e.g.
// from scripts/build-image.sh, holds its lock and is left alone). Call it
// at start, before any operation.
func (s *Service) CleanUp() error {
	_, err := builder.CleanBuilds(s.cfg.Store.Dir)
	return errors.Join(s.cfg.Store.CleanTemp(), err)
}

// target is the operation target of image name ("image/<name>").
func target(name string) operation.Target { return operation.Image(name) }

// checkName validates a local image name.
func checkName(name string) error {
	if err := image.ValidateName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// run starts an operation of kind on image name in the registry (see
// operation.Registry.Run).
func (s *Service) run(ctx context.Context, kind operation.Kind, name string, fn operation.Func, opts ...operation.Option) (*operation.Op, error) {
	return s.cfg.Ops.Run(ctx, kind, target(name), fn, opts...)
}

func exists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// present returns api fields for an image file.
func presentFile(img *api.Image, path string) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return
	}
	img.Present, img.Path, img.SizeBytes = true, path, imagestore.Allocated(st)
	if rec, err := imagestore.ReadRecord(path); err == nil {
		img.Origin = rec.Origin
	}
}

// CatalogProblems returns the load errors of catalog files, each naming the
// file and field.
func (s *Service) CatalogProblems() ([]error, error) {
	entries, err := s.cfg.Catalog.Entries()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range entries {
		if e.Err != nil {
			errs = append(errs, e.Err)
		}
	}
	return errs, nil
}
