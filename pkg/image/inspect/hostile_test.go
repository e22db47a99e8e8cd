package inspect

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/disk"
)

func TestRefusesQCOW2BackingFile(t *testing.T) {
	requireTools(t)
	p := filepath.Join(t.TempDir(), "backed.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/hostname", "-F", "raw", p, "1M")
	_, err := pureGo(t).Inspect(context.Background(), p, FormatQCOW2, Limits{})
	wantRefused(t, err, ReasonBackingFile, "backing file", "/etc/hostname")
}

func TestRefusesQCOW2DataFile(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "external.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw"), p, "1M")
	_, err := pureGo(t).Inspect(context.Background(), p, FormatQCOW2, Limits{})
	wantRefused(t, err, ReasonDataFile, "data file", "data.raw")
}

func TestRefusesQCOW2Features(t *testing.T) {
	requireTools(t)
	for _, c := range []struct {
		name   string
		off    int64
		b      []byte
		reason Reason
	}{
		{"unknown incompatible feature", 78, []byte{0x04}, ReasonUnsupported},
		{"marked corrupt", 79, []byte{0x02}, ReasonMalformed},
		{"encrypted", 32, []byte{0, 0, 0, 1}, ReasonUnsupported},
		{"version 4", 4, []byte{0, 0, 0, 4}, ReasonUnsupported},
		{"bad cluster bits", 20, []byte{0, 0, 0, 40}, ReasonMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.qcow2")
			qemuImg(t, "create", "-q", "-f", "qcow2", p, "1M")
			patch(t, p, c.off, c.b)
			_, err := pureGo(t).Inspect(context.Background(), p, FormatQCOW2, Limits{})
			wantRefused(t, err, c.reason)
		})
	}
}

func TestRefusesHugeVirtualSize(t *testing.T) {
	requireTools(t)
	p := filepath.Join(t.TempDir(), "huge.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", p, "100T")
	_, err := pureGo(t).Inspect(context.Background(), p, FormatQCOW2, Limits{})
	wantRefused(t, err, ReasonTooLarge, "100 TiB", "2 TiB")

	// Raw images have no header: the limit is enforced on qemu's answer.
	raw := patternedRaw(t, t.TempDir(), "big.raw", 8*mib)
	_, err = Inspect(context.Background(), raw, FormatRaw, Limits{MaxVirtualSize: mib})
	wantRefused(t, err, ReasonTooLarge, "8 MiB", "1 MiB")
}

// TestRefusesTruncated cuts each format in half: the tables then point
// past the end of the file, where qemu would silently read zeros.
func TestRefusesTruncated(t *testing.T) {
	requireTools(t)
	raw := patternedRaw(t, t.TempDir(), "src.raw", 8*mib)
	for _, c := range formatCases {
		t.Run(c.name, func(t *testing.T) {
			p := makeImage(t, raw, c)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			_, err = pureGo(t).Inspect(context.Background(), p, c.format, Limits{})
			want := ReasonTruncated
			if c.opts == "subformat=fixed,force_size=on" {
				// A fixed VHD's only footer is at the end: cut, it is no VHD.
				want = ReasonFormat
			}
			wantRefused(t, err, want)
		})
	}
}

func TestRefusesVMDKDescriptor(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	t.Run("hand-written descriptor naming a host file", func(t *testing.T) {
		p := filepath.Join(dir, "flat.vmdk")
		desc := "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n" +
			"# Extent description\nRW 2048 FLAT \"/etc/passwd\" 0\n"
		if err := os.WriteFile(p, []byte(desc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVMDK, Limits{})
		wantRefused(t, err, ReasonExternalFile, "references other files", `"/etc/passwd"`)
	})
	t.Run("descriptor without the comment line", func(t *testing.T) {
		p := filepath.Join(dir, "bare.vmdk")
		desc := "createType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\n"
		if err := os.WriteFile(p, []byte(desc), 0o600); err != nil {
			t.Fatal(err)
		}
		// qemu would open it as a descriptor; Sniff does not call it vmdk.
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVMDK, Limits{})
		wantRefused(t, err, ReasonFormat, "declared vmdk")
	})
	t.Run("twoGbMaxExtentSparse", func(t *testing.T) {
		p := filepath.Join(dir, "split.vmdk")
		qemuImg(t, "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", p, "10M")
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVMDK, Limits{})
		wantRefused(t, err, ReasonExternalFile, `"split-s001.vmdk"`)
	})
	t.Run("legacy COWD", func(t *testing.T) {
		p := filepath.Join(dir, "cowd.vmdk")
		if err := os.WriteFile(p, append([]byte("COWD"), make([]byte, 4096)...), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVMDK, Limits{})
		wantRefused(t, err, ReasonUnsupported, "COWD")
	})
}

