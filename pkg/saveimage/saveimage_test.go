package saveimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const (
	testXML    = "<domain type='qemu'><name>vm1</name><uuid>00000000-0000-0000-0000-000000000001</uuid></domain>"
	testCookie = "<qemuDomainSaveCookie><cpu mode='custom'/></qemuDomainSaveCookie>"
)

// rawImage encodes a save image field by field, exactly as given: nothing is
// computed or checked, so tests can build broken images.
func rawImage(magic string, h Header, data, stream []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(data)+len(stream))
	copy(b, magic)
	ne := binary.NativeEndian
	ne.PutUint32(b[offVersion:], h.Version)
	ne.PutUint32(b[offDataLen:], h.DataLen)
	ne.PutUint32(b[offWasRunning:], h.WasRunning)
	ne.PutUint32(b[offFormat:], h.Format)
	ne.PutUint32(b[offCookieOffset:], h.CookieOffset)
	b = append(b, data...)
	return append(b, stream...)
}

// testStream returns a fake migration stream of n bytes (n >= 8): the QEVM
// magic, version 3, then a byte pattern that is not all zero.
func testStream(n int) []byte {
	s := make([]byte, n)
	copy(s, streamMagic)
	binary.BigEndian.PutUint32(s[4:], streamVersion)
	for i := streamHeadLen; i < n; i++ {
		s[i] = byte(i*7 + i>>8)
	}
	return s
}

// imageOpts describes a valid image for buildImage.
type imageOpts struct {
	xml        string
	cookie     *string // nil: no cookie
	wasRunning uint32
	pad        int
	stream     []byte
}

// buildImage encodes a valid save image as libvirt writes it.
func buildImage(o imageOpts) []byte {
	data := append([]byte(o.xml), 0)
	var cookieOff uint32
	if o.cookie != nil {
		cookieOff = uint32(len(data))
		data = append(data, *o.cookie...)
		data = append(data, 0)
	}
	data = append(data, make([]byte, o.pad)...)
	h := Header{Version: 2, DataLen: uint32(len(data)), WasRunning: o.wasRunning, CookieOffset: cookieOff}
	return rawImage(magicSave, h, data, o.stream)
}

func strp(s string) *string { return &s }

// validImage is a small valid image with a cookie, 64 bytes of padding and a
// 100-byte stream.
func validImage() []byte {
	return buildImage(imageOpts{xml: testXML, cookie: strp(testCookie), wasRunning: 1, pad: 64, stream: testStream(100)})
}

// writeFile writes b into a new file in a temporary directory.
func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func put32(b []byte, off int, v uint32) []byte {
	binary.NativeEndian.PutUint32(b[off:], v)
	return b
}

func readBytes(b []byte) (*Image, error) {
	return Read(bytes.NewReader(b), int64(len(b)))
}

func TestReadValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    imageOpts
	}{
		{"cookie running", imageOpts{xml: testXML, cookie: strp(testCookie), wasRunning: 1, pad: RewritePadding, stream: testStream(4096)}},
		{"cookie paused", imageOpts{xml: testXML, cookie: strp(testCookie), wasRunning: 0, pad: 10, stream: testStream(8)}},
		{"no cookie", imageOpts{xml: testXML, wasRunning: 1, pad: RewritePadding, stream: testStream(100)}},
		{"no padding", imageOpts{xml: testXML, cookie: strp(testCookie), stream: testStream(9)}},
		{"empty cookie", imageOpts{xml: "x", cookie: strp(""), pad: 3, stream: testStream(8)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := buildImage(tc.o)
			im, err := readBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			if string(im.XML) != tc.o.xml {
				t.Errorf("XML = %q, want %q", im.XML, tc.o.xml)
			}
			if tc.o.cookie == nil {
				if im.Cookie != nil || im.Header.CookieOffset != 0 {
					t.Errorf("Cookie = %q (offset %d), want nil", im.Cookie, im.Header.CookieOffset)
				}
			} else {
				if im.Cookie == nil || string(im.Cookie) != *tc.o.cookie {
					t.Errorf("Cookie = %q, want %q", im.Cookie, *tc.o.cookie)
				}
				if im.Header.CookieOffset != uint32(len(tc.o.xml)+1) {
					t.Errorf("CookieOffset = %d, want %d", im.Header.CookieOffset, len(tc.o.xml)+1)
				}
			}
			if im.Header.Version != 2 || im.Header.Format != 0 || im.Header.WasRunning != tc.o.wasRunning {
				t.Errorf("Header = %+v", im.Header)
			}
			if want := int64(len(b) - len(tc.o.stream)); im.StreamOffset != want || im.StreamOffset != HeaderSize+int64(im.Header.DataLen) {
				t.Errorf("StreamOffset = %d, want %d", im.StreamOffset, want)
			}
			if im.Size != int64(len(b)) || im.StreamLen() != int64(len(tc.o.stream)) {
				t.Errorf("Size = %d, StreamLen = %d; want %d, %d", im.Size, im.StreamLen(), len(b), len(tc.o.stream))
			}
			// XML and Cookie share the data buffer: appending to XML
			// must not clobber the cookie.
			_ = append(im.XML, "garbage"...)
			if tc.o.cookie != nil && string(im.Cookie) != *tc.o.cookie {
				t.Errorf("appending to XML changed Cookie to %q", im.Cookie)
			}
		})
	}
}

