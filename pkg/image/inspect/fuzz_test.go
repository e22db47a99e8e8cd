package inspect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/galevm/gale/pkg/internal/testimage"
)

// The header checks read hostile files: the fuzz targets below feed them
// sparse images (see testimage.DecodeSparse), VHD and VHDX ones also with
// their checksums corrected, and assert, beyond not panicking, that a check
//
//   - never reads outside the file, and reads at most a few times the
//     file's size in all (each table once);
//   - refuses only with a *RefusedError wrapping ErrRefused, for a reason a
//     header check can give (never "changed", "limits", ...);
//   - is deterministic;
//   - treats the size limit monotonically: lowering it can only add a
//     too-large refusal, and an accepted image's declared virtual size lies
//     in (0, MaxVirtualSize].
//
// The seed corpora in testdata/fuzz are real images made by qemu-img (see
// TestWriteFuzzSeeds).

// fuzzSmallLimit is the lower size limit each input is checked against too;
// the seed images are 1 MiB.
const fuzzSmallLimit = 512 << 10

// headerReasons are the reasons a header check may give.
var headerReasons = []Reason{
	ReasonFormat, ReasonBackingFile, ReasonDataFile, ReasonExternalFile,
	ReasonTooLarge, ReasonEmpty, ReasonTruncated, ReasonMalformed, ReasonUnsupported,
}

// runCheck runs format's checker on img and asserts the properties that
// hold for any single run.
func runCheck(t *testing.T, format string, img *testimage.Sparse, lim Limits) error {
	t.Helper()
	img.ResetReads()
	_, err := checkers[format](context.Background(), img, img.Size, lim.withDefaults())
	if img.OutOfFile() != "" {
		t.Fatalf("%s check read outside the file: %s", format, img.OutOfFile())
	}
	if budget := 8*img.Size + 64<<10; img.BytesRead() > budget {
		t.Fatalf("%s check read %d bytes of a %d-byte file", format, img.BytesRead(), img.Size)
	}
	if err != nil {
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("%s check failed without a refusal: %v", format, err)
		}
		if r := ReasonOf(err); !slices.Contains(headerReasons, r) {
			t.Fatalf("%s check refused for reason %q: %v", format, r, err)
		}
	}
	return err
}

// fuzzCheck is the body of the per-format targets. declared, if not nil,
// reads the virtual size the image declares, independently of the check.
func fuzzCheck(f *testing.F, format string, declared func(img *testimage.Sparse) (uint64, bool)) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		checkProperties(t, format, testimage.DecodeSparse(in), declared)
		// Checksums would stop most mutations of the tables they cover
		// from getting further: check the input with them fixed too.
		if fixed := fixChecksums(testimage.DecodeSparse(in), format); fixed != nil {
			checkProperties(t, format, fixed, declared)
		}
	})
}

// fixChecksums returns img with its VHD footer or VHDX region table
// checksums corrected, or nil when the format has none.
func fixChecksums(img *testimage.Sparse, format string) *testimage.Sparse {
	switch format {
	case FormatVPC:
		for _, off := range []int64{0, img.Size - vhdFooterSize} {
			if off < 0 {
				continue
			}
			ft := head(img, off, vhdFooterSize)
			var sum uint32
			for i, c := range ft {
				if i < 64 || i >= 68 {
					sum += uint32(c)
				}
			}
			be.PutUint32(ft[64:], ^sum)
			img.Extents = append(img.Extents, testimage.Extent{Off: off, Data: ft[:min(int64(len(ft)), img.Size-off)]})
		}
	case FormatVHDX:
		if img.Size < vhdxRegionTableOffset+vhdxTableSize {
			return img
		}
		rt := head(img, vhdxRegionTableOffset, vhdxTableSize)
		clear(rt[4:8])
		le.PutUint32(rt[4:], crc32.Checksum(rt, castagnoli))
		img.Extents = append(img.Extents, testimage.Extent{Off: vhdxRegionTableOffset + 4, Data: rt[4:8]})
	default:
		return nil
	}
	return img
}

