package imageservice

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/fetch"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/image/inspect"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/vm"
)

// Pull stages.
const (
	StageChecksum   = "checksum"
	StageDownload   = "download"
	StageDecompress = "decompress"
	StageInspect    = "inspect"
	StageConvert    = "convert"
	StagePresent    = "present"
)

// source is a download: where from, how to verify it, and where it goes.
type source struct {
	name        string
	url         string
	format      string
	compression string
	digest      string // pinned, "sha256:<hex>"
	checksumURL string
	algorithm   string
	fileName    string // in the checksum file
	dest        string // final image path
	origin      string
	byURL       bool // a local image named by the user, not a catalog entry
}

// key identifies what a download fetches and where it puts it.
func (src source) key() string { return src.url + " -> " + src.dest }

// Pull downloads an image: a catalog entry with a source (req.Name only) or
// any URL (req.URL with req.Digest or req.ChecksumURL, stored as the local
// image req.Name). A pull of an image that is already being pulled returns
// the running operation.
func (s *Service) Pull(ctx context.Context, req api.PullImageRequest) (api.Operation, error) {
	src, err := s.pullSource(req)
	if err != nil {
		return api.Operation{}, err
	}
	var f *flight
	op, err := s.run(ctx, operation.KindPull, src.name, func(ctx context.Context, op *operation.Op) (string, error) {
		var last time.Time
		return "", f.wait(ctx, func(msg string) {
			stage, text, _ := strings.Cut(msg, ": ")
			if stage == op.Info().Stage && time.Since(last) < time.Second {
				return // at most one progress event a second
			}
			last = time.Now()
			op.Stage(stage, text)
		})
	}, operation.Prepare(func(_ context.Context, op *operation.Op) (err error) {
		if exists(src.dest) {
			if src.byURL {
				// Made by another operation since pullSource looked.
				return fmt.Errorf("%w: %q is already a local image (delete it first: gale image delete %s)", ErrExists, src.name, src.name)
			}
			op.Stage(StagePresent, src.dest)
			return operation.SkipBody
		}
		// Join or start the download before answering, so a second pull
		// that arrives at once finds it and follows the same operation.
		f, err = s.join(src.name, src.key(), func(ctx context.Context, report func(string)) error {
			return s.download(ctx, src, report)
		})
		return err
	}))
	if errors.Is(err, operation.ErrBusy) {
		// The same download is running: follow it.
		cur, gerr := s.cfg.Ops.Get(s.cfg.Ops.Active(target(src.name)))
		if running, ok := s.pulling(src.name); gerr == nil && cur.Kind() == operation.KindPull && ok && running == src.key() {
			return cur.Info(), nil
		}
	}
	if err != nil {
		return api.Operation{}, err
	}
	return op.Info(), nil
}

