package fetch

import (
	"bytes"
	"os"
)

// sparseBlock is the granularity at which all-zero output is skipped.
const sparseBlock = 64 << 10

var zeroBlock = make([]byte, sparseBlock)

// sparseWriter writes to a file, leaving holes for aligned blocks of
// sparseBlock zero bytes. Close must be called to write the last block and
// set the file's size.
type sparseWriter struct {
	f   *os.File
	off int64  // file offset of buf[0]
	buf []byte // the current, not yet written block
}

func newSparseWriter(f *os.File) *sparseWriter {
	return &sparseWriter{f: f, buf: make([]byte, 0, sparseBlock)}
}

// Write buffers p, writing out each completed block unless it is all zero.
func (w *sparseWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(w.buf) == 0 && len(p) >= sparseBlock {
			// A whole block straight from p, no copy.
			if err := w.flush(p[:sparseBlock]); err != nil {
				return n - len(p), err
			}
			p = p[sparseBlock:]
			continue
		}
		c := copy(w.buf[len(w.buf):sparseBlock], p)
		w.buf = w.buf[:len(w.buf)+c]
		p = p[c:]
		if len(w.buf) == sparseBlock {
			if err := w.flush(w.buf); err != nil {
				return n - len(p), err
			}
			w.buf = w.buf[:0]
		}
	}
	return n, nil
}

// flush writes block at w.off unless it is all zero, and advances w.off.
func (w *sparseWriter) flush(block []byte) error {
	if !bytes.Equal(block, zeroBlock[:len(block)]) {
		if _, err := w.f.WriteAt(block, w.off); err != nil {
			return err
		}
	}
	w.off += int64(len(block))
	return nil
}

// Close writes the partial last block and sets the file's size, so that
// trailing holes count. It does not close the file.
func (w *sparseWriter) Close() error {
	if len(w.buf) > 0 {
		if err := w.flush(w.buf); err != nil {
			return err
		}
		w.buf = w.buf[:0]
	}
	return w.f.Truncate(w.off)
}
