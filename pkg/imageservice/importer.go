package imageservice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/image/inspect"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/preflight"
	"github.com/galevm/gale/pkg/vm"
)

// Import stages.
const (
	StageUpload    = "upload"
	StagePreflight = "preflight"
	StagePrepare   = "prepare"
	StagePublish   = "publish"
)

// importFormats are the source formats an import accepts.
var importFormats = map[string]bool{"raw": true, "qcow2": true, "vmdk": true, "vpc": true, "vhdx": true, "vdi": true}

// checkImport validates an import request and that its name is free.
func (s *Service) checkImport(req *api.ImportImageRequest, stream bool) error {
	if err := checkName(req.Name); err != nil {
		return err
	}
	if req.Format == "vhd" {
		req.Format = "vpc"
	}
	switch {
	case req.Format == "" && stream:
		return fmt.Errorf("%w: a stream needs --format (raw, qcow2, vmdk, vpc, vhdx, vdi): gale never guesses the format of a stream", ErrInvalid)
	case req.Format != "" && !importFormats[req.Format]:
		return fmt.Errorf("%w: format %q: want raw, qcow2, vmdk, vpc (vhd), vhdx or vdi", ErrInvalid, req.Format)
	case req.Boot != "" && req.Boot != "bios" && req.Boot != "uefi":
		return fmt.Errorf("%w: boot %q: want bios or uefi", ErrInvalid, req.Boot)
	case req.ReadyPort < 0 || req.ReadyPort > 65535:
		return fmt.Errorf("%w: ready port %d is not a TCP port", ErrInvalid, req.ReadyPort)
	case req.Prepare && req.NoPreflight:
		return fmt.Errorf("%w: --prepare needs the pre-flight check", ErrInvalid)
	}
	if _, err := s.cfg.Catalog.Get(req.Name); err == nil || !errors.Is(err, image.ErrUnknownTemplate) {
		return fmt.Errorf("%w: %q is a catalog image name; pick another --name", ErrExists, req.Name)
	}
	if _, err := os.Lstat(s.cfg.Store.ImportedPath(req.Name)); err == nil {
		return fmt.Errorf("%w: %q is already imported (gale image delete %s first)", ErrExists, req.Name, req.Name)
	}
	return nil
}

// Import imports the file or block device at req.Path as the local image
// req.Name. who decides which paths the caller may name (see openSource).
// The format is req.Format, or, for files, what the header says; a raw
// source is never interpreted as anything else.
func (s *Service) Import(ctx context.Context, req api.ImportImageRequest, who Caller) (api.Operation, error) {
	if err := s.checkImport(&req, false); err != nil {
		return api.Operation{}, err
	}
	f, err := s.openSource(req.Path, who)
	if err != nil {
		return api.Operation{}, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return api.Operation{}, fmt.Errorf("size of %s: %w", req.Path, err)
	}
	if req.Format == "" {
		sniffed, err := inspect.Sniff(f, size)
		if err != nil {
			f.Close()
			return api.Operation{}, fmt.Errorf("%w: read %s: %w", ErrInvalid, req.Path, err)
		}
		if sniffed == "raw" {
			f.Close()
			return api.Operation{}, fmt.Errorf("%w: %s has no known image header: if it is a raw disk, say so with --format raw", ErrInvalid, req.Path)
		}
		req.Format = sniffed
	}
	// What the checks saw: any write to the file from here on (its ctime
	// moves, and nobody but root can set it back) fails the import after
	// the last read, so a header rewritten between the checks and the
	// conversion is never trusted.
	before, err := stamp(f)
	if err != nil {
		f.Close()
		return api.Operation{}, err
	}
	// Inspect before the operation starts, so a refused image is a plain
	// 400 with the reason, and nothing was begun.
	info, err := s.inspect(ctx, fdPath(f), req.Format, req.Path)
	if err != nil {
		f.Close()
		return api.Operation{}, err
	}
	op, err := s.run(ctx, operation.KindImport, req.Name, func(ctx context.Context, op *operation.Op) (string, error) {
		defer f.Close()
		return "", s.runImport(ctx, op, req, f, fdPath(f), info, size, "", req.Path, func() error {
			after, err := stamp(f)
			if err != nil {
				return err
			}
			if after != before {
				return fmt.Errorf("%w: %s changed while it was imported; import a copy nobody writes to", ErrInvalid, req.Path)
			}
			return nil
		})
	}, operation.Prepare(func(context.Context, *operation.Op) error { return s.checkImportFree(req.Name) }))
	if err != nil {
		f.Close()
		return api.Operation{}, err
	}
	return op.Info(), nil
}

