package preflight

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/galevm/gale/pkg/internal/testimage"
)

// Fuzz targets for the readers of the untrusted guest disk. Disk images
// are given in testimage's sparse encoding, so that a partitioned disk of a
// few MiB fits in a small seed; the seed corpora in testdata/fuzz are made
// by sfdisk, mke2fs and mkfs.vfat (see TestWriteFuzzSeeds).

// knownFS are the names probeFS may return.
var knownFS = []string{"", fsExt2, fsExt3, fsExt4, fsXFS, fsBtrfs, fsLVM, fsLUKS, fsRAID, fsSwap, fsVFAT, fsNTFS}

// FuzzReadLayout checks the partition table reader on a disk image file:
// it never panics, is deterministic, names only known tables and
// filesystems, and marks exactly the partitions that do not lie inside the
// image as Beyond, without overflowing.
func FuzzReadLayout(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		checkLayout(t, testimage.DecodeSparse(in))
		// GPT checksums would stop most mutations of the table from
		// getting further: check the input with them fixed too.
		if fixed := fixGPTChecksums(testimage.DecodeSparse(in)); fixed != nil {
			checkLayout(t, fixed)
		}
	})
}

// fixGPTChecksums returns img with the CRCs of its GPT headers and entry
// arrays corrected, or nil if it has no GPT header.
func fixGPTChecksums(img *testimage.Sparse) *testimage.Sparse {
	found := false
	for _, off := range []int64{sectorSize, img.Size/sectorSize*sectorSize - sectorSize} {
		if off < sectorSize || off+sectorSize > img.Size {
			continue
		}
		h := make([]byte, sectorSize)
		_, _ = img.ReadAt(h, off)
		if !bytes.HasPrefix(h, []byte("EFI PART")) {
			continue
		}
		found = true
		lba := binary.LittleEndian.Uint64(h[72:80])
		n := uint64(binary.LittleEndian.Uint32(h[80:84])) * uint64(binary.LittleEndian.Uint32(h[84:88]))
		if lba < uint64(img.Size)/sectorSize && n <= uint64(img.Size)-lba*sectorSize {
			entries := make([]byte, n)
			_, _ = img.ReadAt(entries, int64(lba*sectorSize))
			binary.LittleEndian.PutUint32(h[88:92], crc32.ChecksumIEEE(entries))
		}
		if hs := binary.LittleEndian.Uint32(h[12:16]); hs >= 92 && hs <= sectorSize {
			clear(h[16:20])
			binary.LittleEndian.PutUint32(h[16:20], crc32.ChecksumIEEE(h[:hs]))
		}
		img.Extents = append(img.Extents, testimage.Extent{Off: off, Data: h})
	}
	if !found {
		return nil
	}
	return img
}

// checkLayout asserts FuzzReadLayout's properties for one image.
func checkLayout(t *testing.T, img *testimage.Sparse) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := img.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	l, err := readLayout(p)
	again, err2 := readLayout(p)
	if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(l, again) {
		t.Fatalf("readLayout is not deterministic: %+v, %v; then %+v, %v", l, err, again, err2)
	}
	if err != nil {
		return
	}
	if l.Size != img.Size {
		t.Fatalf("layout size %d, file size %d", l.Size, img.Size)
	}
	switch l.Table {
	case tableGPT, tableMBR:
	case tableNone:
		if len(l.Parts) > 1 || len(l.Parts) == 1 && (l.Parts[0].Index != 0 || l.Parts[0].Size != l.Size) {
			t.Fatalf("no partition table but partitions %+v", l.Parts)
		}
	default:
		t.Fatalf("table %q", l.Table)
	}
	if n := len(l.Parts); n > maxGPTEntries+4*(maxLogical+1) {
		t.Fatalf("%d partitions", n)
	}
	if fw := l.firmware(); fw != "" && fw != "bios" && fw != "uefi" {
		t.Fatalf("firmware %q", fw)
	}
	for _, part := range l.Parts {
		inside := part.Start >= 0 && part.Size >= 0 && part.Start <= l.Size && part.Size <= l.Size-part.Start
		if part.Beyond == inside {
			t.Fatalf("partition %+v of a %d-byte image: Beyond = %v", part, l.Size, part.Beyond)
		}
		if !slices.Contains(knownFS, part.FS) {
			t.Fatalf("partition %+v: unknown filesystem", part)
		}
	}
}

