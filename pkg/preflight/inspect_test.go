package preflight

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileHash returns the SHA-256 of a file.
func fileHash(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// inspectOK runs Inspect and fails the test on error.
func inspectOK(t *testing.T, img string) *Report {
	t.Helper()
	r, err := Inspect(context.Background(), img)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("report:\n%s", b)
	return r
}

// finding returns the named finding, failing the test when there is none.
func finding(t *testing.T, r *Report, check string) Finding {
	t.Helper()
	f, ok := r.Finding(check)
	if !ok {
		t.Fatalf("no %s finding", check)
	}
	return f
}

// wantFinding checks a finding's severity and that its detail holds each
// of parts.
func wantFinding(t *testing.T, r *Report, check string, sev Severity, parts ...string) {
	t.Helper()
	f := finding(t, r, check)
	if f.Severity != sev {
		t.Errorf("%s: severity %s, want %s (%s)", check, f.Severity, sev, f.Detail)
	}
	for _, p := range parts {
		if !strings.Contains(f.Detail, p) {
			t.Errorf("%s: detail %q lacks %q", check, f.Detail, p)
		}
	}
	if (sev == SeverityWarn || sev == SeverityFail) && f.Fix == "" {
		t.Errorf("%s: %s finding without a fix", check, sev)
	}
}

func TestInspectMBRWithDeviceNames(t *testing.T) {
	needTools(t)
	initrd := gzipped(t, cpioBytes(t, moduleMembers("block/virtio_blk.ko", "virtio/virtio_pci.ko", "virtio/virtio_ring.ko")...))
	files := system("/dev/sda1 / ext4 errors=remount-ro 0 1\n/dev/sda2 none swap sw 0 0\n", "root=/dev/sda1 ro console=tty0 quiet", initrd)
	files["usr/sbin/qemu-ga"] = []byte("#!/bin/sh\n")
	img := diskWithRoot(t, "dos", files)
	before := fileHash(t, img)

	r := inspectOK(t, img)
	if fileHash(t, img) != before {
		t.Error("Inspect changed the image")
	}
	if r.PartitionTable != "mbr" || r.RootPartition != 1 || r.RootFS != "ext4" || r.BootPartition != 0 {
		t.Errorf("layout: table %q root %d %q boot %d", r.PartitionTable, r.RootPartition, r.RootFS, r.BootPartition)
	}
	if r.OS != "Gale Test Linux 1 (fixture)" {
		t.Errorf("OS = %q", r.OS)
	}
	if strings.Join(r.Kernels, ",") != testKernel {
		t.Errorf("Kernels = %v", r.Kernels)
	}
	if !r.GuestAgent || r.CloudInit {
		t.Errorf("GuestAgent %v CloudInit %v, want true false", r.GuestAgent, r.CloudInit)
	}
	wantFinding(t, r, CheckPartitions, SeverityOK, "mbr", "1 ext4")
	wantFinding(t, r, CheckRootFilesystem, SeverityOK, "ext4 (partition 1)")
	wantFinding(t, r, CheckOS, SeverityOK, "Gale Test Linux 1", testKernel)
	wantFinding(t, r, CheckVirtioInitramfs, SeverityOK, "virtio_blk", "virtio_pci", "/boot/initrd.img-"+testKernel, "gzip")
	wantFinding(t, r, CheckDeviceNames, SeverityWarn, "/etc/fstab:2 /dev/sda1", "/etc/fstab:3 /dev/sda2", "/boot/grub/grub.cfg:4 /dev/sda1", "/dev/sda1 becomes /dev/vda1")
	wantFinding(t, r, CheckGuestAgent, SeverityOK, "installed")
	wantFinding(t, r, CheckCloudInit, SeverityInfo, "gale falls back to the guest agent, then to a TCP port (--ready-port)")
	wantFinding(t, r, CheckSerialConsole, SeverityInfo, "no console=ttyS0")
	if f := finding(t, r, CheckDeviceNames); f.Fix != fixDeviceNames {
		t.Errorf("device-names fix = %q", f.Fix)
	}
	if !r.Ready() {
		t.Error("Ready() = false, want true: only warnings")
	}
	var order []string
	for _, f := range r.Findings {
		order = append(order, f.Check)
	}
	want := "partitions,root-filesystem,os,virtio-initramfs,device-names,guest-agent,cloud-init,serial-console"
	if strings.Join(order, ",") != want {
		t.Errorf("finding order %v, want %s", order, want)
	}
}

func TestInspectGPTEarlyCpioAndZstd(t *testing.T) {
	needTools(t)
	microcode := cpioBytes(t, cpioMember{Name: "kernel/"}, cpioMember{Name: "kernel/x86/"}, cpioMember{Name: "kernel/x86/microcode/"},
		cpioMember{Name: "kernel/x86/microcode/GenuineIntel.bin", Data: bytes.Repeat([]byte{0xAA}, 1001)})
	main := compressWith(t, cpioBytes(t, moduleMembers("block/virtio_blk.ko.zst", "virtio/virtio_pci.ko.xz", "scsi/virtio_scsi.ko")...), "zstd", "-q", "-c")
	initrd := append(append(microcode, make([]byte, 512-len(microcode)%512)...), main...)
	files := system("UUID=0fd4338b-a7ae-42ce-9fbc-ceeea9f8821d / ext4 defaults 0 1\nLABEL=swap none swap sw 0 0\n",
		"root=UUID=0fd4338b-a7ae-42ce-9fbc-ceeea9f8821d ro console=tty0 console=ttyS0,115200n8", initrd)
	files["usr/bin/cloud-init"] = []byte("#!/bin/sh\n")
	img := diskWithRoot(t, "gpt", files)

	r := inspectOK(t, img)
	if r.PartitionTable != "gpt" || r.RootPartition != 1 || r.RootFS != "ext4" {
		t.Errorf("layout: table %q root %d %q", r.PartitionTable, r.RootPartition, r.RootFS)
	}
	if r.GuestAgent || !r.CloudInit {
		t.Errorf("GuestAgent %v CloudInit %v, want false true", r.GuestAgent, r.CloudInit)
	}
	wantFinding(t, r, CheckVirtioInitramfs, SeverityOK, "virtio_blk, virtio_scsi, virtio_pci", "(cpio + zstd)")
	wantFinding(t, r, CheckDeviceNames, SeverityOK)
	wantFinding(t, r, CheckGuestAgent, SeverityWarn, "not installed", "cloud-init, then a TCP port (--ready-port)")
	wantFinding(t, r, CheckCloudInit, SeverityOK, "installed")
	wantFinding(t, r, CheckSerialConsole, SeverityInfo, "console=ttyS0 is on the kernel command line (/boot/grub/grub.cfg)")
	if !r.Ready() {
		t.Error("Ready() = false")
	}
}

func TestInspectNoVirtioFails(t *testing.T) {
	needTools(t)
	initrd := gzipped(t, cpioBytes(t, moduleMembers("ata/ahci.ko", "scsi/sd_mod.ko")...))
	img := diskWithRoot(t, "dos", system("UUID=x / ext4 defaults 0 1\n", "root=UUID=x", initrd))

	r := inspectOK(t, img)
	wantFinding(t, r, CheckVirtioInitramfs, SeverityFail, testKernel+": no virtio_blk or virtio_scsi in initramfs /boot/initrd.img-"+testKernel)
	if r.Ready() {
		t.Error("Ready() = true with no virtio driver")
	}
	wantFinding(t, r, CheckGuestAgent, SeverityWarn, "a TCP port (--ready-port)")
	wantFinding(t, r, CheckCloudInit, SeverityInfo, "falls back to a TCP port (--ready-port)")
}

func TestInspectBuiltinVirtio(t *testing.T) {
	needTools(t)
	initrd := gzipped(t, cpioBytes(t, moduleMembers("ata/ahci.ko")...))
	files := system("UUID=x / ext4 defaults 0 1\n", "root=UUID=x", initrd)
	files["lib/modules/"+testKernel+"/modules.builtin"] = []byte("kernel/drivers/block/virtio_blk.ko\nkernel/drivers/virtio/virtio_pci.ko\n")
	img := diskWithRoot(t, "dos", files)

	r := inspectOK(t, img)
	wantFinding(t, r, CheckVirtioInitramfs, SeverityOK, "virtio_blk (built in)", "virtio_pci (built in)")
}

func TestInspectNoInitramfs(t *testing.T) {
	needTools(t)
	files := system("UUID=x / ext4 defaults 0 1\n", "root=UUID=x", nil)
	delete(files, "boot/initrd.img-"+testKernel)
	img := diskWithRoot(t, "dos", files)

	r := inspectOK(t, img)
	wantFinding(t, r, CheckVirtioInitramfs, SeverityFail, "no initramfs")
}

func TestInspectUnreadableInitramfs(t *testing.T) {
	needTools(t)
	img := diskWithRoot(t, "dos", system("UUID=x / ext4 defaults 0 1\n", "root=UUID=x", []byte("not an initramfs at all")))

	r := inspectOK(t, img)
	wantFinding(t, r, CheckVirtioInitramfs, SeverityWarn, "could not list it", "unknown format")
}

func TestInspectSeparateBootOnLogicalPartition(t *testing.T) {
	needTools(t)
	initrd := gzipped(t, cpioBytes(t, moduleMembers("block/virtio_blk.ko", "virtio/virtio_pci.ko")...))
	sys := system("/dev/sda5 / ext4 defaults 0 1\n/dev/sda1 /boot ext4 defaults 0 2\n", "root=/dev/sda5 ro console=ttyS0", initrd)
	boot, root := map[string][]byte{}, map[string][]byte{}
	for p, data := range sys {
		if rest, ok := strings.CutPrefix(p, "boot/"); ok {
			boot[rest] = data
		} else {
			root[p] = data
		}
	}
	root["boot/.keep"] = nil
	// p1 /boot (16 MiB), p2 extended, p5 logical root (40 MiB).
	img := newDisk(t, fixtureDiskMiB, "label: dos\nstart=2048, size=32768, type=L\nstart=36864, size=126976, type=5\nstart=38912, size=81920, type=L\n")
	mkfs(t, img, partStart, 16, writeTree(t, boot))
	mkfs(t, img, 38912*512, 40, writeTree(t, root))

	r := inspectOK(t, img)
	if r.RootPartition != 5 || r.BootPartition != 1 {
		t.Errorf("root %d boot %d, want 5 and 1", r.RootPartition, r.BootPartition)
	}
	wantFinding(t, r, CheckPartitions, SeverityOK, "1 ext4", "5 ext4")
	wantFinding(t, r, CheckRootFilesystem, SeverityOK, "partition 5", "/boot is ext4 on partition 1")
	wantFinding(t, r, CheckVirtioInitramfs, SeverityOK, "virtio_blk")
	wantFinding(t, r, CheckDeviceNames, SeverityWarn, "/etc/fstab:2 /dev/sda5", "/boot/grub/grub.cfg:4 /dev/sda5")
	wantFinding(t, r, CheckSerialConsole, SeverityInfo, "console=ttyS0 is on")
}

func TestInspectWholeDiskFilesystem(t *testing.T) {
	needTools(t)
	initrd := gzipped(t, cpioBytes(t, moduleMembers("block/virtio_blk.ko", "virtio/virtio_pci.ko")...))
	img := newDisk(t, fixturePartMiB, "")
	mkfs(t, img, 0, fixturePartMiB, writeTree(t, system("LABEL=root / ext4 defaults 0 1\n", "root=LABEL=root", initrd)))

	r := inspectOK(t, img)
	if r.PartitionTable != "none" || r.RootPartition != 0 || r.RootFS != "ext4" {
		t.Errorf("table %q root %d %q, want none 0 ext4", r.PartitionTable, r.RootPartition, r.RootFS)
	}
	wantFinding(t, r, CheckPartitions, SeverityOK, "ext4 on the whole disk")
	wantFinding(t, r, CheckRootFilesystem, SeverityOK, "the whole disk")
	wantFinding(t, r, CheckVirtioInitramfs, SeverityOK)
	if r.OS == "" {
		t.Error("OS not read from a whole-disk filesystem")
	}
}

func TestInspectXFSNotInspected(t *testing.T) {
	needTools(t)
	img := newDisk(t, fixtureDiskMiB, "label: dos\nstart=2048, size=32768, type=L\nstart=40960, type=L\n")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XFSB\x00\x00\x10\x00"), partStart); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XFSB\x00\x00\x10\x00"), 40960*512); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	r := inspectOK(t, img)
	if r.RootFS != "xfs" || r.RootPartition != 2 {
		t.Errorf("root %d %q, want 2 xfs (the larger)", r.RootPartition, r.RootFS)
	}
	wantFinding(t, r, CheckRootFilesystem, SeverityWarn, "not inspected: xfs root filesystems need libguestfs (virt-inspector)")
	if _, ok := r.Finding(CheckVirtioInitramfs); ok {
		t.Error("virtio-initramfs checked on a root that was not inspected")
	}
	if !r.Ready() {
		t.Error("Ready() = false for a root that was only not inspected")
	}
}