// fileStamp is what changes when a file is written.
type fileStamp struct {
	size         int64
	ctime, mtime syscall.Timespec
}

func stamp(f *os.File) (fileStamp, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fileStamp{}, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	return fileStamp{size: st.Size, ctime: st.Ctim, mtime: st.Mtim}, nil
}

// checkImportFree checks again, holding the import's target, that the name
// is free: a pull or import of the same name may have finished between the
// request's first check and the start of the operation.
func (s *Service) checkImportFree(name string) error {
	if _, err := os.Lstat(s.cfg.Store.ImportedPath(name)); err == nil {
		return fmt.Errorf("%w: %q was imported meanwhile", ErrExists, name)
	}
	return nil
}

// inspect runs the safety checks on a source; a refusal wraps ErrInvalid
// (and inspect.ErrRefused) and names the reason.
func (s *Service) inspect(ctx context.Context, path, format, label string) (inspect.Report, error) {
	info, err := inspect.Inspect(ctx, path, format, s.cfg.Limits)
	if err != nil {
		if errors.Is(err, inspect.ErrRefused) {
			return info, fmt.Errorf("%w: %s: %w", ErrInvalid, label, err)
		}
		return info, fmt.Errorf("inspect %s: %w", label, err)
	}
	return info, nil
}

// Upload imports an image streamed in body (e.g. `dd if=/dev/sda | gale
// image import - --format raw`). The stream is written to the work area
// first (qemu-img needs a seekable file), at most maxBytes of it; then the
// import runs as an operation like Import's. The upload itself happens
// before Upload returns.
func (s *Service) Upload(ctx context.Context, req api.ImportImageRequest, body io.Reader, maxBytes int64) (api.Operation, error) {
	req.Path = ""
	if err := s.checkImport(&req, true); err != nil {
		return api.Operation{}, err
	}
	if maxBytes <= 0 {
		maxBytes = inspect.DefaultMaxVirtualSize
	}
	// The upload happens while the operation is prepared: it holds the
	// name, and the client sees the upload stage.
	var (
		tmp, src string
		f        *os.File
		n        int64
		sum      string
		info     inspect.Report
	)
	prepare := func(ctx context.Context, op *operation.Op) (err error) {
		if err := s.checkImportFree(req.Name); err != nil {
			return err
		}
		if tmp, err = s.cfg.Store.TempDir("upload-" + req.Name); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				if f != nil {
					f.Close()
				}
				os.RemoveAll(tmp)
			}
		}()
		op.Stage(StageUpload, "")
		src = filepath.Join(tmp, "source")
		if n, sum, err = receive(ctx, body, src, maxBytes); err != nil {
			return err
		}
		if f, err = os.Open(src); err != nil {
			return err
		}
		info, err = s.inspect(ctx, src, req.Format, "stdin")
		return err
	}
	op, err := s.run(ctx, operation.KindImport, req.Name, func(ctx context.Context, op *operation.Op) (string, error) {
		defer os.RemoveAll(tmp)
		defer f.Close()
		return "", s.runImport(ctx, op, req, f, src, info, n, sum, "stdin", nil)
	}, operation.Prepare(prepare))
	if err != nil {
		return api.Operation{}, err
	}
	return op.Info(), nil
}