// FuzzProbeFS checks the filesystem prober on a partition at an offset: it
// reads only inside the partition, names only known filesystems, and when
// it says ext2/3/4 the superblock reader agrees.
func FuzzProbeFS(f *testing.F) {
	for _, s := range []struct {
		off   int
		magic string
	}{{0, "XFSB"}, {0x10040, "_BHRfS_M"}, {0, "LUKS\xba\xbe"}, {4086, "SWAPSPACE2"}, {3, "NTFS    "}, {4096, "\xfc\x4e\x2b\xa9"}, {536, "LVM2 001"}} {
		b := make([]byte, probeLen)
		copy(b[s.off:], s.magic)
		if s.magic == "LVM2 001" {
			copy(b[512:], "LABELONE")
		}
		f.Add(testimage.EncodeSparse(b), uint16(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, sector uint16) {
		img := testimage.DecodeSparse(in)
		off := min(int64(sector)*sectorSize, img.Size)
		size := img.Size - off
		fs := probeFS(img, off, size)
		if o := img.OutOfFile(); o != "" {
			t.Fatalf("probeFS read outside the file: %s", o)
		}
		if img.BytesRead() > probeLen {
			t.Fatalf("probeFS read %d bytes", img.BytesRead())
		}
		if !slices.Contains(knownFS, fs) {
			t.Fatalf("probeFS = %q", fs)
		}
		if again := probeFS(img, off, size); again != fs {
			t.Fatalf("probeFS is not deterministic: %q, then %q", fs, again)
		}
		if !isExt(fs) {
			return
		}
		s, err := readExtSuper(img, off)
		if err != nil {
			t.Fatalf("probeFS = %s but readExtSuper: %v", fs, err)
		}
		if s.kind() != fs {
			t.Fatalf("probeFS = %s but the superblock says %s", fs, s.kind())
		}
		_, _, _ = s.uuid(), s.label(), s.needsRecovery()
	})
}

// FuzzReadCpio checks the newc reader on concatenated archives: it never
// panics, reports members that fit in the input with bounded names, and
// reads back what writeCpio writes of the members it reported.
func FuzzReadCpio(f *testing.F) {
	f.Add(cpioBytes(f, moduleMembers("virtio/virtio_blk.ko", "net/virtio_net.ko.xz")...))
	f.Add(append(cpioBytes(f, cpioMember{Name: "kernel/x86/microcode/GenuineIntel.bin", Data: []byte("ucode")}), append(make([]byte, 512), cpioBytes(f, cpioMember{Name: "init"})...)...))
	f.Add([]byte("070702"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var got []cpioEntry
		err := readCpios(bufio.NewReader(bytes.NewReader(in)), func(e cpioEntry) { got = append(got, e) })
		var total int64
		for _, e := range got {
			if len(e.Name) > cpioMaxName || strings.ContainsRune(e.Name, 0) || e.Size < 0 {
				t.Fatalf("member %+v", e)
			}
			total += cpioHeaderLen + int64(len(e.Name)) + e.Size
		}
		if total > int64(len(in)) {
			t.Fatalf("%d members of %d bytes in all from %d bytes of input", len(got), total, len(in))
		}
		if err != nil || len(got) == 0 || total > 1<<20 {
			return
		}
		// Write the members again (the mode is writeCpio's) and read them back.
		var ms []cpioMember
		for _, e := range got {
			if e.Name == "" || strings.HasSuffix(e.Name, "/") || e.Name == cpioTrailer {
				return
			}
			ms = append(ms, cpioMember{Name: e.Name, Data: make([]byte, e.Size)})
		}
		var back []cpioEntry
		if err := readCpios(bufio.NewReader(bytes.NewReader(cpioBytes(t, ms...))), func(e cpioEntry) { back = append(back, e) }); err != nil {
			t.Fatalf("reading back: %v", err)
		}
		for i := range back {
			back[i].Mode = got[i].Mode
		}
		if !reflect.DeepEqual(got, back) {
			t.Fatalf("read back %+v, want %+v", back, got)
		}
	})
}

// FuzzListInitramfs checks the initramfs reader on a file. External
// decompressors are kept off PATH, so zstd, xz, lz4 and bzip2 parts fail
// fast and the Go readers (cpio, gzip) are what is fuzzed.
func FuzzListInitramfs(f *testing.F) {
	f.Add(cpioBytes(f, moduleMembers("virtio/virtio_blk.ko", "net/virtio_net.ko.xz")...))
	f.Add(gzipped(f, cpioBytes(f, moduleMembers("block/virtio_blk.ko.zst")...)))
	f.Add(append(cpioBytes(f, cpioMember{Name: "kernel/x86/microcode/AuthenticAMD.bin"}), gzipped(f, cpioBytes(f, moduleMembers("scsi/virtio_scsi.ko")...))...))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0})
	f.Setenv("PATH", f.TempDir())
	f.Fuzz(func(t *testing.T, in []byte) {
		p := filepath.Join(t.TempDir(), "initrd.img")
		if err := os.WriteFile(p, in, 0o600); err != nil {
			t.Fatal(err)
		}
		ir, err := listInitramfs(context.Background(), p)
		if err != nil {
			return
		}
		if len(ir.Formats) == 0 {
			t.Fatal("an initramfs without parts")
		}
		for _, format := range ir.Formats {
			if format != "cpio" && format != "gzip" {
				t.Fatalf("format %q read without its decompressor", format)
			}
		}
		for m := range ir.Modules {
			if m == "" || strings.ContainsAny(m, "/-") {
				t.Fatalf("module name %q", m)
			}
		}
		again, err := listInitramfs(context.Background(), p)
		if err != nil || !reflect.DeepEqual(ir, again) {
			t.Fatalf("listInitramfs is not deterministic: %+v, then %+v, %v", ir, again, err)
		}
	})
}