// checkProperties asserts fuzzCheck's properties for one image.
func checkProperties(t *testing.T, format string, img *testimage.Sparse, declared func(img *testimage.Sparse) (uint64, bool)) {
	t.Helper()
	err := runCheck(t, format, img, Limits{})
	again := runCheck(t, format, img, Limits{})
	if fmt.Sprint(err) != fmt.Sprint(again) {
		t.Fatalf("%s check is not deterministic: %v, then %v", format, err, again)
	}
	small := runCheck(t, format, img, Limits{MaxVirtualSize: fuzzSmallLimit})
	switch {
	case err == nil && small != nil && ReasonOf(small) != ReasonTooLarge:
		t.Fatalf("%s check accepts with the default limit but refuses with a lower one for another reason: %v", format, small)
	case err != nil && small == nil:
		t.Fatalf("%s check refuses with the default limit (%v) but accepts with a lower one", format, err)
	}
	if declared == nil || err != nil {
		return
	}
	v, ok := declared(img)
	if !ok {
		return
	}
	if v == 0 || v > uint64(DefaultMaxVirtualSize) {
		t.Fatalf("%s check accepted a declared virtual size of %d bytes", format, v)
	}
	if small == nil && v > fuzzSmallLimit {
		t.Fatalf("%s check accepted a declared virtual size of %d bytes over a limit of %d", format, v, fuzzSmallLimit)
	}
}

// head returns n bytes at off of img (zeros past its end).
func head(img *testimage.Sparse, off int64, n int) []byte {
	b := make([]byte, n)
	if off < img.Size {
		_, _ = img.ReadAt(b[:min(int64(n), img.Size-off)], off)
	}
	return b
}

func FuzzCheckQCOW2(f *testing.F) {
	fuzzCheck(f, FormatQCOW2, func(img *testimage.Sparse) (uint64, bool) {
		return be.Uint64(head(img, 0, 32)[24:]), true
	})
}

func FuzzCheckVDI(f *testing.F) {
	fuzzCheck(f, FormatVDI, func(img *testimage.Sparse) (uint64, bool) {
		return le.Uint64(head(img, vdiOffDiskSize, 8)), true
	})
}

func FuzzCheckVPC(f *testing.F) {
	fuzzCheck(f, FormatVPC, func(img *testimage.Sparse) (uint64, bool) {
		ft := head(img, 0, vhdFooterSize)
		if !bytes.HasPrefix(ft, vhdCookie) {
			ft = head(img, img.Size-vhdFooterSize, vhdFooterSize)
		}
		chs := uint64(be.Uint16(ft[56:])) * uint64(ft[58]) * uint64(ft[59]) * 512
		return max(be.Uint64(ft[48:]), chs), true
	})
}

func FuzzCheckVMDK(f *testing.F) {
	fuzzCheck(f, FormatVMDK, func(img *testimage.Sparse) (uint64, bool) {
		h := head(img, 0, vmdkSector)
		if le.Uint64(h[56:]) == vmdkGDAtEnd {
			h = head(img, img.Size-2*vmdkSector, vmdkSector)
		}
		return le.Uint64(h[12:]) * vmdkSector, true
	})
}

func FuzzCheckVHDX(f *testing.F) {
	fuzzCheck(f, FormatVHDX, nil)
}

