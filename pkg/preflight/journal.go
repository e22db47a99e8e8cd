package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// lseek whence values for sparse files (Linux).
const (
	seekData = 3
	seekHole = 4
)

// replayJournal replays the journal of the ext filesystem at e (left
// unreplayed by an unclean shutdown or by imaging a running server), so
// that it can be edited safely. e2fsprogs 1.47.0 drops the ?offset= option
// when e2fsck reopens the filesystem after a replay, so e2fsck works on a
// sparse copy of the partition, made next to the image, and the copy's
// data is written back. Only blocks holding data are copied either way.
func replayJournal(ctx context.Context, e *extFS, size int64) error {
	img, err := os.OpenFile(e.image, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open image: %w", err)
	}
	defer func() { _ = img.Close() }()
	tmp, err := os.CreateTemp(filepath.Dir(e.image), ".gale-journal-*.img")
	if err != nil {
		return fmt.Errorf("copy of partition %d: %w", e.part, err)
	}
	defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
	if err := tmp.Truncate(size); err != nil {
		return fmt.Errorf("copy of partition %d: %w", e.part, err)
	}
	if err := copyExtents(ctx, tmp, 0, img, e.offset, size); err != nil {
		return fmt.Errorf("copy partition %d out: %w", e.part, err)
	}
	if _, stderr, err := runTool(ctx, nil, 1<<20, "e2fsck", "-E", "journal_only", "-y", tmp.Name()); err != nil {
		var exit *exec.ExitError
		// Exit status 1 means "errors corrected": the journal was replayed.
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return fmt.Errorf("replay journal of partition %d: %w: %s", e.part, err, firstLine(stderr))
		}
	}
	if err := copyExtents(ctx, img, e.offset, tmp, 0, size); err != nil {
		return fmt.Errorf("copy partition %d back (the image may be inconsistent): %w", e.part, err)
	}
	if err := img.Sync(); err != nil {
		return fmt.Errorf("sync image: %w", err)
	}
	s, err := readExtSuper(img, e.offset)
	if err != nil {
		return err
	}
	if s.needsRecovery() {
		return fmt.Errorf("partition %d still needs journal recovery after e2fsck", e.part)
	}
	e.super = s
	return nil
}

// copyExtents copies the data regions of src[srcOff, srcOff+size) to dst
// at dstOff, skipping holes.
func copyExtents(ctx context.Context, dst *os.File, dstOff int64, src *os.File, srcOff, size int64) error {
	end := srcOff + size
	buf := make([]byte, 1<<20)
	for off := srcOff; off < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := src.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			return nil // no data after off
		}
		if err != nil {
			return fmt.Errorf("find data: %w", err)
		}
		if data >= end {
			return nil
		}
		hole, err := src.Seek(data, seekHole)
		if err != nil {
			return fmt.Errorf("find hole: %w", err)
		}
		if hole > end {
			hole = end
		}
		r := io.NewSectionReader(src, data, hole-data)
		w := io.NewOffsetWriter(dst, dstOff+data-srcOff)
		if _, err := io.CopyBuffer(w, r, buf); err != nil {
			return err
		}
		off = hole
	}
	return nil
}
