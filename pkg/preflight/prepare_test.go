package preflight

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/galevm/gale/pkg/internal/testtool"
)

// toolPath sets PATH to a fresh directory holding links to the host tools
// preflight uses, and nothing else (so no virt-customize), and returns it.
func toolPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range []string{"prlimit", "debugfs", "e2fsck", "zstd", "xz", "lz4", "bzip2"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			if testtool.Strict() {
				testtool.Need(t, "see scripts/packages.txt, group unit", tool)
			}
			continue
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	return dir
}

// fakeVirtCustomize puts a virt-customize on PATH that records its
// arguments, one per line, in the returned file and exits with code.
func fakeVirtCustomize(t *testing.T, bin string, code int) string {
	t.Helper()
	log := filepath.Join(t.TempDir(), "args")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + log + "\necho 'virt-customize: error: fake failure' >&2\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(filepath.Join(bin, "virt-customize"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return log
}

// changeFor returns the changes of one check.
func changesFor(cs []Change, check string) []Change {
	var out []Change
	for _, c := range cs {
		if c.Check == check {
			out = append(out, c)
		}
	}
	return out
}

var statOwnerRE = regexp.MustCompile(`Mode:\s+(\d+).*\n(?:.*\n)*?User:\s+(\d+)\s+Group:\s+(\d+)`)

// owner returns "mode uid gid" of a file in the fixture.
func owner(t *testing.T, device, p string) string {
	t.Helper()
	m := statOwnerRE.FindStringSubmatch(debugfsCmd(t, device, false, "stat "+p))
	if m == nil {
		t.Fatalf("stat %s: no mode/owner", p)
	}
	return m[1] + " " + m[2] + " " + m[3]
}

func TestPrepareRewritesDeviceNames(t *testing.T) {
	needTools(t)
	initrd := gzipped(t, cpioBytes(t, moduleMembers("ata/ahci.ko")...))
	fstab := "/dev/sda1 / ext4 errors=remount-ro 0 1\n# /dev/sdb1 /old ext4 defaults 0 2\n/dev/disk/by-id/ata-DISK-part3 /data ext4 defaults 0 2\n/dev/hdb2 none swap sw 0 0\n"
	img := diskWithRoot(t, "dos", system(fstab, "root=/dev/sda1 ro resume=/dev/sda2 quiet", initrd))
	device := dev(img, partStart)
	debugfsCmd(t, device, true, "sif /etc/fstab mode 0100640")
	debugfsCmd(t, device, true, "sif /etc/fstab uid 1234")
	debugfsCmd(t, device, true, "sif /etc/fstab gid 4321")
	debugfsCmd(t, device, true, "ea_set /etc/fstab user.gale-test kept")
	debugfsCmd(t, device, true, "sif /boot/grub/grub.cfg mode 0100600")
	toolPath(t)

	rep := inspectOK(t, img)
	changes, err := Prepare(context.Background(), img, rep)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	for _, c := range changes {
		t.Logf("change: %+v", c)
	}

	names := changesFor(changes, CheckDeviceNames)
	var applied []string
	for _, c := range names {
		if c.Applied {
			applied = append(applied, c.Detail)
		}
	}
	wantApplied := []string{
		"/etc/fstab: /dev/sda1 -> /dev/vda1, /dev/hdb2 -> /dev/vdb2",
		"/boot/grub/grub.cfg: /dev/sda1 -> /dev/vda1, /dev/sda2 -> /dev/vda2",
	}
	if strings.Join(applied, "\n") != strings.Join(wantApplied, "\n") {
		t.Errorf("applied device-name changes:\n%s\nwant:\n%s", strings.Join(applied, "\n"), strings.Join(wantApplied, "\n"))
	}
	var manual bool
	for _, c := range names {
		if !c.Applied && strings.Contains(c.Detail, "/dev/disk/by-id/ata-DISK-part3") {
			manual = true
		}
	}
	if !manual {
		t.Error("no not-applied change for the by-id name")
	}

	gotFstab := debugfsCmd(t, device, false, "cat /etc/fstab")
	wantFstab := "# <file system> <mount point> <type> <options> <dump> <pass>\n" + strings.NewReplacer("/dev/sda1 /", "/dev/vda1 /", "/dev/hdb2", "/dev/vdb2").Replace(fstab)
	if gotFstab != wantFstab {
		t.Errorf("fstab after Prepare:\n%s\nwant:\n%s", gotFstab, wantFstab)
	}
	if !strings.Contains(gotFstab, "# /dev/sdb1") {
		t.Error("comment line was rewritten")
	}
	grub := debugfsCmd(t, device, false, "cat /boot/grub/grub.cfg")
	if !strings.Contains(grub, "root=/dev/vda1 ro resume=/dev/vda2 quiet") || strings.Contains(grub, "/dev/sda") {
		t.Errorf("grub.cfg after Prepare:\n%s", grub)
	}
	if got := owner(t, device, "/etc/fstab"); got != "0640 1234 4321" {
		t.Errorf("fstab mode/owner %q, want 0640 1234 4321", got)
	}
	if got := owner(t, device, "/boot/grub/grub.cfg"); got != "0600 0 0" && !strings.HasPrefix(got, "0600 ") {
		t.Errorf("grub.cfg mode/owner %q, want 0600", got)
	}
	if ea := debugfsCmd(t, device, false, "ea_list /etc/fstab"); !strings.Contains(ea, `user.gale-test (4) = "kept"`) {
		t.Errorf("fstab extended attributes after Prepare: %q", ea)
	}
	if ls := debugfsCmd(t, device, false, "ls /etc"); strings.Contains(ls, ".gale-") {
		t.Errorf("temporary file left in /etc: %s", ls)
	}
	run(t, "", "e2fsck", "-fn", device)

	virtio := changesFor(changes, CheckVirtioInitramfs)
	if len(virtio) != 1 || virtio[0].Applied || !strings.HasPrefix(virtio[0].Detail, "virt-customize not found: install libguestfs-tools to add virtio drivers to the initramfs") {
		t.Errorf("virtio-initramfs changes = %+v, want one not applied for the missing virt-customize", virtio)
	}
	for _, check := range []string{CheckGuestAgent, CheckCloudInit} {
		cs := changesFor(changes, check)
		if len(cs) != 1 || cs[0].Applied || !strings.Contains(cs[0].Detail, "virt-customize not found") || !strings.Contains(cs[0].Detail, "package repositories") {
			t.Errorf("%s changes = %+v, want one not applied", check, cs)
		}
	}

	after := inspectOK(t, img)
	wantFinding(t, after, CheckDeviceNames, SeverityWarn, "/dev/disk/by-id/ata-DISK-part3")
	if f := finding(t, after, CheckDeviceNames); strings.Contains(f.Detail, "/dev/sda") || strings.Contains(f.Detail, "/dev/hdb") {
		t.Errorf("device names left after Prepare: %s", f.Detail)
	}

	again, err := Prepare(context.Background(), img, after)
	if err != nil {
		t.Fatalf("second Prepare: %v", err)
	}
	for _, c := range again {
		if c.Applied {
			t.Errorf("second Prepare changed something: %+v", c)
		}
	}
}