// FuzzConfigFiles checks the readers of guest configuration files: device
// name rewriting reaches a fixed point in one pass and changes only what it
// reports, and the other parsers never panic.
func FuzzConfigFiles(f *testing.F) {
	f.Add([]byte("/dev/sda1 / ext4 defaults 0 1\n# /dev/sdb1 /old ext4\nUUID=abc /boot ext4 defaults 0 2\n/dev/nvme0n1p2 none swap sw 0 0\n"))
	f.Add([]byte("GRUB_CMDLINE_LINUX=\"root=/dev/xvda1 console=ttyS0,115200\"\nlinux /vmlinuz root=/dev/cciss/c0d0p1 ro\n"))
	f.Add([]byte("NAME=\"Debian\"\nVERSION_ID='12'\nID=debian\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, done := rewriteDeviceNames(in)
		if len(done) == 0 && !bytes.Equal(out, in) {
			t.Fatalf("rewrite changed %q to %q without reporting it", in, out)
		}
		if bytes.Count(out, []byte("\n")) != bytes.Count(in, []byte("\n")) {
			t.Fatalf("rewrite changed the number of lines: %q to %q", in, out)
		}
		if out2, done2 := rewriteDeviceNames(out); len(done2) != 0 || !bytes.Equal(out2, out) {
			t.Fatalf("rewrite is not idempotent: %q -> %q -> %q (%v)", in, out, out2, done2)
		}
		for _, r := range findDeviceNames(out) {
			if r.Virtio != "" {
				t.Fatalf("%q left after rewriting %q", r.Name, in)
			}
		}
		var files []configFile
		for _, p := range append(slices.Clone(bootConfigPaths), blsEntriesDir+"/x.conf", "/etc/fstab") {
			files = append(files, configFile{Path: p, Data: in})
		}
		for _, c := range kernelCmdlines(files) {
			_ = hasSerialConsole(c.Args)
		}
		_ = fstabMountSource(in, "/")
		_ = parseOSRelease(in)
		if fixed, ok := fixGrubenv(in); ok && len(fixed) != grubenvSize {
			t.Fatalf("fixGrubenv gave %d bytes", len(fixed))
		}
		a, b, _ := strings.Cut(string(in), "\n")
		if versionLess(a, b) && versionLess(b, a) {
			t.Fatalf("versionLess(%q, %q) both ways", a, b)
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpora of FuzzReadLayout and
// FuzzProbeFS from disks made by sfdisk, mke2fs, mkfs.vfat and mkswap. It
// only runs when GALE_WRITE_FUZZ_SEEDS is set:
//
//	GALE_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./pkg/preflight
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("GALE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set GALE_WRITE_FUZZ_SEEDS to rewrite testdata/fuzz")
	}
	needTools(t)
	const biosBoot = "21686148-6449-6E6F-744E-656564454649"
	tree := writeTree(t, map[string][]byte{"etc/fstab": []byte("/dev/sda1 / ext4 defaults 0 1\n")})
	layouts := []struct {
		name, script string
		fs           []int64 // offsets of 1 MiB ext4 filesystems
	}{
		{"dos", "label: dos\nstart=2048, size=2048, type=83, bootable\nstart=4096, size=4096, type=5\nstart=4160, size=1024, type=83\nstart=6208, size=1024, type=82\n", []int64{1 << 20}},
		{"gpt", "label: gpt\nstart=2048, size=2048, type=U\nstart=4096, size=2048, type=L\nstart=6144, size=512, type=" + biosBoot + "\n", []int64{2 << 20}},
		{"whole-disk", "", []int64{0}},
	}
	for _, l := range layouts {
		img := newDisk(t, 4, l.script)
		for _, off := range l.fs {
			run(t, "", "mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, "-E", fmt.Sprintf("offset=%d", off), img, "1M")
		}
		writeSeed(t, "FuzzReadLayout", l.name, img, "")
	}
	for _, fs := range []string{"ext2", "ext3", "ext4"} {
		img := newDisk(t, 1, "")
		run(t, "", "mke2fs", "-q", "-F", "-t", fs, "-d", tree, img)
		writeSeed(t, "FuzzProbeFS", fs, img, "uint16(0)\n")
	}
	img := newDisk(t, 1, "")
	run(t, "", "mkfs.vfat", img)
	writeSeed(t, "FuzzProbeFS", "vfat", img, "uint16(0)\n")
	img = newDisk(t, 1, "")
	run(t, "", "mkswap", img)
	writeSeed(t, "FuzzProbeFS", "swap", img, "uint16(0)\n")
}

// writeSeed writes the image at img, sparsely encoded, as a seed of target
// (go test fuzz v1), followed by the further arguments in args.
func writeSeed(t *testing.T, target, name, img, args string) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	enc := testimage.EncodeSparse(b)
	if len(enc) > 16<<10 {
		t.Fatalf("%s seed %s encodes to %d bytes", target, name, len(enc))
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n%s", enc, args)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFuzzSeeds checks that the layout seeds decode to the disks they
// were made from.
func TestFuzzSeeds(t *testing.T) {
	for name, want := range map[string]string{"dos": "mbr 1:ext4 5: 6:", "gpt": "gpt 1: 2:ext4 3:", "whole-disk": "none 0:ext4"} {
		body, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzReadLayout", name))
		if err != nil {
			t.Fatal(err)
		}
		lit, _ := strings.CutPrefix(string(body), "go test fuzz v1\n[]byte(")
		lit, _ = strings.CutSuffix(lit, ")\n")
		in, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := filepath.Join(t.TempDir(), "disk.raw")
		if err := testimage.DecodeSparse([]byte(in)).WriteFile(p); err != nil {
			t.Fatal(err)
		}
		l, err := readLayout(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := l.Table
		for _, part := range l.Parts {
			got += fmt.Sprintf(" %d:%s", part.Index, part.FS)
		}
		if got != want {
			t.Errorf("%s: layout %q, want %q", name, got, want)
		}
	}
}

// TestLayoutHugeGPTPartition: GPT entries hold 64-bit sector numbers, so a
// partition's byte offset, or its end, can overflow int64. Such a
// partition lies beyond the image; it must not wrap around into it.
func TestLayoutHugeGPTPartition(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzReadLayout", "gpt"))
	if err != nil {
		t.Fatal(err)
	}
	lit, _ := strings.CutPrefix(string(body), "go test fuzz v1\n[]byte(")
	lit, _ = strings.CutSuffix(lit, ")\n")
	in, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		start, end uint64 // sectors
	}{
		{"end overflows", 1 << 53, 1<<54 - 1},
		{"start wraps to 2 MiB", 1<<55 + 4096, 1<<55 + 4096 + 2047},
		{"end before start", 4096, 4095 - 2048},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := testimage.DecodeSparse([]byte(in))
			// The second entry of the primary and the backup arrays.
			for _, h := range []int64{sectorSize, img.Size - sectorSize} {
				hdr := make([]byte, sectorSize)
				if _, err := img.ReadAt(hdr, h); err != nil {
					t.Fatal(err)
				}
				entry := int64(binary.LittleEndian.Uint64(hdr[72:80]))*sectorSize + 128
				e := make([]byte, 16)
				binary.LittleEndian.PutUint64(e, c.start)
				binary.LittleEndian.PutUint64(e[8:], c.end)
				img.Extents = append(img.Extents, testimage.Extent{Off: entry + 32, Data: e})
			}
			img = fixGPTChecksums(img)
			p := filepath.Join(t.TempDir(), "disk.raw")
			if err := img.WriteFile(p); err != nil {
				t.Fatal(err)
			}
			l, err := readLayout(p)
			if err != nil {
				t.Fatal(err)
			}
			if l.Table != tableGPT || len(l.Parts) != 3 {
				t.Fatalf("layout %+v", l)
			}
			if part := l.Parts[1]; !part.Beyond || part.FS != "" {
				t.Errorf("partition %+v of a %d-byte image: want it beyond the end, unprobed", part, l.Size)
			}
		})
	}
}