func TestReadRefusals(t *testing.T) {
	valid := validImage()
	im, err := readBytes(valid)
	if err != nil {
		t.Fatal(err)
	}
	streamOff := int(im.StreamOffset)
	xmlEnd := HeaderSize + len(testXML) // offset of the XML's NUL
	cookieStart := xmlEnd + 1
	vcopy := func() []byte { return bytes.Clone(valid) }
	data := func(d []byte, cookieOff uint32) []byte {
		return rawImage(magicSave, Header{Version: 2, DataLen: uint32(len(d)), CookieOffset: cookieOff}, d, testStream(16))
	}

	tests := []struct {
		name string
		b    []byte
		want string // substring of the error
	}{
		{"empty file", nil, "too short"},
		{"15 bytes", valid[:15], "too short"},
		{"garbage", bytes.Repeat([]byte("x"), 200), "bad magic"},
		{"qcow2", append([]byte("QFI\xfb"), make([]byte, 200)...), "bad magic"},
		{"unfinished", append([]byte(magicPart), valid[magicLen:]...), "unfinished"},
		{"unfinished short", []byte(magicPart), "unfinished"},
		{"truncated in magic", valid[:10], "too short"},
		{"truncated after magic", valid[:16], "header truncated"},
		{"truncated in header 20", valid[:20], "header truncated"},
		{"truncated in header 50", valid[:50], "header truncated"},
		{"truncated in header 91", valid[:91], "header truncated"},
		{"version 0", put32(vcopy(), offVersion, 0), "unsupported save-image version 0"},
		{"version 1", put32(vcopy(), offVersion, 1), "unsupported save-image version 1"},
		{"version 3", put32(vcopy(), offVersion, 3), "unsupported save-image version 3"},
		{"byte-swapped", byteSwapHeader(vcopy()), "foreign byte order"},
		{"was_running 2", put32(vcopy(), offWasRunning, 2), "was_running 2"},
		{"gzip", put32(vcopy(), offFormat, 1), "compressed with gzip"},
		{"bzip2", put32(vcopy(), offFormat, 2), "compressed with bzip2"},
		{"xz", put32(vcopy(), offFormat, 3), "compressed with xz"},
		{"lzop", put32(vcopy(), offFormat, 4), "compressed with lzop"},
		{"zstd", put32(vcopy(), offFormat, 5), "compressed with zstd"},
		{"sparse", put32(vcopy(), offFormat, 6), "format 6 (sparse)"},
		{"unknown format", put32(vcopy(), offFormat, 99), "format 99 (unknown)"},
		{"data_len absurd", put32(vcopy(), offDataLen, MaxDataLen+1), "exceeds"},
		{"data_len max uint32", put32(vcopy(), offDataLen, ^uint32(0)), "exceeds"},
		{"data_len beyond EOF", put32(vcopy(), offDataLen, uint32(len(valid))), "beyond the end"},
		{"truncated in XML", valid[:HeaderSize+10], "beyond the end"},
		{"truncated in padding", valid[:streamOff-1], "beyond the end"},
		{"data_len 0", data(nil, 0), "not NUL-terminated"},
		{"XML not NUL-terminated", data([]byte("<domain/>"), 0), "not NUL-terminated"},
		{"XML empty", data([]byte("\x00<domain/>\x00"), 0), "XML is empty"},
		{"XML empty all zero", data(make([]byte, 100), 0), "XML is empty"},
		{"cookieOffset too small", put32(vcopy(), offCookieOffset, uint32(len(testXML))), "cookie offset"},
		{"cookieOffset too large", put32(vcopy(), offCookieOffset, uint32(len(testXML)+2)), "cookie offset"},
		{"cookieOffset beyond data", put32(vcopy(), offCookieOffset, 1<<20), "cookie offset"},
		{"cookieOffset at data end", data([]byte("<d/>\x00"), 5), "not NUL-terminated"},
		{"cookie not NUL-terminated", data([]byte("<d/>\x00<c/>"), 5), "cookie at offset 5 is not NUL-terminated"},
		{"cookie without cookieOffset", put32(vcopy(), offCookieOffset, 0), "non-zero byte"},
		{"padding after XML", data([]byte("<d/>\x00\x00\x00x\x00"), 0), "non-zero byte 0x78 in the padding at data offset 7"},
		{"padding after cookie", setByte(vcopy(), streamOff-1, 1), "non-zero byte 0x01"},
		{"NUL inside cookie", setByte(vcopy(), cookieStart+3, 0), "non-zero byte"},
		{"NUL inside XML", setByte(vcopy(), HeaderSize+5, 0), "cookie offset"},
		{"zero-length stream", valid[:streamOff], "no migration stream"},
		{"stream 4 bytes", valid[:streamOff+4], "stream truncated to 4"},
		{"stream 7 bytes", valid[:streamOff+7], "stream truncated to 7"},
		{"stream bad magic", setByte(vcopy(), streamOff, 'X'), "not \"QEVM\""},
		{"stream zeros", append(bytes.Clone(valid[:streamOff]), make([]byte, 64)...), "not \"QEVM\""},
		{"stream version 2", setByte(vcopy(), streamOff+7, 2), "migration stream version 2"},
		{"stream little-endian version", put32LE(vcopy(), streamOff+4, 3), "migration stream version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := readBytes(tc.b)
			if err == nil {
				t.Fatalf("Read accepted it: %+v", im)
			}
			t.Log(err)
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %q does not wrap ErrFormat", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if im != nil {
				t.Errorf("Read returned an image with its error")
			}
		})
	}
}