func TestPrepareWithVirtCustomize(t *testing.T) {
	needTools(t)
	initrd := gzipped(t, cpioBytes(t, moduleMembers("ata/ahci.ko")...))
	t.Run("initramfs-tools", func(t *testing.T) {
		files := system("UUID=x / ext4 defaults 0 1\n", "root=UUID=x console=ttyS0", initrd)
		files["usr/sbin/update-initramfs"] = []byte("#!/bin/sh\n")
		img := diskWithRoot(t, "dos", files)
		log := fakeVirtCustomize(t, toolPath(t), 0)
		changes, err := Prepare(context.Background(), img, nil)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		args := readArgs(t, log)
		for _, want := range []string{"-a\n" + img + "\n--format\nraw\n", "--append-line\n/etc/initramfs-tools/modules:virtio_blk\n",
			"--append-line\n/etc/initramfs-tools/modules:virtio_pci\n", "--run-command\nupdate-initramfs -u -k all\n",
			"--install\nqemu-guest-agent\n", "--install\ncloud-init\n"} {
			if !strings.Contains(args, want) {
				t.Errorf("virt-customize arguments lack %q:\n%s", want, args)
			}
		}
		for _, check := range []string{CheckVirtioInitramfs, CheckGuestAgent, CheckCloudInit} {
			if cs := changesFor(changes, check); len(cs) != 1 || !cs[0].Applied {
				t.Errorf("%s changes = %+v, want one applied", check, cs)
			}
		}
	})
	t.Run("dracut", func(t *testing.T) {
		files := system("UUID=x / ext4 defaults 0 1\n", "root=UUID=x", initrd)
		delete(files, "boot/initrd.img-"+testKernel)
		files["boot/initramfs-"+testKernel+".img"] = initrd
		files["usr/bin/dracut"] = []byte("#!/bin/sh\n")
		files["usr/sbin/qemu-ga"] = []byte("#!/bin/sh\n")
		files["usr/bin/cloud-init"] = []byte("#!/bin/sh\n")
		img := diskWithRoot(t, "gpt", files)
		log := fakeVirtCustomize(t, toolPath(t), 0)
		changes, err := Prepare(context.Background(), img, nil)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		args := readArgs(t, log)
		want := "--run-command\ndracut -f --add-drivers \"virtio_blk virtio_pci virtio_scsi\" /boot/initramfs-" + testKernel + ".img " + testKernel + "\n"
		if !strings.Contains(args, want) || !strings.Contains(args, "/etc/dracut.conf.d/90-gale-virtio.conf:") {
			t.Errorf("virt-customize arguments lack the dracut rebuild:\n%s", args)
		}
		if strings.Contains(args, "--install") {
			t.Errorf("installs packages the guest has:\n%s", args)
		}
		if cs := changesFor(changes, CheckVirtioInitramfs); len(cs) != 1 || !cs[0].Applied {
			t.Errorf("virtio-initramfs changes = %+v", cs)
		}
	})
	t.Run("failure", func(t *testing.T) {
		img := diskWithRoot(t, "dos", system("UUID=x / ext4 defaults 0 1\n", "root=UUID=x", initrd))
		fakeVirtCustomize(t, toolPath(t), 1)
		changes, err := Prepare(context.Background(), img, nil)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		cs := changesFor(changes, CheckVirtioInitramfs)
		if len(cs) != 1 || cs[0].Applied || !strings.Contains(cs[0].Detail, "fake failure") {
			t.Errorf("virtio-initramfs changes = %+v, want one not applied with virt-customize's message", cs)
		}
	})
	t.Run("not needed", func(t *testing.T) {
		ok := gzipped(t, cpioBytes(t, moduleMembers("block/virtio_blk.ko", "virtio/virtio_pci.ko")...))
		files := system("UUID=x / ext4 defaults 0 1\n", "root=UUID=x", ok)
		files["usr/sbin/qemu-ga"] = []byte("#!/bin/sh\n")
		files["usr/bin/cloud-init"] = []byte("#!/bin/sh\n")
		img := diskWithRoot(t, "dos", files)
		log := fakeVirtCustomize(t, toolPath(t), 0)
		changes, err := Prepare(context.Background(), img, nil)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		if len(changes) != 0 {
			t.Errorf("changes for a ready image: %+v", changes)
		}
		if _, err := os.Stat(log); err == nil {
			t.Error("virt-customize ran for a ready image")
		}
	})
}

