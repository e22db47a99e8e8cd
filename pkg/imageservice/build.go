package imageservice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/image/builder"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/vm"
)

// Build builds a catalog recipe into the image cache as an operation whose
// stages are the builder's (bootstrap, configure, filesystem, bootloader,
// convert). An image already built for the same recipe hash is reused: the
// operation then ends at once with the stage "present".
func (s *Service) Build(ctx context.Context, name string) (api.Operation, error) {
	if err := checkName(name); err != nil {
		return api.Operation{}, err
	}
	t, err := s.cfg.Catalog.Get(name)
	if err != nil {
		if errors.Is(err, image.ErrUnknownTemplate) {
			return api.Operation{}, fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return api.Operation{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if t.IsSource() {
		return api.Operation{}, fmt.Errorf("%w: %q is a published image, not a recipe: run `gale image pull %s`", ErrInvalid, name, name)
	}
	path := s.cfg.Store.TemplatePath(t.Name, t.RecipeHash())
	op, err := s.run(ctx, operation.KindBuild, name, func(ctx context.Context, op *operation.Op) (string, error) {
		start := time.Now()
		log := &tail{max: 4096}
		out, err := builder.Build(ctx, t, builder.Options{
			CacheDir: s.cfg.Store.Dir,
			Progress: func(stage string) { op.Stage(stage, "") },
			Log:      log,
		})
		if err != nil {
			return strings.TrimSpace(log.String()), err
		}
		rec := imagestore.Record{Name: name, Origin: imagestore.OriginBuilt, Source: t.File(), CreatedAt: time.Now().UTC(),
			Readiness: vm.ReadyCloudInit, Boot: t.Boot}
		if err := imagestore.WriteRecord(out, rec); err != nil {
			s.log.WithError(err).Warn("record of built image")
		}
		op.Stage(StagePresent, fmt.Sprintf("%s in %s", out, time.Since(start).Round(time.Second)))
		return "", nil
	}, operation.Prepare(func(_ context.Context, op *operation.Op) error {
		if exists(path) {
			op.Stage(StagePresent, path)
			return operation.SkipBody
		}
		return nil
	}))
	if err != nil {
		return api.Operation{}, err
	}
	return op.Info(), nil
}

// tail keeps the last max bytes written to it. It is safe for concurrent use.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