func setByte(b []byte, off int, v byte) []byte { b[off] = v; return b }

func put32LE(b []byte, off int, v uint32) []byte {
	binary.LittleEndian.PutUint32(b[off:], v)
	return b
}

// byteSwapHeader swaps the header's numeric fields, as if the image had been
// written on a host of the other byte order.
func byteSwapHeader(b []byte) []byte {
	ne := binary.NativeEndian
	for off := offVersion; off < HeaderSize; off += 4 {
		ne.PutUint32(b[off:], bits.ReverseBytes32(ne.Uint32(b[off:])))
	}
	return b
}

// errReaderAt fails every read beyond the header with err.
type errReaderAt struct {
	b   []byte
	err error
}

func (r errReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= HeaderSize {
		return 0, r.err
	}
	return bytes.NewReader(r.b).ReadAt(p, off)
}

func TestReadIOError(t *testing.T) {
	b := validImage()
	eio := errors.New("input/output error")
	_, err := Read(errReaderAt{b, eio}, int64(len(b)))
	if !errors.Is(err, eio) || errors.Is(err, ErrFormat) {
		t.Fatalf("err = %v, want the I/O error, not ErrFormat", err)
	}
}

func TestReadSizeBeyondReader(t *testing.T) {
	// size claims more than r holds: r ending early, within what Read
	// reads, is a truncated file. (Read does not look past the stream's
	// first 8 bytes, so it cannot notice a shortfall beyond them.)
	b := validImage()
	streamOff := len(b) - 100
	for _, cut := range []int{50, HeaderSize + 20, streamOff - 1, streamOff, streamOff + 4} {
		_, err := Read(bytes.NewReader(b[:cut]), int64(len(b)))
		if !errors.Is(err, ErrFormat) {
			t.Errorf("cut at %d: err = %v, want ErrFormat", cut, err)
		}
	}
	if _, err := Read(bytes.NewReader(b), -1); err == nil {
		t.Error("negative size accepted")
	}
}

// countingReaderAt records what is read from it.
type countingReaderAt struct {
	r       io.ReaderAt
	total   int64
	largest int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.total += int64(len(p))
	c.largest = max(c.largest, len(p))
	return c.r.ReadAt(p, off)
}

