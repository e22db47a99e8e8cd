package inspect

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/galevm/gale/pkg/disk"
)

// formatCase is an image made from a raw one with qemu-img convert.
type formatCase struct {
	name, format string
	opts         string // qemu-img convert -o
}

var formatCases = []formatCase{
	{"qcow2", FormatQCOW2, ""},
	{"qcow2 v2", FormatQCOW2, "compat=0.10"},
	{"qcow2 extended L2, 16 KiB clusters", FormatQCOW2, "extended_l2=on,cluster_size=16384"},
	{"qcow2 2 MiB clusters", FormatQCOW2, "cluster_size=2M"},
	{"qcow2 zstd", FormatQCOW2, "compression_type=zstd"},
	{"vmdk monolithicSparse", FormatVMDK, ""},
	{"vmdk streamOptimized", FormatVMDK, "subformat=streamOptimized"},
	{"vmdk zeroed grains", FormatVMDK, "zeroed_grain=on"},
	{"vhd dynamic", FormatVPC, "force_size=on"},
	{"vhd fixed", FormatVPC, "subformat=fixed,force_size=on"},
	{"vhdx", FormatVHDX, ""},
	{"vdi dynamic", FormatVDI, ""},
	{"vdi static", FormatVDI, "static=on"},
}

// makeImage converts raw into c's format and returns the new path.
func makeImage(t *testing.T, raw string, c formatCase) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk."+c.format)
	args := []string{"convert", "-q", "-f", "raw", "-O", c.format}
	if c.opts != "" {
		args = append(args, "-o", c.opts)
	}
	qemuImg(t, append(args, raw, p)...)
	return p
}

// TestRoundTrip makes each format from a raw image with known bytes, and
// checks that Sniff names it, Inspect accepts it with the right size, and
// disk.Convert turns it into a qcow2 with the same contents.
func TestRoundTrip(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	const size = 8 * mib
	raw := patternedRaw(t, t.TempDir(), "src.raw", size)
	cases := append([]formatCase{{"raw", FormatRaw, ""}}, formatCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := raw
			if c.format != FormatRaw {
				img = makeImage(t, raw, c)
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			if got, err := Sniff(f, fi.Size()); err != nil || got != c.format {
				t.Errorf("Sniff() = %q, %v; want %q", got, err, c.format)
			}

			rep, err := Inspect(ctx, img, c.format, Limits{})
			if err != nil {
				t.Fatalf("Inspect() = %v", err)
			}
			if rep.Format != c.format || rep.Sniffed != c.format || rep.VirtualSize != size ||
				rep.FileSize != fi.Size() || len(rep.Warnings) != 0 {
				t.Errorf("Inspect() = %+v; want format %s, virtual size %d, file size %d, no warnings", rep, c.format, size, fi.Size())
			}

			dst := filepath.Join(t.TempDir(), "out.qcow2")
			last := -1.0
			if err := disk.NewQemuImg(nil).Convert(ctx, img, c.format, dst, func(p float64) { last = p }); err != nil {
				t.Fatal(err)
			}
			if last != 1 {
				t.Errorf("last progress = %v, want 1", last)
			}
			if out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw, dst).CombinedOutput(); err != nil {
				t.Errorf("qemu-img compare: %v: %s", err, out)
			}
		})
	}
}

// TestRoundTripCHSRounding checks a VHD whose size qemu rounds to a disk
// geometry: qemu's virtual size is reported, and the data survives.
func TestRoundTripCHSRounding(t *testing.T) {
	requireTools(t)
	raw := patternedRaw(t, t.TempDir(), "src.raw", 8*mib)
	img := makeImage(t, raw, formatCase{"vhd", FormatVPC, ""})
	rep, err := Inspect(context.Background(), img, FormatVPC, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.VirtualSize < 8*mib || rep.VirtualSize > 8*mib+64*kib {
		t.Errorf("VirtualSize = %d, want 8 MiB rounded up to the geometry", rep.VirtualSize)
	}
}

// TestStreamOptimizedFooter checks the layout VMware exports (OVA) use: the
// header's grain directory offset is "at end", and the real header sits in a
// footer before the end-of-stream marker. qemu-img does not write it, so it
// is made from qemu's streamOptimized output.
func TestStreamOptimizedFooter(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	raw := patternedRaw(t, t.TempDir(), "src.raw", 8*mib)
	p := makeImage(t, raw, formatCase{"vmdk", FormatVMDK, "subformat=streamOptimized"})
	header := readFile(t, p)[:512]
	marker := func(typ uint32) []byte {
		m := make([]byte, 512)
		le.PutUint32(m[12:], typ)
		return m
	}
	const markerFooter, markerEOS = 3, 0
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{marker(markerFooter), header, marker(markerEOS)} {
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	patch(t, p, 56, le.AppendUint64(nil, vmdkGDAtEnd))

	rep, err := Inspect(ctx, p, FormatVMDK, Limits{})
	if err != nil || rep.VirtualSize != 8*mib {
		t.Fatalf("Inspect() = %+v, %v", rep, err)
	}
	dst := filepath.Join(t.TempDir(), "out.qcow2")
	if err := disk.NewQemuImg(nil).Convert(ctx, p, FormatVMDK, dst, nil); err != nil {
		t.Fatal(err)
	}
	qemuImg(t, "compare", "-f", "raw", "-F", "qcow2", raw, dst)

	// Cut short, the footer is gone.
	if err := os.Truncate(p, int64(len(readFile(t, p)))-1024); err != nil {
		t.Fatal(err)
	}
	_, err = pureGo(t).Inspect(ctx, p, FormatVMDK, Limits{})
	wantRefused(t, err, ReasonTruncated, "footer")
}
