package preflight

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galevm/gale/pkg/internal/testtool"
)

// Fixture disks are built from directory trees with sfdisk and
// mke2fs -d -E offset=, and read back with debugfs.

const (
	fixtureDiskMiB = 80
	fixturePartMiB = 64
	partStart      = 1 << 20 // sector 2048
	testKernel     = "6.1.0-test"
)

// needTools ends the test when the fixture tools are missing (see testtool).
func needTools(t *testing.T) {
	t.Helper()
	testtool.Need(t, "Debian: fdisk, e2fsprogs, util-linux", "sfdisk", "mke2fs", "debugfs", "prlimit")
}

// run runs a fixture command and fails the test on error.
func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// writeTree writes files (path relative to the tree root, contents) under a
// new directory and returns it.
func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	for p, data := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.Contains(p, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(full, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// mkfs makes an ext4 filesystem of sizeMiB from tree in img at offset.
func mkfs(t *testing.T, img string, offset int64, sizeMiB int, tree string) {
	t.Helper()
	run(t, "", "mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, "-E", fmt.Sprintf("offset=%d", offset), img, fmt.Sprintf("%dM", sizeMiB))
}

// newDisk creates an empty sparse disk image partitioned by the sfdisk
// script (no partitioning when script is "").
func newDisk(t *testing.T, sizeMiB int, script string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if script != "" {
		run(t, script, "sfdisk", "-q", img)
	}
	return img
}

// diskWithRoot builds a disk with one partition (label "dos" or "gpt")
// holding an ext4 filesystem made from files.
func diskWithRoot(t *testing.T, label string, files map[string][]byte) string {
	t.Helper()
	img := newDisk(t, fixtureDiskMiB, fmt.Sprintf("label: %s\nstart=2048, size=%d, type=L\n", label, fixturePartMiB<<11))
	mkfs(t, img, partStart, fixturePartMiB, writeTree(t, files))
	return img
}

// dev is the debugfs device of the fixture partition at offset.
func dev(img string, offset int64) string { return fmt.Sprintf("%s?offset=%d", img, offset) }

// debugfsCmd runs one debugfs request on the fixture.
func debugfsCmd(t *testing.T, device string, write bool, req string) string {
	t.Helper()
	args := []string{"-R", req, device}
	if write {
		args = append([]string{"-w"}, args...)
	}
	return run(t, "", "debugfs", args...)
}

// cpioMember is a member of a test cpio archive: a directory when the name
// ends in "/", else a regular file.
type cpioMember struct {
	Name string
	Data []byte
}

// writeCpio writes a newc archive of members to w.
func writeCpio(w io.Writer, members []cpioMember) error {
	ino := 1
	write := func(name string, mode uint32, data []byte) error {
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		ino++
		buf := append([]byte(hdr), name...)
		buf = append(buf, 0)
		buf = append(buf, make([]byte, pad4(int64(len(buf))))...)
		buf = append(buf, data...)
		buf = append(buf, make([]byte, pad4(int64(len(data))))...)
		_, err := w.Write(buf)
		return err
	}
	for _, m := range members {
		mode, name := uint32(0o100644), m.Name
		if strings.HasSuffix(name, "/") {
			mode, name = 0o040755, strings.TrimSuffix(name, "/")
		}
		if err := write(name, mode, m.Data); err != nil {
			return err
		}
	}
	return write(cpioTrailer, 0, nil)
}

// cpioBytes returns a newc archive of members.
func cpioBytes(t testing.TB, members ...cpioMember) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeCpio(&b, members); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// moduleMembers returns cpio members for kernel modules of testKernel.
func moduleMembers(files ...string) []cpioMember {
	base := "lib/modules/" + testKernel + "/kernel/drivers/"
	ms := []cpioMember{{Name: "lib/"}, {Name: "lib/modules/"}, {Name: "init", Data: []byte("#!/bin/sh\n")}}
	for _, f := range files {
		ms = append(ms, cpioMember{Name: base + f, Data: []byte("\x7fELF module " + f)})
	}
	return ms
}

// gzipped returns data compressed with gzip.
func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// compressWith compresses data with a command-line compressor, ending the
// test when it is not installed (see testtool).
func compressWith(t *testing.T, data []byte, name string, args ...string) []byte {
	t.Helper()
	testtool.Need(t, "see scripts/packages.txt, group unit", name)
	return []byte(run(t, string(data), name, args...))
}

// osRelease is a test os-release.
const osRelease = "NAME=\"Gale Test Linux\"\nVERSION_ID=\"1\"\nID=debian\nPRETTY_NAME=\"Gale Test Linux 1 (fixture)\"\n"

// system returns the files of a minimal Debian-like system with a kernel
// whose initramfs is initrd. Callers add or override entries.
func system(fstab, grubCmdline string, initrd []byte) map[string][]byte {
	return map[string][]byte{
		"etc/os-release": []byte(osRelease),
		"etc/fstab":      []byte("# <file system> <mount point> <type> <options> <dump> <pass>\n" + fstab),
		"boot/grub/grub.cfg": []byte("set default=0\nmenuentry 'Gale Test Linux' {\n\tset root='hd0,msdos1'\n\tlinux /boot/vmlinuz-" + testKernel + " " + grubCmdline +
			"\n\tinitrd /boot/initrd.img-" + testKernel + "\n}\n"),
		"boot/vmlinuz-" + testKernel:                              []byte("kernel"),
		"boot/initrd.img-" + testKernel:                           initrd,
		"lib/modules/" + testKernel + "/modules.dep":              []byte(""),
		"lib/modules/" + testKernel + "/modules.builtin":          []byte("kernel/fs/ext4/ext4.ko\n"),
		"lib/modules/" + testKernel + "/kernel/drivers/block/x.o": []byte(""),
	}
}
