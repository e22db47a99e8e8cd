package testimage

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
)

// A sparse encoding describes an image file compactly, so that a real image
// of a few MiB (a VHDX keeps its region table at 192 KiB and its metadata
// at 2 MiB, a GPT its backup header at the end of the disk) fits in a fuzz
// seed of a few hundred bytes:
//
//	size   uint32 LE            the file size, at most MaxSparseSize
//	extent off uint32 LE, n uint16 LE, n bytes   (repeated; the last may be cut)
//
// Bytes no extent covers are zero; later extents overwrite earlier ones;
// extents are clipped to the size.
const MaxSparseSize = 16 << 20

// Sparse is an io.ReaderAt over a decoded sparse image. It records every
// read so that a fuzz target can assert the code under test never reads
// outside the file.
type Sparse struct {
	// Size is the file size.
	Size int64
	// Extents are the non-zero parts, clipped to Size; later ones win.
	Extents []Extent

	mu        sync.Mutex
	reads     int64
	outOfFile string
}

// Extent is data at an offset of a Sparse file.
type Extent struct {
	Off  int64
	Data []byte
}

// DecodeSparse decodes a sparse image; it accepts every input.
func DecodeSparse(b []byte) *Sparse {
	f := &Sparse{}
	if len(b) < 4 {
		return f
	}
	f.Size = int64(min(binary.LittleEndian.Uint32(b), MaxSparseSize))
	b = b[4:]
	for len(b) >= 6 {
		off := int64(binary.LittleEndian.Uint32(b))
		n := int(binary.LittleEndian.Uint16(b[4:]))
		b = b[6:]
		n = min(n, len(b))
		data := b[:n]
		b = b[n:]
		if off >= f.Size {
			continue
		}
		if end := off + int64(len(data)); end > f.Size {
			data = data[:f.Size-off]
		}
		f.Extents = append(f.Extents, Extent{off, data})
	}
	return f
}

// EncodeSparse encodes an image's bytes, keeping its non-zero runs (runs
// closer than 16 bytes merged).
func EncodeSparse(img []byte) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(img)))
	for i := 0; i < len(img); {
		if img[i] == 0 {
			i++
			continue
		}
		j, zeros := i, 0
		for j < len(img) && j-i < 0xffff && zeros < 16 {
			if img[j] == 0 {
				zeros++
			} else {
				zeros = 0
			}
			j++
		}
		j -= zeros
		out = binary.LittleEndian.AppendUint32(out, uint32(i))
		out = binary.LittleEndian.AppendUint16(out, uint16(j-i))
		out = append(out, img[i:j]...)
		i = j
	}
	return out
}

// ReadAt implements io.ReaderAt like *os.File: reads past the end return
// io.EOF with what there is.
func (f *Sparse) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	f.reads += int64(len(p))
	if (off < 0 || off+int64(len(p)) > f.Size) && f.outOfFile == "" {
		f.outOfFile = fmt.Sprintf("read of %d bytes at offset %d of a %d-byte file", len(p), off, f.Size)
	}
	f.mu.Unlock()
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= f.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.Size-off))
	clear(p[:n])
	for _, e := range f.Extents {
		lo, hi := max(e.Off, off), min(e.Off+int64(len(e.Data)), off+int64(n))
		if lo < hi {
			copy(p[lo-off:hi-off], e.Data[lo-e.Off:hi-e.Off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// BytesRead returns how many bytes ReadAt was asked for in all.
func (f *Sparse) BytesRead() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// OutOfFile describes the first read that went outside the file, or is "".
func (f *Sparse) OutOfFile() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.outOfFile
}

// WriteFile writes the image to a new sparse file at path, with holes
// where no extent is.
func (f *Sparse) WriteFile(path string) error {
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	for _, e := range f.Extents {
		if _, err := w.WriteAt(e.Data, e.Off); err != nil {
			w.Close()
			return err
		}
	}
	if err := w.Truncate(f.Size); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// ResetReads forgets the reads recorded so far.
func (f *Sparse) ResetReads() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads, f.outOfFile = 0, ""
}
