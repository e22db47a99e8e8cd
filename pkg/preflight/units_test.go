package preflight

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestFindDeviceNames(t *testing.T) {
	data := strings.Join([]string{
		"/dev/sda1 / ext4 defaults 0 1",
		"# /dev/sdb1 /old ext4",
		"UUID=abc /boot ext4 defaults 0 2",
		"linux /vmlinuz root=/dev/hda3 ro resume=/dev/xvdb2",
		"/dev/nvme0n1p2 /srv xfs defaults 0 0",
		"/dev/nvme0n2p1 /ns2 xfs defaults 0 0",
		"/dev/cciss/c0d1p1 /data ext3 defaults 0 0",
		"/dev/disk/by-id/scsi-SATA_disk-part1 /x ext4 defaults 0 0",
		"/dev/mapper/vg-root / ext4 defaults 0 0",
		"/dev/md0 /raid ext4 defaults 0 0",
		"/dev/sdaX1 /odd ext4 defaults 0 0",
		"tmpfs /dev/shm tmpfs defaults 0 0",
		"/mnt/dev/sda1 /nested none bind 0 0",
		"/dev/vda1 / ext4 defaults 0 1",
	}, "\n")
	var got []string
	for _, r := range findDeviceNames([]byte(data)) {
		got = append(got, r.Name+"="+r.Virtio)
	}
	want := []string{
		"/dev/sda1=/dev/vda1",
		"/dev/hda3=/dev/vda3",
		"/dev/xvdb2=/dev/vdb2",
		"/dev/nvme0n1p2=/dev/vda2",
		"/dev/nvme0n2p1=",
		"/dev/cciss/c0d1p1=/dev/vdb1",
		"/dev/disk/by-id/scsi-SATA_disk-part1=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findDeviceNames:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRewriteDeviceNames(t *testing.T) {
	in := "# keep /dev/sda1\n/dev/sda1 / ext4 0 1\nroot=/dev/sda1 resume=/dev/sdb2 x=/dev/sdaa1\n/dev/disk/by-path/pci-0 /y ext4\n"
	want := "# keep /dev/sda1\n/dev/vda1 / ext4 0 1\nroot=/dev/vda1 resume=/dev/vdb2 x=/dev/vdaa1\n/dev/disk/by-path/pci-0 /y ext4\n"
	out, done := rewriteDeviceNames([]byte(in))
	if string(out) != want {
		t.Errorf("rewrite:\n%s\nwant:\n%s", out, want)
	}
	if strings.Join(done, ",") != "/dev/sda1 -> /dev/vda1,/dev/sdb2 -> /dev/vdb2,/dev/sdaa1 -> /dev/vdaa1" {
		t.Errorf("replacements = %v", done)
	}
	if out, done := rewriteDeviceNames([]byte("UUID=1 / ext4\n")); string(out) != "UUID=1 / ext4\n" || len(done) != 0 {
		t.Errorf("stable names rewritten: %q %v", out, done)
	}
}

func TestKernelCmdlines(t *testing.T) {
	files := []configFile{
		{Path: "/boot/grub/grub.cfg", Data: []byte("menuentry 'x' {\n  linux /vmlinuz-1 root=/dev/sda1 console=ttyS0,115200n8\n}\n")},
		{Path: "/etc/default/grub", Data: []byte("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"console=tty0\"\n")},
		{Path: "/boot/extlinux/extlinux.conf", Data: []byte("LABEL l\n  APPEND root=UUID=1 ro\n")},
		{Path: "/boot/loader/entries/a.conf", Data: []byte("title A\noptions root=/dev/sda2 ro\n")},
		{Path: "/boot/grub2/grubenv", Data: []byte("# GRUB Environment Block\nkernelopts=root=/dev/mapper/r ro\n####")},
		{Path: "/etc/fstab", Data: []byte("linux /x y\n")},
	}
	var got []string
	for _, c := range kernelCmdlines(files) {
		got = append(got, c.Path+": "+strings.Join(c.Args, " "))
	}
	want := []string{
		"/boot/grub/grub.cfg: root=/dev/sda1 console=ttyS0,115200n8",
		"/etc/default/grub: quiet",
		"/etc/default/grub: console=tty0",
		"/boot/extlinux/extlinux.conf: root=UUID=1 ro",
		"/boot/loader/entries/a.conf: root=/dev/sda2 ro",
		"/boot/grub2/grubenv: root=/dev/mapper/r ro",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("kernelCmdlines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !hasSerialConsole([]string{"console=ttyS0"}) || hasSerialConsole([]string{"console=ttyS1"}) || hasSerialConsole([]string{"console=ttyS01"}) {
		t.Error("hasSerialConsole")
	}
}

func TestFixGrubenv(t *testing.T) {
	env := []byte("# GRUB Environment Block\nkernelopts=root=/dev/vda1\n")
	env = append(env, bytes.Repeat([]byte("#"), grubenvSize-len(env)+1)...) // one byte longer after an edit
	fixed, ok := fixGrubenv(env)
	if !ok || len(fixed) != grubenvSize || !bytes.HasPrefix(fixed, []byte("# GRUB Environment Block\nkernelopts=root=/dev/vda1\n#")) {
		t.Errorf("fixGrubenv: ok %v len %d", ok, len(fixed))
	}
	if _, ok := fixGrubenv(bytes.Repeat([]byte("x"), grubenvSize+1)); ok {
		t.Error("fixGrubenv accepted an oversized block")
	}
}

func TestReadCpio(t *testing.T) {
	archive := cpioBytes(t, cpioMember{Name: "a/"}, cpioMember{Name: "a/virtio-blk.ko.xz", Data: []byte("12345")}, cpioMember{Name: "b", Data: nil})
	var names []string
	if err := readCpio(bufio.NewReader(bytes.NewReader(archive)), func(e cpioEntry) { names = append(names, e.Name) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "a,a/virtio-blk.ko.xz,b" {
		t.Errorf("members = %v", names)
	}
	if name, ok := moduleName("a/virtio-blk.ko.xz"); !ok || name != "virtio_blk" {
		t.Errorf("moduleName = %q %v", name, ok)
	}
	if _, ok := moduleName("lib/modules/x/modules.dep"); ok {
		t.Error("modules.dep taken for a module")
	}
	for _, cut := range []int{1, 50, 110, 115, len(archive) - 10} {
		if err := readCpio(bufio.NewReader(bytes.NewReader(archive[:cut])), func(cpioEntry) {}); err == nil {
			t.Errorf("archive cut at %d read without error", cut)
		}
	}
	if err := readCpio(bufio.NewReader(strings.NewReader("hello world")), func(cpioEntry) {}); !errors.Is(err, errNotCpio) {
		t.Errorf("non-cpio: err = %v", err)
	}
	huge := []byte(string(archive[:94]) + "FFFFFFFF" + string(archive[102:]))
	if err := readCpio(bufio.NewReader(bytes.NewReader(huge)), func(cpioEntry) {}); err == nil {
		t.Error("absurd name length accepted")
	}
}

func TestListInitramfsFormats(t *testing.T) {
	early := cpioBytes(t, cpioMember{Name: "kernel/x86/microcode/AuthenticAMD.bin", Data: []byte("ucode")})
	main := cpioBytes(t, moduleMembers("block/virtio_blk.ko")...)
	second := cpioBytes(t, moduleMembers("virtio/virtio_pci.ko.zst")...)
	cases := []struct {
		name    string
		data    func(t *testing.T) []byte
		formats string
	}{
		{"cpio", func(t *testing.T) []byte { return append(append([]byte{}, main...), second...) }, "cpio,cpio"},
		{"early+gzip", func(t *testing.T) []byte {
			return append(append([]byte{}, early...), gzipped(t, append(append([]byte{}, main...), second...))...)
		}, "cpio,gzip"},
		{"gzip+gzip", func(t *testing.T) []byte {
			return append(append(gzipped(t, main), make([]byte, 7)...), gzipped(t, second)...)
		}, "gzip,gzip"},
		{"early+xz", func(t *testing.T) []byte {
			return append(append([]byte{}, early...), compressWith(t, append(append([]byte{}, main...), second...), "xz", "-c", "--check=crc32")...)
		}, "cpio,xz"},
		{"early+lz4", func(t *testing.T) []byte {
			return append(append([]byte{}, early...), compressWith(t, append(append([]byte{}, main...), second...), "lz4", "-l", "-c", "-q")...)
		}, "cpio,lz4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "initrd")
			if err := os.WriteFile(f, c.data(t), 0o644); err != nil {
				t.Fatal(err)
			}
			ir, err := listInitramfs(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			var mods []string
			for m := range ir.Modules {
				mods = append(mods, m)
			}
			sort.Strings(mods)
			if strings.Join(ir.Formats, ",") != c.formats || strings.Join(mods, ",") != "virtio_blk,virtio_pci" {
				t.Errorf("formats %v modules %v", ir.Formats, mods)
			}
		})
	}
	t.Run("corrupt zstd", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "initrd")
		data := compressWith(t, main, "zstd", "-q", "-c")
		data[len(data)/2] ^= 0xff
		data[len(data)/2+1] ^= 0xff
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := listInitramfs(context.Background(), f); err == nil {
			t.Error("corrupt zstd listed without error")
		}
	})
}

func TestVersionLess(t *testing.T) {
	vs := []string{"6.1.0-50-cloud-amd64", "5.10.0-9-amd64", "6.1.0-9-amd64", "4.18.0-513.el8.x86_64", "6.10.1", "6.1.0-50-amd64"}
	sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
	want := "4.18.0-513.el8.x86_64,5.10.0-9-amd64,6.1.0-9-amd64,6.1.0-50-amd64,6.1.0-50-cloud-amd64,6.10.1"
	if strings.Join(vs, ",") != want {
		t.Errorf("sorted %v, want %s", vs, want)
	}
}

func TestKernelVirtioGrades(t *testing.T) {
	mods := func(names ...string) *initramfs {
		ir := &initramfs{Modules: map[string]bool{}, Formats: []string{"gzip"}}
		for _, n := range names {
			ir.Modules[n] = true
		}
		return ir
	}
	cases := []struct {
		k    kernel
		want Severity
	}{
		{kernel{Version: "1", Initramfs: "/boot/i", Contents: mods("virtio_blk", "virtio_pci")}, SeverityOK},
		{kernel{Version: "1", Initramfs: "/boot/i", Contents: mods("virtio_blk")}, SeverityWarn},
		{kernel{Version: "1", Initramfs: "/boot/i", Contents: mods("virtio_scsi", "virtio_pci")}, SeverityWarn},
		{kernel{Version: "1", Initramfs: "/boot/i", Contents: mods("ahci")}, SeverityFail},
		{kernel{Version: "1", Initramfs: "/boot/i", Err: errors.New("bad")}, SeverityWarn},
		{kernel{Version: "1", Builtin: map[string]bool{"virtio_blk": true, "virtio_pci": true}}, SeverityOK},
		{kernel{Version: "1"}, SeverityFail},
	}
	for i, c := range cases {
		if got, desc := kernelVirtio(c.k); got != c.want {
			t.Errorf("case %d: %s (%s), want %s", i, got, desc, c.want)
		}
	}
	in := &inspection{kernels: []kernel{
		{Version: "5.10", Initramfs: "/boot/a", Contents: mods("ahci")},
		{Version: "6.1", Initramfs: "/boot/b", Contents: mods("virtio_blk", "virtio_pci")},
	}}
	if f := in.checkVirtio(); f.Severity != SeverityWarn || !strings.Contains(f.Detail, "older kernels") {
		t.Errorf("old kernel without virtio: %+v", f)
	}
	in.kernels[0], in.kernels[1] = in.kernels[1], in.kernels[0]
	in.kernels[0].Version, in.kernels[1].Version = "5.10", "6.1"
	if f := in.checkVirtio(); f.Severity != SeverityFail {
		t.Errorf("newest kernel without virtio: %+v", f)
	}
}

func TestProbeFS(t *testing.T) {
	mk := func(off int, magic string) []byte {
		b := make([]byte, probeLen)
		copy(b[off:], magic)
		return b
	}
	fat := make([]byte, probeLen)
	copy(fat[0x52:], "FAT32   ")
	fat[11], fat[12], fat[13], fat[510], fat[511] = 0x00, 0x02, 8, 0x55, 0xaa
	cases := map[string][]byte{
		fsXFS:   mk(0, "XFSB"),
		fsBtrfs: mk(0x10040, "_BHRfS_M"),
		fsSwap:  mk(4086, "SWAPSPACE2"),
		fsLUKS:  mk(0, "LUKS\xba\xbe"),
		fsNTFS:  mk(3, "NTFS    "),
		fsVFAT:  fat,
		"":      make([]byte, probeLen),
	}
	lvm := mk(512, "LABELONE")
	copy(lvm[512+24:], "LVM2 001")
	cases[fsLVM] = lvm
	for want, b := range cases {
		if got := probeFS(bytes.NewReader(b), 0, int64(len(b))); got != want {
			t.Errorf("probeFS = %q, want %q", got, want)
		}
	}
	// A bare ext magic without a sane superblock is not ext.
	if got := probeFS(bytes.NewReader(mk(1080, "\x53\xef")), 0, probeLen); got != "" {
		t.Errorf("bare ext magic = %q", got)
	}
}

func TestDebugfsQuoting(t *testing.T) {
	for _, bad := range []string{"/etc/a\"b", "/etc/a\nrm /etc/fstab", "/x\x00"} {
		if _, err := quote(bad); !errors.Is(err, errUnsafeName) {
			t.Errorf("quote(%q) err = %v", bad, err)
		}
	}
	if q, err := quote("/boot/initrd.img-6.1.0 x"); err != nil || q != `"/boot/initrd.img-6.1.0 x"` {
		t.Errorf("quote = %q %v", q, err)
	}
	if !safeNameRE.MatchString("6.1.0-50-cloud-amd64") || safeNameRE.MatchString("6.1;reboot") || safeNameRE.MatchString("-x") {
		t.Error("safeNameRE")
	}
}

func TestReportReady(t *testing.T) {
	r := &Report{Findings: []Finding{{Check: CheckOS, Severity: SeverityWarn}, {Check: CheckCloudInit, Severity: SeverityInfo}}}
	if !r.Ready() {
		t.Error("warnings made the report not ready")
	}
	r.Findings = append(r.Findings, Finding{Check: CheckVirtioInitramfs, Severity: SeverityFail})
	if r.Ready() {
		t.Error("a failed finding left the report ready")
	}
	if f, ok := r.Finding(CheckVirtioInitramfs); !ok || f.Severity != SeverityFail {
		t.Error("Finding lookup")
	}
}