func readArgs(t *testing.T, log string) string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("virt-customize did not run: %v", err)
	}
	return string(b)
}

func TestPrepareReplaysJournal(t *testing.T) {
	needTools(t)
	initrd := gzipped(t, cpioBytes(t, moduleMembers("block/virtio_blk.ko", "virtio/virtio_pci.ko")...))
	files := system("/dev/sda1 / ext4 defaults 0 1\n", "root=UUID=x", initrd)
	files["usr/sbin/qemu-ga"] = []byte("#!/bin/sh\n")
	files["usr/bin/cloud-init"] = []byte("#!/bin/sh\n")
	img := diskWithRoot(t, "dos", files)
	device := dev(img, partStart)
	debugfsCmd(t, device, true, "feature needs_recovery")
	toolPath(t)

	rep := inspectOK(t, img)
	var warned bool
	for _, f := range rep.Findings {
		if f.Check == CheckRootFilesystem && f.Severity == SeverityWarn && strings.Contains(f.Detail, "not cleanly unmounted") {
			warned = true
		}
	}
	if !warned {
		t.Error("no warning for a journal that needs recovery")
	}
	changes, err := Prepare(context.Background(), img, rep)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	cs := changesFor(changes, CheckRootFilesystem)
	if len(cs) != 1 || !cs[0].Applied || !strings.Contains(cs[0].Detail, "replayed the journal") {
		t.Errorf("root-filesystem changes = %+v", cs)
	}
	if features := debugfsCmd(t, device, false, "features"); strings.Contains(features, "needs_recovery") {
		t.Errorf("still needs recovery: %s", features)
	}
	if fstab := debugfsCmd(t, device, false, "cat /etc/fstab"); !strings.Contains(fstab, "/dev/vda1 /") {
		t.Errorf("fstab not rewritten after the replay:\n%s", fstab)
	}
	run(t, "", "e2fsck", "-fn", device)
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(img), ".gale-journal-*"))
	if len(matches) > 0 {
		t.Errorf("partition copies left behind: %v", matches)
	}
}

func TestPrepareRefusesWritesWhenJournalDirty(t *testing.T) {
	needTools(t)
	img := diskWithRoot(t, "dos", system("/dev/sda1 / ext4 defaults 0 1\n", "root=UUID=x", nil))
	in, err := inspect(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	in.guest.root.super[0x60] |= extIncompatRecover
	if err := in.guest.writeFile(context.Background(), "/etc/fstab", []byte("x\n")); err == nil {
		t.Error("writeFile on a filesystem whose journal needs recovery succeeded")
	}
}

func TestPrepareUninspectedRoot(t *testing.T) {
	needTools(t)
	img := newDisk(t, fixtureDiskMiB, "label: dos\nstart=2048, type=L\n")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XFSB"), partStart); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	toolPath(t)

	changes, err := Prepare(context.Background(), img, nil)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	for _, c := range changes {
		t.Logf("change: %+v", c)
		if c.Applied {
			t.Errorf("applied a change to an uninspected root: %+v", c)
		}
	}
	for _, check := range []string{CheckDeviceNames, CheckVirtioInitramfs, CheckGuestAgent, CheckCloudInit} {
		if len(changesFor(changes, check)) != 1 {
			t.Errorf("want one %s change", check)
		}
	}
	if cs := changesFor(changes, CheckDeviceNames); len(cs) == 1 && !strings.Contains(cs[0].Detail, "xfs root filesystems need libguestfs") {
		t.Errorf("device-names change: %s", cs[0].Detail)
	}
}
