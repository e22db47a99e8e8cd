package saveimage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// copyChunk is how much of the migration stream Rewrite copies between two
// checks of its context. A variable so that tests can make it small.
var copyChunk int64 = 64 << 20

// Rewrite writes a new save image dst that is src with its domain XML
// replaced by xml.
//
// src is first validated as by Open and is only ever read. xml must be
// non-empty and contain no NUL byte, and the new data (XML, cookie and
// padding) must fit in MaxDataLen. dst must not exist: it is created with
// O_EXCL and mode 0600 (before umask), so an existing file or symlink is
// never overwritten or followed.
//
// dst gets a header with src's version, was_running and format, data_len and
// cookieOffset recomputed; then xml and a NUL, src's save cookie and a NUL
// (if src has one), RewritePadding zero bytes, and src's migration stream
// copied unchanged. The stream is copied file to file with io.CopyN onto
// dst's (*os.File).ReadFrom, so on Linux it goes through copy_file_range
// (reflinks or in-kernel copies, no user-space buffer), in pieces of 64 MiB
// with ctx checked before each one. Like libvirt, Rewrite writes the header
// with the unfinished magic ("LibvirtQemudPart") first and sets the finished
// magic only once the stream has been copied and dst's size checked against
// header + data_len + stream length, so a dst left behind by a crash is
// refused by libvirt and by Read. dst is not fsynced; a caller that needs it
// durable must sync it (and its directory) itself.
//
// On any error, including ctx being cancelled, the partial dst is removed
// (a dst that existed beforehand is never touched).
func Rewrite(ctx context.Context, src, dst string, xml []byte) (err error) {
	if len(xml) == 0 {
		return fmt.Errorf("saveimage: rewrite %s: new domain XML is empty", src)
	}
	if i := bytes.IndexByte(xml, 0); i >= 0 {
		return fmt.Errorf("saveimage: rewrite %s: new domain XML contains a NUL byte at offset %d", src, i)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("saveimage: rewrite %s: %w", src, err)
	}

	sf, im, err := openImage(src)
	if err != nil {
		return fmt.Errorf("saveimage: rewrite to %s: source %w", dst, err)
	}
	defer sf.Close()

	dataLen := int64(len(xml)) + 1 + RewritePadding
	if im.Cookie != nil {
		dataLen += int64(len(im.Cookie)) + 1
	}
	if dataLen > MaxDataLen {
		return fmt.Errorf("saveimage: rewrite %s: new domain XML (%d bytes) too large: data would be %d bytes, limit %d", src, len(xml), dataLen, MaxDataLen)
	}

	head := make([]byte, HeaderSize, int64(HeaderSize)+dataLen)
	copy(head, magicPart)
	ne := binary.NativeEndian
	ne.PutUint32(head[offVersion:], im.Header.Version)
	ne.PutUint32(head[offDataLen:], uint32(dataLen))
	ne.PutUint32(head[offWasRunning:], im.Header.WasRunning)
	ne.PutUint32(head[offFormat:], im.Header.Format)
	head = append(head, xml...)
	head = append(head, 0)
	if im.Cookie != nil {
		ne.PutUint32(head[offCookieOffset:], uint32(len(xml)+1))
		head = append(head, im.Cookie...)
		head = append(head, 0)
	}
	head = head[:cap(head)] // the padding: make zeroed the whole capacity
	streamOff := int64(len(head))
	streamLen := im.StreamLen()

	df, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("saveimage: rewrite %s: %w", src, err)
	}
	defer func() {
		if err != nil {
			df.Close()
			if rerr := os.Remove(dst); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = fmt.Errorf("%w (and removing the partial %s: %v)", err, dst, rerr)
			}
		}
	}()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("saveimage: rewrite %s to %s: "+format, append([]any{src, dst}, args...)...)
	}

	if _, err := df.Write(head); err != nil {
		return fail("write header: %w", err)
	}
	if _, err := sf.Seek(im.StreamOffset, io.SeekStart); err != nil {
		return fail("seek to migration stream: %w", err)
	}
	for remain := streamLen; remain > 0; {
		if err := ctx.Err(); err != nil {
			return fail("%w", err)
		}
		n, err := io.CopyN(df, sf, min(remain, copyChunk))
		remain -= n
		if errors.Is(err, io.EOF) {
			return fail("source ended %d bytes early: it changed during the copy", remain)
		}
		if err != nil {
			return fail("copy migration stream: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fail("%w", err)
	}

	sst, err := sf.Stat()
	if err != nil {
		return fail("stat source: %w", err)
	}
	if sst.Size() != im.Size {
		return fail("source changed size during the copy (%d bytes, then %d)", im.Size, sst.Size())
	}
	dstSt, err := df.Stat()
	if err != nil {
		return fail("stat: %w", err)
	}
	if want := streamOff + streamLen; dstSt.Size() != want {
		return fail("wrote %d bytes, want %d (header+data %d, stream %d)", dstSt.Size(), want, streamOff, streamLen)
	}
	if _, err := df.WriteAt([]byte(magicSave), 0); err != nil {
		return fail("mark finished: %w", err)
	}
	if err := df.Close(); err != nil {
		return fail("close: %w", err)
	}
	return nil
}