// sparseVMDK makes a monolithicSparse VMDK and returns its path and the
// offset and size of its embedded descriptor.
func sparseVMDK(t *testing.T) (string, int64, int) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.vmdk")
	qemuImg(t, "create", "-q", "-f", "vmdk", p, "4M")
	h := readFile(t, p)
	return p, int64(le.Uint64(h[28:])) * 512, int(le.Uint64(h[36:])) * 512
}

func TestRefusesPatchedVMDKDescriptor(t *testing.T) {
	requireTools(t)
	const good = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n" +
		"# Extent description\nRW 8192 SPARSE \"disk.vmdk\"\n"
	for _, c := range []struct {
		name   string
		desc   string
		reason Reason
		want   string
	}{
		{"extent is a host file", strings.Replace(good, `"disk.vmdk"`, `"/etc/hostname"`, 1), ReasonExternalFile, `"/etc/hostname"`},
		{"extent in a parent directory", strings.Replace(good, `"disk.vmdk"`, `"../other.vmdk"`, 1), ReasonExternalFile, `"../other.vmdk"`},
		{"second extent", good + "RW 8192 FLAT \"/etc/shadow\" 0\n", ReasonExternalFile, `"/etc/shadow"`},
		{"flat extent", strings.Replace(good, "SPARSE", "FLAT", 1) + " 0", ReasonExternalFile, "SPARSE"},
		{"createType", strings.Replace(good, "monolithicSparse", "monolithicFlat", 1), ReasonExternalFile, "monolithicFlat"},
		{"parentFileNameHint", good + "parentFileNameHint=\"/etc/shadow\"\n", ReasonBackingFile, "/etc/shadow"},
		{"parentCID", strings.Replace(good, "parentCID=ffffffff", "parentCID=1234abcd", 1), ReasonBackingFile, "1234abcd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, off, n := sparseVMDK(t)
			if len(c.desc) > n {
				t.Fatalf("descriptor of %d bytes does not fit in %d", len(c.desc), n)
			}
			patch(t, p, off, append([]byte(c.desc), make([]byte, n-len(c.desc))...))
			_, err := pureGo(t).Inspect(context.Background(), p, FormatVMDK, Limits{})
			wantRefused(t, err, c.reason, c.want)
		})
	}

	t.Run("unpatched is accepted", func(t *testing.T) {
		p, off, n := sparseVMDK(t)
		// A renamed file still names its old self in the descriptor; qemu
		// reads a sparse file's own grains whatever the name.
		desc := strings.Replace(good, "disk.vmdk", "old-name.vmdk", 1)
		patch(t, p, off, append([]byte(desc), make([]byte, n-len(desc))...))
		if _, err := Inspect(context.Background(), p, FormatVMDK, Limits{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("capacity 0 defers to the descriptor", func(t *testing.T) {
		p, _, _ := sparseVMDK(t)
		patch(t, p, 12, make([]byte, 8))
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVMDK, Limits{})
		wantRefused(t, err, ReasonExternalFile, "capacity 0", `"disk.vmdk"`)
	})
	t.Run("parent hint where qemu looks, not where the header says", func(t *testing.T) {
		p, off, _ := sparseVMDK(t)
		// Move the descriptor pointer elsewhere; qemu still reads 0x200.
		patch(t, p, 28, []byte{30, 0, 0, 0, 0, 0, 0, 0})
		patch(t, p, off, []byte("parentFileNameHint=\"/etc/shadow\"\n"))
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVMDK, Limits{})
		wantRefused(t, err, ReasonBackingFile, "/etc/shadow")
	})
}

// vhdChecksum recomputes a VHD footer's checksum in place.
func vhdChecksum(footer []byte) {
	be.PutUint32(footer[64:], 0)
	var sum uint32
	for _, c := range footer[:512] {
		sum += uint32(c)
	}
	be.PutUint32(footer[64:], ^sum)
}

func TestRefusesVHDDifferencing(t *testing.T) {
	requireTools(t)
	raw := patternedRaw(t, t.TempDir(), "src.raw", 4*mib)
	mk := func(t *testing.T) (string, []byte) {
		p := makeImage(t, raw, formatCase{"vhd", FormatVPC, ""})
		return p, readFile(t, p)[:512]
	}
	t.Run("disk type 4 in both footers", func(t *testing.T) {
		p, footer := mk(t)
		be.PutUint32(footer[60:], vhdTypeDifferencing)
		vhdChecksum(footer)
		patch(t, p, 0, footer)
		patch(t, p, -512, footer)
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVPC, Limits{})
		wantRefused(t, err, ReasonBackingFile, "differencing")
	})
	t.Run("disk type 4 in the trailing copy only", func(t *testing.T) {
		p, footer := mk(t)
		be.PutUint32(footer[60:], vhdTypeDifferencing)
		vhdChecksum(footer)
		patch(t, p, -512, footer)
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVPC, Limits{})
		wantRefused(t, err, ReasonBackingFile, "differencing")
	})
	t.Run("bad checksum", func(t *testing.T) {
		p, footer := mk(t)
		be.PutUint32(footer[60:], vhdTypeDifferencing)
		patch(t, p, 0, footer)
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVPC, Limits{})
		wantRefused(t, err, ReasonMalformed, "checksum")
	})
	t.Run("parent locator in a dynamic disk", func(t *testing.T) {
		p, footer := mk(t)
		off := int64(be.Uint64(footer[16:])) + vhdLocatorOffset
		patch(t, p, off, []byte("W2ku"))
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVPC, Limits{})
		wantRefused(t, err, ReasonBackingFile, "parent locator")
	})
}