func TestInspectLVMNotInspected(t *testing.T) {
	needTools(t)
	img := newDisk(t, fixtureDiskMiB, "label: gpt\nstart=2048, size=32768, type=L\n")
	label := make([]byte, 32)
	copy(label, "LABELONE")
	copy(label[24:], "LVM2 001")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(label, partStart+512); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	r := inspectOK(t, img)
	wantFinding(t, r, CheckRootFilesystem, SeverityWarn, "not inspected: lvm root filesystems need libguestfs (virt-inspector)")
}

func TestInspectGarbage(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	rnd := rand.New(rand.NewSource(1))
	random := make([]byte, 4<<20)
	rnd.Read(random)
	// A valid MBR signature over random partition entries.
	badMBR := append([]byte(nil), random[:1<<20]...)
	badMBR[510], badMBR[511] = 0x55, 0xaa
	for i := 0; i < 4; i++ {
		badMBR[446+16*i] = 0
	}
	// A GPT signature with an absurd entry count.
	badGPT := make([]byte, 1<<20)
	copy(badGPT[512:], "EFI PART")
	copy(badGPT[512+80:], []byte{0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0})
	cases := map[string][]byte{
		"random":  random,
		"empty":   nil,
		"tiny":    []byte("0123456789"),
		"zeros":   make([]byte, 1<<20),
		"bad-mbr": badMBR,
		"bad-gpt": badGPT,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(dir, name+".raw")
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Inspect(context.Background(), img)
			if err != nil {
				t.Logf("error (allowed): %v", err)
				return
			}
			t.Logf("findings: %+v", r.Findings)
			if r.Ready() {
				t.Errorf("garbage reported ready: %+v", r.Findings)
			}
			if _, err := Prepare(context.Background(), img, r); err == nil {
				t.Error("Prepare on garbage succeeded")
			}
		})
	}
}

func TestInspectMissingImage(t *testing.T) {
	if _, err := Inspect(context.Background(), filepath.Join(t.TempDir(), "nope.raw")); err == nil {
		t.Error("Inspect of a missing file succeeded")
	}
}

func TestInspectMissingTool(t *testing.T) {
	needTools(t)
	img := diskWithRoot(t, "dos", system("UUID=x / ext4 defaults 0 1\n", "root=UUID=x", nil))
	t.Setenv("PATH", t.TempDir())
	_, err := Inspect(context.Background(), img)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Inspect without prlimit/debugfs: err = %v, want a missing-tool error", err)
	}
}