// pullSource checks a pull request and says what to download.
func (s *Service) pullSource(req api.PullImageRequest) (source, error) {
	if req.URL == "" {
		if err := checkName(req.Name); err != nil {
			return source{}, err
		}
		t, err := s.cfg.Catalog.Get(req.Name)
		if err != nil {
			if errors.Is(err, image.ErrUnknownTemplate) {
				return source{}, fmt.Errorf("%w: %q is not in the catalog; to pull any URL: gale image pull URL --name NAME --sha256 HEX", ErrNotFound, req.Name)
			}
			return source{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if !t.IsSource() {
			return source{}, fmt.Errorf("%w: %q is built, not downloaded: run `gale image build %s`", ErrInvalid, t.Name, t.Name)
		}
		return templateSource(s.cfg.Store, t), nil
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return source{}, fmt.Errorf("%w: %q is not an http(s) URL", ErrInvalid, req.URL)
	}
	if req.Name == "" {
		req.Name = nameFromURL(u)
	}
	if err := checkName(req.Name); err != nil {
		return source{}, err
	}
	if _, err := s.cfg.Catalog.Get(req.Name); err == nil {
		return source{}, fmt.Errorf("%w: %q is a catalog image; pick another --name", ErrExists, req.Name)
	}
	src := source{
		name: req.Name, url: req.URL, format: req.Format, compression: req.Compression,
		digest: req.Digest, checksumURL: req.ChecksumURL, algorithm: req.Algorithm,
		fileName: path.Base(u.Path), dest: s.cfg.Store.ImportedPath(req.Name), origin: imagestore.OriginPulled,
		byURL: true,
	}
	if src.format == "" {
		src.format = disk.FormatQCOW2
	}
	if src.format != disk.FormatQCOW2 && src.format != disk.FormatRaw {
		return source{}, fmt.Errorf("%w: format %q: a download must be qcow2 or raw (import other formats with `gale image import`)", ErrInvalid, src.format)
	}
	if src.compression == "" {
		src.compression = fetch.CompressionFromName(u.Path)
	}
	switch {
	case src.digest != "" && src.checksumURL != "":
		return source{}, fmt.Errorf("%w: give either a digest or a checksum file, not both", ErrInvalid)
	case src.digest != "":
		if _, err := fetch.ParseDigest(src.digest); err != nil {
			return source{}, fmt.Errorf("%w: digest: %w", ErrInvalid, err)
		}
	case src.checksumURL != "":
		if src.algorithm == "" {
			src.algorithm = "sha256"
		}
	default:
		return source{}, fmt.Errorf("%w: gale only keeps verified downloads: give --sha256 HEX (or --sha512), or --checksum-url URL", ErrInvalid)
	}
	if exists(src.dest) {
		return source{}, fmt.Errorf("%w: %q is already a local image (delete it first: gale image delete %s)", ErrExists, req.Name, req.Name)
	}
	return src, nil
}

func templateSource(st imagestore.Store, t *image.Template) source {
	c := t.Source.Checksum
	src := source{
		name: t.Name, url: t.Source.URL, format: t.Source.Format, compression: t.Source.Compression,
		digest: c.Digest, checksumURL: c.URL, algorithm: c.Algorithm, fileName: c.FileName(t.Source.URL),
		dest: st.TemplatePath(t.Name, t.RecipeHash()), origin: imagestore.OriginPulled,
	}
	if src.compression == "" {
		src.compression = fetch.CompressionFromName(t.Source.URL)
	}
	return src
}

// nameFromURL makes an image name from the last element of a URL's path:
// lower case, extensions dropped, other characters replaced by '-'.
func nameFromURL(u *url.URL) string {
	base := strings.ToLower(path.Base(u.Path))
	for _, ext := range []string{".gz", ".xz", ".zst", ".qcow2", ".img", ".raw"} {
		base = strings.TrimSuffix(base, ext)
	}
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 63 {
		name = strings.Trim(name[:63], "-")
	}
	return name
}

// download fetches, verifies, decompresses, inspects and publishes src.
// report gets "stage: message" strings. Partial downloads stay in the
// downloads directory so the next pull resumes; everything else it made is
// removed on failure.
func (s *Service) download(ctx context.Context, src source, report func(string)) error {
	if exists(src.dest) {
		return nil
	}
	var expected *fetch.Digest
	if src.digest != "" {
		d, err := fetch.ParseDigest(src.digest)
		if err != nil {
			return err
		}
		expected = &d
	} else {
		report(StageChecksum + ": " + src.checksumURL)
		d, err := fetch.FetchChecksum(ctx, s.cfg.HTTP, src.checksumURL, src.fileName, src.algorithm)
		if err != nil {
			return fmt.Errorf("checksum of %s: %w", src.fileName, err)
		}
		expected = &d
	}
	if err := os.MkdirAll(s.cfg.Store.DownloadsDir(), 0o700); err != nil {
		return fmt.Errorf("downloads directory: %w", err)
	}
	dl := s.cfg.Store.DownloadPath(src.dest)
	res, err := reuseDownload(dl, *expected)
	if err != nil {
		report(StageDownload + ": " + src.url)
		res, err = fetch.Download(ctx, fetch.Request{
			URL: src.url, Dest: dl, Expected: expected, Client: s.cfg.HTTP, Retries: s.cfg.DownloadRetries,
			MaxBytes: s.cfg.MaxImageBytes,
			Progress: func(p fetch.Progress) { report(StageDownload + ": " + formatProgress(p)) },
		})
		if err != nil {
			return fmt.Errorf("download %s: %w", src.url, err)
		}
	} else {
		report(StageDownload + ": verified earlier, not downloaded again")
	}
	tmp, err := s.cfg.Store.TempDir("pull-" + src.name)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	img := res.Path
	if src.compression != "" && src.compression != "none" {
		report(StageDecompress + ": " + src.compression)
		img = filepath.Join(tmp, "image")
		if _, err := fetch.Decompress(ctx, res.Path, img, src.compression, s.cfg.MaxImageBytes, nil); err != nil {
			if errors.Is(err, fetch.ErrTooLarge) || errors.Is(err, fetch.ErrCorrupt) {
				_ = os.Remove(res.Path) // verified but unusable: do not resume it
			}
			return fmt.Errorf("decompress %s: %w", src.fileName, err)
		}
	}
	report(StageInspect + ": " + src.format)
	info, err := inspect.Inspect(ctx, img, src.format, s.cfg.Limits)
	if err != nil {
		_ = os.Remove(res.Path) // verified, but refused: never resume it
		return fmt.Errorf("downloaded image %s: %w", src.fileName, err)
	}
	final := img
	if src.format != disk.FormatQCOW2 {
		// Raw images become qcow2, like every template. A qcow2 is used as
		// it came, once inspect has passed it.
		final = filepath.Join(tmp, "image.qcow2")
		report(StageConvert + ": " + src.format + " to qcow2")
		if err := s.cfg.Disks.Convert(ctx, img, src.format, final, func(f float64) {
			report(fmt.Sprintf("%s: %.0f%%", StageConvert, f*100))
		}); err != nil {
			return fmt.Errorf("convert %s: %w", src.fileName, err)
		}
	}
	rec := imagestore.Record{
		Name: src.name, Origin: src.origin, Source: src.url, SourceFormat: src.format, SourceBytes: res.Size,
		Verified: expected.String(), VirtualSize: info.VirtualSize, CreatedAt: time.Now().UTC(),
		Readiness: vm.ReadyCloudInit, Boot: "bios",
	}
	if res.Digest.Algorithm == "sha256" {
		rec.SourceSHA256 = res.Digest.Hex
	}
	if err := os.MkdirAll(filepath.Dir(src.dest), 0o755); err != nil {
		return fmt.Errorf("image directory: %w", err)
	}
	if err := imagestore.WriteRecord(src.dest, rec); err != nil {
		return err
	}
	if err := imagestore.Publish(final, src.dest); err != nil {
		_ = os.Remove(imagestore.RecordPath(src.dest))
		return err
	}
	_ = os.Remove(res.Path)
	return nil
}

// reuseDownload returns a complete download left by an earlier pull that
// failed after it (decompression, conversion, galed stopped), when it still
// has the expected digest. Any error means: download it.
func reuseDownload(path string, want fetch.Digest) (fetch.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return fetch.Result{}, err
	}
	defer f.Close()
	var h hash.Hash
	switch want.Algorithm {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return fetch.Result{}, fmt.Errorf("unknown algorithm %q", want.Algorithm)
	}
	n, err := io.Copy(h, f)
	if err != nil {
		return fetch.Result{}, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
		_ = os.Remove(path)
		return fetch.Result{}, fmt.Errorf("%s: digest %s, want %s", path, got, want.Hex)
	}
	return fetch.Result{Path: path, Size: n, Digest: want}, nil
}

func formatProgress(p fetch.Progress) string {
	msg := disk.HumanSize(p.Done)
	if p.Total > 0 {
		msg = fmt.Sprintf("%s / %s (%.0f%%)", disk.HumanSize(p.Done), disk.HumanSize(p.Total), 100*float64(p.Done)/float64(p.Total))
	}
	if p.Rate > 0 {
		msg += fmt.Sprintf(", %s/s", disk.HumanSize(int64(p.Rate)))
	}
	if p.ETA > 0 {
		msg += fmt.Sprintf(", ETA %s", p.ETA.Round(time.Second))
	}
	return msg
}