// vhdxMetadataOffset finds the metadata region of a VHDX file.
func vhdxMetadataOffset(t *testing.T, b []byte) int64 {
	t.Helper()
	rt := b[vhdxRegionTableOffset:]
	for i := range int(le.Uint32(rt[8:])) {
		e := rt[16+i*32:]
		if bytes.Equal(e[:16], vhdxRegionMetadata[:]) {
			return int64(le.Uint64(e[16:]))
		}
	}
	t.Fatal("no metadata region")
	return 0
}

func TestRefusesVHDXDifferencing(t *testing.T) {
	requireTools(t)
	raw := patternedRaw(t, t.TempDir(), "src.raw", 4*mib)
	t.Run("HasParent", func(t *testing.T) {
		p := makeImage(t, raw, formatCase{"vhdx", FormatVHDX, ""})
		b := readFile(t, p)
		meta := vhdxMetadataOffset(t, b)
		for i := range int(le.Uint16(b[meta+10:])) {
			e := b[meta+32+int64(i)*32:]
			if bytes.Equal(e[:16], vhdxFileParameters[:]) {
				item := meta + int64(le.Uint32(e[16:]))
				flags := le.Uint32(b[item+4:]) | vhdxFlagHasParent
				patch(t, p, item+4, le.AppendUint32(nil, flags))
			}
		}
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVHDX, Limits{})
		wantRefused(t, err, ReasonBackingFile, "HasParent")
	})
	t.Run("parent locator item", func(t *testing.T) {
		p := makeImage(t, raw, formatCase{"vhdx", FormatVHDX, ""})
		b := readFile(t, p)
		meta := vhdxMetadataOffset(t, b)
		n := int64(le.Uint16(b[meta+10:]))
		entry := append(vhdxParentLocator[:], le.AppendUint32(le.AppendUint32(nil, 128<<10), 64)...)
		patch(t, p, meta+32+n*32, entry)
		patch(t, p, meta+10, le.AppendUint16(nil, uint16(n+1)))
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVHDX, Limits{})
		wantRefused(t, err, ReasonBackingFile, "parent locator")
	})
	t.Run("corrupt region table", func(t *testing.T) {
		p := makeImage(t, raw, formatCase{"vhdx", FormatVHDX, ""})
		patch(t, p, vhdxRegionTableOffset+100, []byte{0xff})
		_, err := pureGo(t).Inspect(context.Background(), p, FormatVHDX, Limits{})
		wantRefused(t, err, ReasonMalformed, "checksum")
	})
}

