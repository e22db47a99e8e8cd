package saveimage

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestRewriteRoundTrip(t *testing.T) {
	newXML := []byte("<domain type='qemu'><name>vm2</name><uuid>00000000-0000-0000-0000-000000000002</uuid>" +
		strings.Repeat("<!-- bigger than the old padding -->", 4000) + "</domain>")
	for _, tc := range []struct {
		name string
		o    imageOpts
		xml  []byte
	}{
		{"cookie running", imageOpts{xml: testXML, cookie: strp(testCookie), wasRunning: 1, pad: RewritePadding, stream: testStream(3<<20 + 17)}, []byte("<domain><name>vm2</name></domain>")},
		{"no cookie paused", imageOpts{xml: testXML, wasRunning: 0, pad: 5, stream: testStream(8)}, []byte("<d/>")},
		{"empty cookie", imageOpts{xml: testXML, cookie: strp(""), wasRunning: 1, stream: testStream(1000)}, []byte("<d/>")},
		{"XML larger than old padding", imageOpts{xml: testXML, cookie: strp(testCookie), wasRunning: 1, pad: 10, stream: testStream(1 << 16)}, newXML},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcBytes := buildImage(tc.o)
			src := writeFile(t, "src.save", srcBytes)
			dst := filepath.Join(t.TempDir(), "dst.save")
			if err := Rewrite(t.Context(), src, dst, tc.xml); err != nil {
				t.Fatal(err)
			}

			if got, err := os.ReadFile(src); err != nil || !bytes.Equal(got, srcBytes) {
				t.Fatalf("source changed (err %v)", err)
			}
			st, err := os.Stat(dst)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("dst mode %v, want 0600", st.Mode().Perm())
			}
			im, err := Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(im.XML, tc.xml) {
				t.Errorf("XML = %.100q, want %.100q", im.XML, tc.xml)
			}
			if tc.o.cookie == nil {
				if im.Cookie != nil || im.Header.CookieOffset != 0 {
					t.Errorf("Cookie = %q at %d, want none", im.Cookie, im.Header.CookieOffset)
				}
			} else if im.Cookie == nil || string(im.Cookie) != *tc.o.cookie || im.Header.CookieOffset != uint32(len(tc.xml)+1) {
				t.Errorf("Cookie = %q at %d, want %q at %d", im.Cookie, im.Header.CookieOffset, *tc.o.cookie, len(tc.xml)+1)
			}
			if im.Header.WasRunning != tc.o.wasRunning || im.Header.Version != 2 || im.Header.Format != 0 {
				t.Errorf("Header = %+v", im.Header)
			}
			wantData := len(tc.xml) + 1 + RewritePadding
			if tc.o.cookie != nil {
				wantData += len(*tc.o.cookie) + 1
			}
			if im.Header.DataLen != uint32(wantData) {
				t.Errorf("DataLen = %d, want %d", im.Header.DataLen, wantData)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[im.StreamOffset:], tc.o.stream) {
				t.Error("stream differs from the source's")
			}
			if !bytes.Equal(got[HeaderSize-14*4:HeaderSize], make([]byte, 14*4)) {
				t.Error("unused header words are not zero")
			}
		})
	}
}

func TestRewriteDstExists(t *testing.T) {
	src := writeFile(t, "src.save", validImage())
	dir := t.TempDir()
	dst := filepath.Join(dir, "dst.save")
	if err := os.WriteFile(dst, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Rewrite(t.Context(), src, dst, []byte("<d/>"))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want ErrExist", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "precious" {
		t.Errorf("dst changed to %q", got)
	}

	// A dangling symlink is not followed either.
	link := filepath.Join(dir, "link.save")
	target := filepath.Join(dir, "target")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := Rewrite(t.Context(), src, link, []byte("<d/>")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want ErrExist", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("symlink target created (%v)", err)
	}

	// src == dst is the same case.
	if err := Rewrite(t.Context(), src, src, []byte("<d/>")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want ErrExist", err)
	}
}

func TestRewriteRefusals(t *testing.T) {
	good := writeFile(t, "good.save", validImage())
	unfinished := writeFile(t, "part.save", append([]byte(magicPart), validImage()[magicLen:]...))
	big := bytes.Repeat([]byte("x"), MaxDataLen-RewritePadding)
	for _, tc := range []struct {
		name       string
		src        string
		xml        []byte
		want       string
		wantFormat bool
	}{
		{"empty XML", good, nil, "empty", false},
		{"NUL in XML", good, []byte("<d>\x00</d>"), "NUL byte at offset 3", false},
		{"XML too large", good, big, "too large", false},
		{"unfinished source", unfinished, []byte("<d/>"), "unfinished", true},
		{"missing source", filepath.Join(t.TempDir(), "nope"), []byte("<d/>"), "no such file", false},
		{"directory source", t.TempDir(), []byte("<d/>"), "not a regular file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst.save")
			err := Rewrite(t.Context(), tc.src, dst, tc.xml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if errors.Is(err, ErrFormat) != tc.wantFormat {
				t.Errorf("errors.Is(%v, ErrFormat) = %v", err, !tc.wantFormat)
			}
			if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("dst exists after a refusal (%v)", err)
			}
		})
	}
}

// countdownCtx is a context whose Err reports cancellation from its n+1th
// call on.
type countdownCtx struct {
	context.Context
	n atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestRewriteCancelled(t *testing.T) {
	old := copyChunk
	copyChunk = 4096
	t.Cleanup(func() { copyChunk = old })
	srcBytes := buildImage(imageOpts{xml: testXML, cookie: strp(testCookie), wasRunning: 1, pad: 100, stream: testStream(1 << 20)})
	src := writeFile(t, "src.save", srcBytes)

	// Cancelled before it starts, mid-copy (after 1 and 10 chunks), and
	// just before the end: dst never remains. Err is called once before dst
	// is created, then before each of the 256 chunks and once after.
	for _, allowed := range []int64{0, 2, 11, 257} {
		ctx := &countdownCtx{Context: context.Background()}
		ctx.n.Store(allowed)
		dst := filepath.Join(t.TempDir(), "dst.save")
		err := Rewrite(ctx, src, dst, []byte("<d/>"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("allowed %d: err = %v, want Canceled", allowed, err)
		}
		if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("allowed %d: dst remains (%v)", allowed, err)
		}
	}
	// With one more check allowed it completes.
	ctx := &countdownCtx{Context: context.Background()}
	ctx.n.Store(258)
	dst := filepath.Join(t.TempDir(), "dst.save")
	if err := Rewrite(ctx, src, dst, []byte("<d/>")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dst); err != nil {
		t.Fatal(err)
	}

	ctx2, cancel := context.WithCancel(t.Context())
	cancel()
	dst = filepath.Join(t.TempDir(), "dst.save")
	if err := Rewrite(ctx2, src, dst, []byte("<d/>")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	if got, err := os.ReadFile(src); err != nil || !bytes.Equal(got, srcBytes) {
		t.Fatalf("source changed (err %v)", err)
	}
}