// receive writes body to dst (new, 0600, sparse over zero blocks) and
// returns its length and sha256. More than maxBytes is an error.
func receive(ctx context.Context, body io.Reader, dst string, maxBytes int64) (int64, string, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, "", fmt.Errorf("upload: %w", err)
	}
	defer out.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, "", fmt.Errorf("upload: %w", err)
		}
		k, rerr := io.ReadFull(body, buf)
		if k > 0 {
			if n+int64(k) > maxBytes {
				return 0, "", fmt.Errorf("%w: the stream is larger than the limit of %s", ErrInvalid, disk.HumanSize(maxBytes))
			}
			h.Write(buf[:k])
			if err := writeSparse(out, buf[:k], n); err != nil {
				return 0, "", fmt.Errorf("upload: %w", err)
			}
			n += int64(k)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return 0, "", fmt.Errorf("upload cut after %s: %w", disk.HumanSize(n), rerr)
		}
	}
	if n == 0 {
		return 0, "", fmt.Errorf("%w: the stream is empty", ErrInvalid)
	}
	if err := out.Truncate(n); err != nil {
		return 0, "", fmt.Errorf("upload: %w", err)
	}
	if err := out.Close(); err != nil {
		return 0, "", fmt.Errorf("upload: %w", err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeSparse writes p at off, skipping 64 KiB blocks that are all zero.
func writeSparse(f *os.File, p []byte, off int64) error {
	const block = 64 << 10
	for i := 0; i < len(p); i += block {
		end := min(i+block, len(p))
		if isZero(p[i:end]) {
			continue
		}
		if _, err := f.WriteAt(p[i:end], off+int64(i)); err != nil {
			return err
		}
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// runImport is the body of an import, after inspect passed it: convert,
// pre-flight (and prepare), record, publish. src is the path children open
// (an fd path for a caller's file); f is the open source. sum is the
// source's sha256 when already known. unchanged, when set, is called after
// the last read of the source and fails the import if the source changed.
// Everything it makes lives in a work directory until the final publish,
// which never replaces an existing image.
func (s *Service) runImport(ctx context.Context, op interface{ Stage(string, string) }, req api.ImportImageRequest, f *os.File, src string, info inspect.Report, size int64, sum, label string, unchanged func() error) error {
	ctx, cancel := context.WithCancel(ctx) // also stops the hash on failure
	defer cancel()
	op.Stage(StageInspect, fmt.Sprintf("%s, virtual size %s", req.Format, disk.HumanSize(info.VirtualSize)))
	for _, w := range info.Warnings {
		op.Stage(StageInspect, w)
	}
	tmp, err := s.cfg.Store.TempDir("import-" + req.Name)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// The source's sha256 is computed alongside the conversion.
	hashed := make(chan hashResult, 1)
	switch {
	case sum != "", req.NoChecksum:
		hashed <- hashResult{sum: sum}
	default:
		go func() { hashed <- hashFile(ctx, src) }()
	}

	qcow := filepath.Join(tmp, "image.qcow2")
	raw := filepath.Join(tmp, "image.raw")
	convert := func(from, format string) error {
		op.Stage(StageConvert, format+" to qcow2")
		last := -1
		return s.cfg.Disks.Convert(ctx, from, format, qcow, func(frac float64) {
			if pct := int(frac * 100); pct/5 != last/5 {
				last = pct
				op.Stage(StageConvert, fmt.Sprintf("%d%%", pct))
			}
		})
	}
	rec := imagestore.Record{
		Name: req.Name, Origin: imagestore.OriginImported, Source: label, SourceFormat: req.Format, SourceBytes: size,
		VirtualSize: info.VirtualSize, Boot: req.Boot,
	}
	if rec.Boot == "" {
		rec.Boot = "bios"
	}
	switch {
	case req.NoPreflight:
		if err := convert(src, req.Format); err != nil {
			return err
		}
	case req.Prepare:
		// Work on a raw copy (never the source), then convert that.
		if err := s.toRaw(ctx, src, req.Format, raw); err != nil {
			return err
		}
		op.Stage(StagePreflight, "")
		rep, err := preflight.Inspect(ctx, raw)
		if err != nil {
			return fmt.Errorf("pre-flight: %w", err)
		}
		op.Stage(StagePrepare, "")
		changes, err := preflight.Prepare(ctx, raw, rep)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		for _, c := range changes {
			op.Stage(StagePrepare, changeLine(c))
		}
		rec.Prepared = changes
		if rep, err = preflight.Inspect(ctx, raw); err != nil {
			return fmt.Errorf("pre-flight after prepare: %w", err)
		}
		rec.Preflight = rep
		if err := convert(raw, "raw"); err != nil {
			return err
		}
	default:
		if err := convert(src, req.Format); err != nil {
			return err
		}
		look := src
		if req.Format != "raw" || !isRegular(f) {
			op.Stage(StagePreflight, "raw copy")
			if err := s.toRaw(ctx, qcow, "qcow2", raw); err != nil {
				return err
			}
			look = raw
		}
		op.Stage(StagePreflight, "")
		rep, err := preflight.Inspect(ctx, look)
		if err != nil {
			return fmt.Errorf("pre-flight: %w", err)
		}
		rec.Preflight = rep
	}
	_ = os.Remove(raw)
	if rep := rec.Preflight; rep != nil {
		rec.OS = rep.OS
		for _, fd := range rep.Findings {
			if fd.Severity != "ok" {
				op.Stage(StagePreflight, fmt.Sprintf("%s %s: %s", fd.Severity, fd.Check, fd.Detail))
			}
		}
	}
	rec.Readiness, rec.ReadyPort = readiness(rec.Preflight, req.ReadyPort)
	h := <-hashed
	if h.err != nil {
		return fmt.Errorf("checksum of %s: %w", label, h.err)
	}
	if unchanged != nil {
		if err := unchanged(); err != nil {
			return err
		}
	}
	rec.SourceSHA256 = h.sum
	rec.CreatedAt = time.Now().UTC()

	op.Stage(StagePublish, "")
	dst := s.cfg.Store.ImportedPath(req.Name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("imported images directory: %w", err)
	}
	if err := imagestore.WriteRecord(dst, rec); err != nil {
		return err
	}
	if err := imagestore.Publish(qcow, dst); err != nil {
		_ = os.Remove(imagestore.RecordPath(dst))
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %q was imported meanwhile", ErrExists, req.Name)
		}
		return err
	}
	op.Stage(StagePresent, fmt.Sprintf("%s, readiness %s", dst, rec.Readiness))
	return nil
}

// readiness picks how VMs from an imported image are judged ready: by the
// TCP port the user named, else by cloud-init if the image has it, else by
// its guest agent, else by the domain running.
func readiness(rep *preflight.Report, port int) (string, int) {
	switch {
	case port > 0:
		return vm.ReadyTCP, port
	case rep == nil:
		return vm.ReadyBoot, 0
	case rep.CloudInit:
		return vm.ReadyCloudInit, 0
	case rep.GuestAgent:
		return vm.ReadyAgent, 0
	}
	return vm.ReadyBoot, 0
}

func changeLine(c preflight.Change) string {
	state := "changed"
	if !c.Applied {
		state = "not changed"
	}
	return fmt.Sprintf("%s %s: %s", state, c.Check, c.Detail)
}

func isRegular(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular()
}

type hashResult struct {
	sum string
	err error
}

// hashFile returns the sha256 of the file at path.
func hashFile(ctx context.Context, path string) hashResult {
	f, err := os.Open(path)
	if err != nil {
		return hashResult{err: err}
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return hashResult{err: err}
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return hashResult{sum: hex.EncodeToString(h.Sum(nil))}
		}
		if err != nil {
			return hashResult{err: err}
		}
	}
}

// toRaw writes a sparse raw copy of src (format, never probed) at dst,
// which must not exist; on failure dst is removed.
func (s *Service) toRaw(ctx context.Context, src, format, dst string) error {
	opts := disk.ConvertOptions{OutputFormat: disk.FormatRaw}
	if err := s.cfg.Disks.ConvertWithOptions(ctx, src, format, dst, opts, nil); err != nil {
		return fmt.Errorf("raw copy for pre-flight: %w", err)
	}
	return nil
}