func TestReadReadsOnlyHeaderDataAndStreamHead(t *testing.T) {
	b := buildImage(imageOpts{xml: testXML, cookie: strp(testCookie), pad: RewritePadding, stream: testStream(1 << 20)})
	c := &countingReaderAt{r: bytes.NewReader(b)}
	im, err := Read(c, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if want := im.StreamOffset + streamHeadLen; c.total != want {
		t.Errorf("read %d bytes, want %d", c.total, want)
	}

	// A huge claimed data_len is refused before anything is allocated or
	// read for it.
	b = put32(bytes.Clone(b), offDataLen, MaxDataLen+1)
	c = &countingReaderAt{r: bytes.NewReader(b)}
	if _, err := Read(c, 1<<40); !errors.Is(err, ErrFormat) {
		t.Fatalf("err = %v, want ErrFormat", err)
	}
	if c.total != HeaderSize {
		t.Errorf("read %d bytes for a refused data_len, want only the header", c.total)
	}
}

func TestOpen(t *testing.T) {
	b := validImage()
	p := writeFile(t, "img.save", b)
	im, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(im.XML) != testXML || string(im.Cookie) != testCookie || im.Size != int64(len(b)) {
		t.Errorf("Open = %+v", im)
	}

	// Through a symlink to a regular file is fine.
	l := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(p, l); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(l); err != nil {
		t.Errorf("Open(symlink) = %v", err)
	}

	if _, err := Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open(dir) = %v, want ErrFormat", err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fifo); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open(fifo) = %v, want ErrFormat", err)
	}
	bad := writeFile(t, "bad.save", b[:HeaderSize+3])
	if _, err := Open(bad); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Open(truncated) = %v, want ErrFormat naming the file", err)
	}
}

func FuzzRead(f *testing.F) {
	valid := validImage()
	f.Add(valid)
	f.Add(buildImage(imageOpts{xml: "<d/>", pad: 3, stream: testStream(8)}))
	f.Add(buildImage(imageOpts{xml: testXML, cookie: strp(""), wasRunning: 1, stream: testStream(20)}))
	for _, n := range []int{0, 10, 16, 50, 91, HeaderSize, HeaderSize + 20, len(valid) - 100, len(valid) - 96, len(valid) - 93, len(valid) - 1} {
		f.Add(valid[:n])
	}
	f.Add(append([]byte(magicPart), valid[magicLen:]...))
	f.Add(byteSwapHeader(bytes.Clone(valid)))

	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := readBytes(b)
		if err != nil {
			// bytes.Reader has no I/O errors: every failure is a refusal.
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			if im != nil {
				t.Fatal("image returned with an error")
			}
			return
		}
		h := im.Header
		if im.StreamOffset != HeaderSize+int64(h.DataLen) {
			t.Fatalf("StreamOffset %d != %d+%d", im.StreamOffset, HeaderSize, h.DataLen)
		}
		if len(im.XML) == 0 || bytes.IndexByte(im.XML, 0) >= 0 || bytes.IndexByte(im.Cookie, 0) >= 0 {
			t.Fatalf("bad XML %q or cookie %q", im.XML, im.Cookie)
		}
		if h.Version != 2 || h.Format != 0 || h.WasRunning > 1 || h.DataLen > MaxDataLen {
			t.Fatalf("bad header %+v", h)
		}
		if (im.Cookie == nil) != (h.CookieOffset == 0) {
			t.Fatalf("cookie %q with offset %d", im.Cookie, h.CookieOffset)
		}
		if im.Size != int64(len(b)) || im.StreamLen() < streamHeadLen || string(b[im.StreamOffset:im.StreamOffset+4]) != streamMagic {
			t.Fatalf("bad stream: size %d, offset %d", im.Size, im.StreamOffset)
		}
		if string(b[:magicLen]) != magicSave {
			t.Fatalf("accepted magic %q", b[:magicLen])
		}
		// The data is exactly XML, NUL, [cookie, NUL,] zeros.
		d := append(bytes.Clone(im.XML), 0)
		if im.Cookie != nil {
			d = append(append(d, im.Cookie...), 0)
		}
		if len(d) > int(h.DataLen) {
			t.Fatalf("XML and cookie (%d bytes) exceed data_len %d", len(d), h.DataLen)
		}
		d = append(d, make([]byte, int(h.DataLen)-len(d))...)
		if !bytes.Equal(d, b[HeaderSize:im.StreamOffset]) {
			t.Fatal("data does not re-encode to the input")
		}
	})
}