// FuzzSniff checks that Sniff names one of Formats, reads only the file's
// first and last 512 bytes, and recognises the magic numbers it documents.
func FuzzSniff(f *testing.F) {
	for _, m := range [][]byte{qcow2Magic, vmdkSparseMagic, vmdkCOWDMagic, vmdkDescMagic, vhdxMagic, vhdCookie} {
		f.Add(append(bytes.Clone(m), make([]byte, 600)...))
	}
	vdi := make([]byte, 512)
	le.PutUint32(vdi[vdiSignatureOffset:], vdiSignature)
	f.Add(vdi)
	f.Add(append(make([]byte, 1024), append(bytes.Clone(vhdCookie), make([]byte, 504)...)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		// The middle of a file never matters: make it large and hidden.
		img := &testimage.Sparse{Size: int64(len(in))}
		if len(in) > 1024 {
			img.Size = testimage.MaxSparseSize
			img.Extents = []testimage.Extent{{Off: 0, Data: in[:512]}, {Off: img.Size - int64(len(in)-512), Data: in[512:]}}
		} else {
			img.Extents = []testimage.Extent{{Off: 0, Data: in}}
		}
		got, err := Sniff(img, img.Size)
		if err != nil {
			t.Fatalf("Sniff: %v", err)
		}
		if img.OutOfFile() != "" {
			t.Fatalf("Sniff read outside the file: %s", img.OutOfFile())
		}
		if img.BytesRead() > 1024 {
			t.Fatalf("Sniff read %d bytes", img.BytesRead())
		}
		if !slices.Contains(Formats, got) {
			t.Fatalf("Sniff = %q, not a format", got)
		}
		if again, _ := Sniff(img, img.Size); again != got {
			t.Fatalf("Sniff is not deterministic: %q, then %q", got, again)
		}
		var want string
		switch {
		case bytes.HasPrefix(in, qcow2Magic):
			want = FormatQCOW2
		case bytes.HasPrefix(in, vmdkSparseMagic), bytes.HasPrefix(in, vmdkDescMagic):
			want = FormatVMDK
		case bytes.HasPrefix(in, vhdxMagic):
			want = FormatVHDX
		}
		if want != "" && got != want {
			t.Fatalf("Sniff = %q for a file starting %q, want %q", got, in[:8], want)
		}
	})
}