func TestRefusesVDIDifferencing(t *testing.T) {
	requireTools(t)
	raw := patternedRaw(t, t.TempDir(), "src.raw", 4*mib)
	for _, c := range []struct {
		name string
		off  int64
		b    []byte
		want string
	}{
		{"image type differencing", vdiOffImageType, []byte{vdiTypeDiff, 0, 0, 0}, "differencing"},
		{"parent UUID", vdiOffUUIDParent, bytes.Repeat([]byte{0xab}, 16), "parent UUID"},
		{"link UUID", vdiOffUUIDLink, bytes.Repeat([]byte{0xcd}, 16), "link UUID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := makeImage(t, raw, formatCase{"vdi", FormatVDI, ""})
			patch(t, p, c.off, c.b)
			_, err := pureGo(t).Inspect(context.Background(), p, FormatVDI, Limits{})
			wantRefused(t, err, ReasonBackingFile, c.want)
		})
	}
}

// TestRawThatLooksLikeQCOW2 imports, as raw, an image whose first bytes
// are a qcow2 header naming a backing file. It is accepted with a warning,
// and converting it copies the header verbatim without opening the
// backing file.
func TestRawThatLooksLikeQCOW2(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.raw")
	if err := os.WriteFile(secret, bytes.Repeat([]byte("SECRET!!"), 128*1024), 0o600); err != nil {
		t.Fatal(err)
	}
	hdr := filepath.Join(dir, "hdr.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", hdr, "1M")
	src := filepath.Join(dir, "server.img")
	header := readFile(t, hdr)
	if err := os.WriteFile(src, append(header, make([]byte, 2*mib-len(header))...), 0o600); err != nil {
		t.Fatal(err)
	}

	rep, err := Inspect(ctx, src, FormatRaw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sniffed != FormatQCOW2 || len(rep.Warnings) != 1 ||
		!strings.Contains(rep.Warnings[0], "looks like qcow2 but imported as raw") {
		t.Errorf("Inspect() = %+v; want a warning that it looks like qcow2", rep)
	}
	if fi, _ := os.Stat(src); rep.VirtualSize != fi.Size() {
		t.Errorf("VirtualSize = %d, want the file size %d", rep.VirtualSize, fi.Size())
	}

	dst := filepath.Join(dir, "out.qcow2")
	if err := disk.NewQemuImg(nil).Convert(ctx, src, FormatRaw, dst, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "qcow2", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare: %v: %s", err, out)
	}
	back := filepath.Join(dir, "back.raw")
	qemuImg(t, "convert", "-f", "qcow2", "-O", "raw", dst, back)
	if got := readFile(t, back); !bytes.Equal(got, readFile(t, src)) {
		t.Error("converted image is not byte-equal to the raw input")
	}

	// Declared as what it looks like, it is refused for its backing file.
	_, err = pureGo(t).Inspect(ctx, src, FormatQCOW2, Limits{})
	wantRefused(t, err, ReasonBackingFile, secret)
}

func TestRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(target, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.raw")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.raw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, path, want string }{
		{"symlink", link, "symbolic link"},
		{"directory", dir, "directory"},
		{"fifo", fifo, "FIFO"},
	}
	if fi, err := os.Stat("/dev/null"); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cases = append(cases, struct{ name, path, want string }{"character device", "/dev/null", "character device"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := pureGo(t).Inspect(context.Background(), c.path, FormatRaw, Limits{})
				done <- err
			}()
			select {
			case err := <-done:
				wantRefused(t, err, ReasonNotRegular, c.want)
			case <-time.After(10 * time.Second):
				t.Fatal("Inspect blocked")
			}
		})
	}
}

func TestRefusesFormatMismatch(t *testing.T) {
	raw := patternedRaw(t, t.TempDir(), "disk.raw", mib)
	_, err := pureGo(t).Inspect(context.Background(), raw, FormatQCOW2, Limits{})
	wantRefused(t, err, ReasonFormat, "declared qcow2", "looks like raw")
	for _, f := range []string{"qed", "luks", "", "json"} {
		_, err := pureGo(t).Inspect(context.Background(), raw, f, Limits{})
		wantRefused(t, err, ReasonFormat, "not accepted")
	}
}