// FuzzVMDKDescriptor checks the descriptor parser: every extent it reports
// comes from a line of the text, and the quoted value descriptorValue finds
// is sanitized.
func FuzzVMDKDescriptor(f *testing.F) {
	f.Add([]byte("# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW 2048 SPARSE \"disk.vmdk\"\n"))
	f.Add([]byte("createType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/passwd\" 0\nparentFileNameHint=\"/x\"\n"))
	f.Add([]byte("RDONLY 1 ZERO\nNOACCESS 5 VMFS \"a\x00b\"\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		d := parseVMDKDescriptor(in)
		text := in
		if i := bytes.IndexByte(text, 0); i >= 0 {
			text = text[:i]
		}
		for _, e := range d.extents {
			if !bytes.Contains(text, []byte(e.typ)) || !bytes.Contains(text, []byte(e.name)) {
				t.Fatalf("extent %+v is not in the text", e)
			}
			if isBareName(e.name) && (e.name != sanitize([]byte(e.name)) || bytes.ContainsAny([]byte(e.name), "/\\")) {
				t.Fatalf("isBareName(%q)", e.name)
			}
		}
		if v, ok := descriptorValue(in, "parentFileNameHint"); ok && v != sanitize([]byte(v)) {
			t.Fatalf("descriptorValue returned an unsanitized %q", v)
		}
		if len(quoteNames(d.extentNames())) > len(d.extents)*(4*maxNameLen+16) {
			t.Fatal("quoteNames does not cap names")
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpora of the header check targets
// from images qemu-img makes. It only runs when GALE_WRITE_FUZZ_SEEDS is
// set:
//
//	GALE_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./pkg/image/inspect
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("GALE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set GALE_WRITE_FUZZ_SEEDS to rewrite testdata/fuzz")
	}
	requireTools(t)
	dir := t.TempDir()
	// 1 MiB with a few short runs of data, so that images have allocated
	// clusters but stay small.
	raw := filepath.Join(dir, "src.raw")
	src := make([]byte, mib)
	for i, off := range []int{0, 200 * kib, 512 * kib, 700 * kib, mib - 64} {
		copy(src[off:], fmt.Sprintf("gale fuzz seed %d", i))
	}
	if err := os.WriteFile(raw, src, 0o600); err != nil {
		t.Fatal(err)
	}
	seeds := []struct {
		target, name, format, opts string
		create                     bool // qemu-img create instead of convert
	}{
		{"FuzzCheckQCOW2", "qcow2", "qcow2", "", false},
		{"FuzzCheckQCOW2", "qcow2-v2", "qcow2", "compat=0.10", false},
		{"FuzzCheckQCOW2", "qcow2-512", "qcow2", "cluster_size=512", false},
		{"FuzzCheckQCOW2", "qcow2-extended-l2", "qcow2", "extended_l2=on,cluster_size=16384", false},
		{"FuzzCheckQCOW2", "qcow2-backing", "qcow2", "backing_file=/etc/hostname,backing_fmt=raw", true},
		{"FuzzCheckQCOW2", "qcow2-data-file", "qcow2", "data_file=" + filepath.Join(dir, "data.raw"), true},
		{"FuzzCheckVMDK", "monolithic-sparse", "vmdk", "", false},
		{"FuzzCheckVMDK", "stream-optimized", "vmdk", "subformat=streamOptimized", false},
		{"FuzzCheckVMDK", "zeroed-grain", "vmdk", "zeroed_grain=on", false},
		{"FuzzCheckVPC", "dynamic", "vpc", "force_size=on", false},
		{"FuzzCheckVPC", "fixed", "vpc", "subformat=fixed,force_size=on", false},
		{"FuzzCheckVHDX", "dynamic", "vhdx", "", false},
		{"FuzzCheckVHDX", "fixed", "vhdx", "subformat=fixed", true},
		{"FuzzCheckVDI", "dynamic", "vdi", "", false},
		{"FuzzCheckVDI", "static", "vdi", "static=on", false},
	}
	for _, s := range seeds {
		p := filepath.Join(dir, s.target+"-"+s.name)
		args := []string{"convert", "-q", "-f", "raw", "-O", s.format}
		if s.create {
			args = []string{"create", "-q", "-f", s.format}
		}
		if s.opts != "" {
			args = append(args, "-o", s.opts)
		}
		if s.create {
			args = append(args, "-u", p, "1M")
		} else {
			args = append(args, raw, p)
		}
		qemuImg(t, args...)
		enc := testimage.EncodeSparse(readFile(t, p))
		if len(enc) > 16*kib {
			t.Fatalf("%s seed %s encodes to %d bytes", s.target, s.name, len(enc))
		}
		writeCorpus(t, s.target, s.name, enc)
		if s.target == "FuzzCheckVMDK" || s.target == "FuzzCheckVPC" {
			// A copy cut short, which must be refused as truncated.
			img := readFile(t, p)
			writeCorpus(t, s.target, s.name+"-cut", testimage.EncodeSparse(img[:len(img)/2]))
		}
	}
	desc := "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\nRW 2048 FLAT \"/etc/passwd\" 0\n"
	writeCorpus(t, "FuzzCheckVMDK", "descriptor-file", testimage.EncodeSparse([]byte(desc)))
}

// writeCorpus writes one seed in the go test fuzz v1 format.
func writeCorpus(t *testing.T, target, name string, in []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFuzzSeeds checks that the seed images decode to what they were: the
// intact ones pass their format's checks, the others are refused for the
// expected reason.
func TestFuzzSeeds(t *testing.T) {
	formats := map[string]string{
		"FuzzCheckQCOW2": FormatQCOW2, "FuzzCheckVMDK": FormatVMDK, "FuzzCheckVPC": FormatVPC,
		"FuzzCheckVHDX": FormatVHDX, "FuzzCheckVDI": FormatVDI,
	}
	want := map[string]Reason{
		"qcow2-backing": ReasonBackingFile, "qcow2-data-file": ReasonDataFile,
		"descriptor-file": ReasonExternalFile, "fixed-cut": ReasonFormat,
	}
	n := 0
	for target, format := range formats {
		paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			body := string(readFile(t, p))
			lit, ok := strings.CutPrefix(body, "go test fuzz v1\n[]byte(")
			if lit, ok = strings.CutSuffix(lit, ")\n"); !ok {
				continue // not a seed of this form
			}
			in, err := strconv.Unquote(lit)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			name := filepath.Base(p)
			r, ok := want[name]
			if !ok && strings.HasSuffix(name, "-cut") {
				r, ok = ReasonTruncated, true
			}
			if !ok && len(name) == 64 {
				continue // an input the fuzzer found
			}
			img := testimage.DecodeSparse([]byte(in))
			_, err = checkers[format](context.Background(), img, img.Size, Limits{}.withDefaults())
			if got := ReasonOf(err); got != r || (r == "" && err != nil) {
				t.Errorf("%s: err = %v, want reason %q", p, err, r)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no seeds found")
	}
}
