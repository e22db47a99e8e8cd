//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/galevm/gale/pkg/api"
)

// The image scenarios: gale's image verbs on real images and VMs, against
// loopback web servers. The number in each scenario's comment is how many
// checks of the former scripts/e2e-images.sh it carries (119 in all);
// README.md has the table.

// writeCatalog writes the user catalog the image scenarios use: entries
// served by the loopback servers www and cut (base URLs), and one whose
// server is unreachable. (The broken file is images_catalog's own: it fails
// `gale doctor`.)
func writeCatalog(dir, www, cut string) error {
	entry := func(name, url, format, sumsURL string) string {
		return fmt.Sprintf(`name: %s
os: debian
description: test entry served from loopback
defaults: {cpus: 1, memory_mib: 1024, disk_gib: 4}
boot: bios
user: gale
source:
  url: %s
  format: %s
  checksum: {url: "%s", algorithm: sha256}
`, name, url, format, sumsURL)
	}
	files := map[string]string{
		"loop-qcow2":    entry("loop-qcow2", www+"/debian.qcow2.gz", "qcow2", www+"/QCOW2SUMS"),
		"loop-raw":      entry("loop-raw", www+"/debian.raw.zst", "raw", www+"/RAWSUMS"),
		"loop-wrongsum": entry("loop-wrongsum", www+"/debian.qcow2.gz", "qcow2", www+"/WRONGSUMS"),
		"loop-bomb":     entry("loop-bomb", www+"/bomb.raw.zst", "raw", www+"/BOMBSUMS"),
		"loop-offline":  entry("loop-offline", "http://127.0.0.1:1/debian.qcow2.gz", "qcow2", "http://127.0.0.1:1/QCOW2SUMS"),
		"loop-cut":      entry("loop-cut", cut+"/debian.qcow2.gz", "qcow2", www+"/QCOW2SUMS"),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(body), 0o644); err != nil {
			return err
		}
	}
	wrong := strings.Repeat("0", 64) + "  debian.qcow2.gz\n"
	return os.WriteFile(filepath.Join(filepath.Dir(dir), "www", "WRONGSUMS"), []byte(wrong), 0o644)
}

// Artifacts: files several image scenarios read, each made once per run by
// the first scenario that needs it, and never changed afterwards.
var (
	artifactMu sync.Mutex
	artifacts  = map[string]*artifact{}
)

type artifact struct {
	once sync.Once
	err  error
}

// makeOnce runs mk the first time key is asked for, and stops the scenario
// if mk failed (then or at an earlier ask). It returns path, for chaining.
func (s *S) makeOnce(key, path string, mk func() error) string {
	s.Helper()
	artifactMu.Lock()
	a := artifacts[key]
	if a == nil {
		a = &artifact{}
		artifacts[key] = a
	}
	artifactMu.Unlock()
	a.once.Do(func() {
		start := time.Now()
		a.err = mk()
		s.Logf("made %s in %s", key, time.Since(start).Round(100*time.Millisecond))
	})
	if a.err != nil {
		s.Fatalf("make %s: %v", key, a.err)
	}
	return path
}

// sh runs a shell command line with arguments $1... and returns an error
// with its output if it fails.
func sh(script string, args ...string) error {
	out, err := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", script, err, out)
	}
	return nil
}

// workDisk is the template converted to format f (raw, qcow2, vmdk, vpc,
// vhdx, vdi) in the work directory.
func (s *S) workDisk(f string) string {
	p := filepath.Join(s.Env.Dir, "work", "disk."+f)
	return s.makeOnce("disk."+f, p, func() error {
		return sh(`qemu-img convert -f qcow2 -O "$1" "$2" "$3"`, f, s.Env.Template, p)
	})
}

// served makes file in the www directory with mk (a shell script whose $1
// is the file to write, $2 the template, $3 the raw disk if withRaw) and,
// if sums is not empty, a checksum file listing it.
func (s *S) served(file, sums, script string, withRaw bool) string {
	raw := ""
	if withRaw {
		raw = s.workDisk("raw")
	}
	p := filepath.Join(s.Env.Dir, "www", file)
	return s.makeOnce(file, p, func() error {
		if err := sh(script, p, s.Env.Template, raw); err != nil {
			return err
		}
		sum, err := sha256File(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(s.Env.Dir, "www", sums), []byte(sum+"  "+file+"\n"), 0o644)
	})
}

// servedQcow2 is the template gzip'd, with QCOW2SUMS (entries loop-qcow2,
// loop-cut, loop-wrongsum, loop-offline).
func (s *S) servedQcow2() string {
	return s.served("debian.qcow2.gz", "QCOW2SUMS", `gzip -1 -c "$2" >"$1"`, false)
}

// servedRaw is the template as a zstd'd raw disk, with RAWSUMS (entry loop-raw).
func (s *S) servedRaw() string {
	return s.served("debian.raw.zst", "RAWSUMS", `zstd -q -1 -T0 -c "$3" >"$1"`, true)
}

// servedBomb is 5 GiB of zeros, zstd'd, with BOMBSUMS (entry loop-bomb).
func (s *S) servedBomb() string {
	return s.served("bomb.raw.zst", "BOMBSUMS", `head -c 5G /dev/zero | zstd -q -1 -T0 >"$1"`, false)
}

// sha256File is the hex sha256 of a file's content.
func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// imagesDir is galed's private image directory.
func (s *S) imagesDir() string { return filepath.Join(s.Env.Dir, "images") }

// imageFiles lists every path under the image directory, sorted.
func (s *S) imageFiles() []string {
	var paths []string
	_ = filepath.WalkDir(s.imagesDir(), func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	return paths
}

// checkNothingLeft is one check: no image, record, download or work file
// named after name, and nothing in the download area.
func (s *S) checkNothingLeft(name string) {
	s.Helper()
	var left []string
	tmp := filepath.Join(s.imagesDir(), ".tmp")
	for _, p := range s.imageFiles() {
		if strings.Contains(filepath.Base(p), name) || strings.HasPrefix(p, tmp+"/") {
			left = append(left, p)
		}
	}
	s.Check(len(left) == 0, "left behind for %s: %v", name, left)
}

// imagesCatalog: the shipped entries, a user entry and a broken user file
// (written here, removed at the end) are listed; show names the checksum and the user; unknown and bad names
// are refused. 17 checks.
func imagesCatalog(s *S) {
	broken := filepath.Join(s.Env.Dir, "catalog", "broken.yaml")
	if err := os.WriteFile(broken, []byte("name: broken\nos: debian\nboot: floppy\n"), 0o644); err != nil {
		s.Fatal(err)
	}
	s.Cleanup(func() { _ = os.Remove(broken) })
	r := s.Expect("image list -o json", 0, "image", "list", "-o", "json")
	byName := map[string]api.Image{}
	for _, im := range decode[[]api.Image](s, r) {
		byName[im.Name] = im
	}
	for _, n := range []string{"debian-12", "debian-12-cloud", "debian-13-cloud", "ubuntu-22.04", "ubuntu-24.04", "fedora-42", "almalinux-9", "rocky-9", "alpine-3.21", "loop-qcow2"} {
		_, ok := byName[n]
		s.Check(ok, "the catalog misses %s", n)
	}
	b := byName["broken"]
	s.Check(b.Kind == "invalid" && strings.Contains(b.Error, "broken.yaml: defaults.cpus"), "a broken user catalog file is not listed with its file and field: %+v", b)
	s.Check(byName["debian-12"].Present, "debian-12 is not present: %+v", byName["debian-12"])
	r = s.Expect("image show ubuntu-24.04", 0, "image", "show", "ubuntu-24.04")
	s.Check(r.Has("SHA256SUMS") && r.Matches(`User: *ubuntu`), "show does not name the checksum file and default user: %s", r)
	s.Expect("image show of an unknown name", 3, "image", "show", "nope")
	s.Expect("image show ../etc is refused", 2, "image", "show", "../etc")
}

// imagesBuild: build finds the recipe's image in the cache; a published
// image cannot be built. 3 checks.
func imagesBuild(s *S) {
	r := s.Expect("image build debian-12 reuses the cached build", 0, "image", "build", "debian-12")
	s.Check(r.Has("present"), "build does not say the image is present: %s", r)
	s.Expect("image build of a published image is refused", 2, "image", "build", "ubuntu-24.04")
}

// imagesPull: a pull from the loopback server shows its stages, records the
// verified digest, equals the served image, and a second pull finds it
// present. 9 checks.
func imagesPull(s *S) {
	served := s.servedQcow2()
	start := time.Now()
	r := s.Expect("image pull loop-qcow2", 0, "image", "pull", "loop-qcow2")
	s.Logf("pull took %s", time.Since(start).Round(100*time.Millisecond))
	for _, stage := range []string{"checksum", "download", "inspect"} {
		s.Check(r.HasWord(stage), "pull did not show stage %s: %s", stage, r)
	}
	r = s.Expect("image show loop-qcow2 -o json", 0, "image", "show", "loop-qcow2", "-o", "json")
	im := decode[api.ImageDetail](s, r)
	sum, err := sha256File(served)
	if err != nil {
		s.Fatal(err)
	}
	s.Check(im.Record["verified"] == "sha256:"+sum, "the pulled image's record %v does not hold the verified digest sha256:%s", im.Record, sum)
	same := s.QemuSame("qcow2", s.Env.Template, "qcow2", im.Path)
	s.Check(same.Code == 0, "the pulled image differs from the served one: %s", same)
	r = s.Expect("pulling it again is immediate", 0, "image", "pull", "loop-qcow2")
	s.Check(r.HasWord("present"), "the second pull did not find it present: %s", r)
}

// imagesPullResume: a download cut half-way is resumed and whole. 3 checks.
func imagesPullResume(s *S) {
	s.servedQcow2()
	before := s.Env.Cut.Hits("/debian.qcow2.gz")
	s.Expect("a pull whose connection is cut half-way", 0, "image", "pull", "loop-cut")
	hits := s.Env.Cut.Hits("/debian.qcow2.gz") - before
	s.Check(hits == 2, "the cut download took %d requests, want 2 (a resume)", hits)
	same := s.QemuSame("qcow2", s.Env.Template, "qcow2", showJSON[api.ImageDetail](s, "image", "loop-cut").Path)
	s.Check(same.Code == 0, "the resumed image is not whole: %s", same)
}

// imagesPullRefused: a wrong checksum, a decompression bomb and an
// unreachable server each fail the pull, say why, and leave nothing. 9 checks.
func imagesPullRefused(s *S) {
	s.servedQcow2()
	s.servedBomb()
	for _, c := range []struct{ name, what, why, left string }{
		{"loop-wrongsum", "a wrong checksum fails the pull", `checksum`, "loop-wrongsum"},
		{"loop-bomb", "a decompression bomb is stopped at the size cap", `(?i)larger|too large|limit`, "loop-bomb"},
		{"loop-offline", "an unreachable server fails the pull", `offline`, "loop-offline"},
	} {
		r := s.Expect(c.what, 1, "image", "pull", c.name)
		s.Check(r.Matches(c.why), "%s: the failure does not match %q: %s", c.what, c.why, r)
		s.checkNothingLeft(c.left)
	}
}

// imagesPullURL: a pull by URL needs a checksum. 2 checks.
func imagesPullURL(s *S) {
	served := s.servedQcow2()
	url := s.Env.WWW.URL + "/debian.qcow2.gz"
	s.Expect("pull of a URL without a checksum is refused", 2, "image", "pull", url, "--name", "byurl")
	sum, err := sha256File(served)
	if err != nil {
		s.Fatal(err)
	}
	s.Expect("pull of a URL with --sha256", 0, "image", "pull", url, "--name", "byurl", "--sha256", sum)
}

// imagesPullShared: two pulls of one image at once share one download, and
// the image cannot be deleted while it is pulled. 5 checks.
func imagesPullShared(s *S) {
	s.servedRaw()
	s.Gale("image", "delete", "loop-raw") // owned here: start from nothing
	before := s.Env.WWW.Hits("/debian.raw.zst")
	op1 := s.Gale("image", "pull", "loop-raw", "--no-wait")
	op2 := s.Gale("image", "pull", "loop-raw", "--no-wait")
	s.Check(op1.Code == 0 && op1.Out() == op2.Out(), "a second pull does not join the running one: %s vs %s", op1, op2)
	s.Expect("delete loop-raw while its pull runs is refused", 4, "image", "delete", "loop-raw")
	present := Eventually(2*time.Minute, time.Second, func() bool {
		r := s.Gale("image", "show", "loop-raw", "-o", "json")
		return r.Code == 0 && decode[api.ImageDetail](s, r).Present
	})
	s.Check(present, "the shared pull of loop-raw never finished")
	s.Expect("delete loop-raw (not in use)", 0, "image", "delete", "loop-raw")
	hits := s.Env.WWW.Hits("/debian.raw.zst") - before
	s.Check(hits == 1, "debian.raw.zst was fetched %d times for two pulls, want 1", hits)
}

// imagesImport: the template converted to every format imports with the
// same content and a pre-flight report; a block device and a stream import
// too; a raw source needs --format; names are not taken twice. 26 checks.
func imagesImport(s *S) {
	for _, f := range []string{"raw", "qcow2", "vmdk", "vpc", "vhdx", "vdi"} {
		args := []string{"image", "import", s.workDisk(f), "--name", "imp-" + f}
		if f == "raw" {
			args = append(args, "--format", "raw")
		}
		r := s.Expect("import a "+f+" disk", 0, args...)
		s.Check(r.Has("Debian GNU/Linux 12"), "pre-flight of the %s import did not find Debian 12: %s", f, r)
		s.checkTemplateContent("imp-"+f, "imported "+f)
	}
	raw := s.workDisk("raw")
	loop := s.Host("losetup", "-f", "--show", "-r", raw)
	if s.Check(loop.Code == 0, "no loop device to test a block device import: %s", loop) {
		dev := strings.TrimSpace(loop.Stdout)
		s.Expect("import a block device", 0, "image", "import", dev, "--name", "imp-blockdev", "--format", "raw", "--no-preflight")
		s.MustHost("losetup", "-d", dev)
		s.checkTemplateContent("imp-blockdev", "the block device import")
	}
	s.Expect("import of a raw file without --format is refused", 2, "image", "import", raw, "--name", "guessme")
	f, err := os.Open(raw)
	if err != nil {
		s.Fatal(err)
	}
	defer f.Close()
	s.ExpectStdin("import from a stream", 0, f, "image", "import", "-", "--name", "imp-stream", "--format", "raw", "--no-preflight")
	src := showJSON[api.ImageDetail](s, "image", "imp-stream").Record["source"]
	s.Check(src == "stdin", "the stream import records source %v, want stdin", src)
	s.ExpectStdin("a stream without --format is refused", 2, strings.NewReader("x\n"), "image", "import", "-", "--name", "nofmt")
	s.Expect("import onto a catalog name is refused", 4, "image", "import", s.workDisk("qcow2"), "--name", "debian-12")
	s.Expect("import onto an imported name is refused", 4, "image", "import", s.workDisk("qcow2"), "--name", "imp-qcow2")
}

// checkTemplateContent is one check: image name holds the template's content.
func (s *S) checkTemplateContent(name, what string) {
	s.Helper()
	r := s.QemuSame("qcow2", s.Env.Template, "qcow2", showJSON[api.ImageDetail](s, "image", name).Path)
	s.Check(r.Code == 0, "%s differs from the template: %s", what, r)
}

// imagesHostile: hostile inputs are refused, name what is wrong, write
// nothing and read no host file; a raw file with a qcow2 header stays raw;
// callers other than root only import from the import area. 18 checks.
func imagesHostile(s *S) {
	qcow2 := s.workDisk("qcow2")
	before := s.imageFiles()
	h := s.TempDir()
	p := func(name string) string { return filepath.Join(h, name) }
	s.MustHost("qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", p("backing.qcow2"), "1G")
	s.MustHost("qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file="+p("data.raw"), p("datafile.qcow2"), "64M")
	desc := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\nddb.virtualHWVersion = \"4\"\n"
	if err := os.WriteFile(p("desc.vmdk"), []byte(desc), 0o644); err != nil {
		s.Fatal(err)
	}
	s.MustHost("qemu-img", "create", "-q", "-f", "qcow2", p("huge.qcow2"), "100T")
	s.MustHost("sh", "-c", `head -c $(( $(stat -c %s "$1") / 2 )) "$1" >"$2"`, "sh", qcow2, p("truncated.qcow2"))
	if err := os.Symlink("/etc/shadow", p("link.raw")); err != nil {
		s.Fatal(err)
	}
	if err := syscall.Mkfifo(p("fifo"), 0o644); err != nil {
		s.Fatal(err)
	}
	for _, c := range []struct {
		what string
		args []string
		why  string // what the refusal must name, if anything
	}{
		{"qcow2 whose backing file is a host file", []string{p("backing.qcow2"), "--name", "evil1"}, "backing"},
		{"qcow2 with an external data file", []string{p("datafile.qcow2"), "--name", "evil2"}, ""},
		{"VMDK descriptor whose extent is a host file", []string{p("desc.vmdk"), "--name", "evil3", "--format", "vmdk"}, "/etc/shadow"},
		{"a 100 TiB virtual size", []string{p("huge.qcow2"), "--name", "evil4"}, "(?i)size"},
		{"a truncated qcow2", []string{p("truncated.qcow2"), "--name", "evil5"}, ""},
		{"a symlink to a host file", []string{p("link.raw"), "--name", "evil6", "--format", "raw"}, ""},
		{"a name with a path separator", []string{qcow2, "--name", "../x"}, ""},
		{"a name with a slash", []string{qcow2, "--name", "a/b"}, ""},
	} {
		r := s.Expect(c.what, 2, append([]string{"image", "import"}, c.args...)...)
		if c.why != "" {
			s.Check(r.Matches(c.why), "the refusal of %s does not name %q: %s", c.what, c.why, r)
		}
	}
	// A FIFO must not hang the import.
	r := s.Env.gale(20*time.Second, nil, "image", "import", p("fifo"), "--name", "evil7", "--format", "raw")
	s.Check(r.Code == 2, "a FIFO: want exit 2 within 20 s; %s", r)
	after := s.imageFiles()
	s.Check(strings.Join(before, "\n") == strings.Join(after, "\n"), "hostile imports changed the image directory:\nbefore %v\nafter  %v", before, after)

	// A raw disk that starts with a qcow2 header, imported as raw, stays raw.
	s.Expect("a raw import of a file with a qcow2 header", 0, "image", "import", p("backing.qcow2"), "--name", "rawhdr", "--format", "raw", "--no-preflight")
	im := showJSON[api.ImageDetail](s, "image", "rawhdr")
	same := s.QemuSame("raw", p("backing.qcow2"), "qcow2", im.Path)
	s.Check(same.Code == 0, "rawhdr does not hold the file's own bytes: %s", same)
	fi, err := os.Stat(p("backing.qcow2"))
	if err != nil {
		s.Fatal(err)
	}
	// qemu rounds a raw image's size up to whole 512-byte sectors.
	want := (fi.Size() + 511) / 512 * 512
	s.Check(im.VirtualSize == want, "rawhdr's size is %d, want the file's %d, not the 1 GiB its header claims", im.VirtualSize, want)

	// Callers other than root only reach files through the import area.
	g, err := user.LookupGroup("gale")
	if err != nil {
		s.Fatalf("group gale (scripts/setup-host.sh makes it): %v", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	r = s.importAsNobody(uint32(gid), "evil8", s.workDisk("raw"))
	s.Check(r.Has("only root"), "a non-root caller imported a host path: %s", r)
	if err := os.Symlink("/etc/shadow", filepath.Join(s.Env.Dir, "import", "escape.raw")); err != nil && !os.IsExist(err) {
		s.Fatal(err)
	}
	r = s.importAsNobody(uint32(gid), "evil9", filepath.Join(s.Env.Dir, "import", "escape.raw"))
	s.Check(r.Has("out of the import area"), "a symlink out of the import area was not refused: %s", r)
	for _, n := range []string{"evil1", "evil2", "evil3", "evil4", "evil5", "evil6", "evil7", "evil8", "evil9", "guessme", "nofmt"} {
		s.Check(!Exists(filepath.Join(s.imagesDir(), "imported", n+".qcow2")), "%s was imported", n)
	}
}

// importAsNobody posts an import of path to galed's API as user nobody in
// group gid (the socket's group), with curl.
func (s *S) importAsNobody(gid uint32, name, path string) Result {
	body := fmt.Sprintf(`{"name":%q,"path":%q,"format":"raw"}`, name, path)
	cmd := exec.Command("curl", "-sS", "--unix-socket", s.Env.Socket(), "-H", "Content-Type: application/json", "-d", body, "http://gale/v1/images/import")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	r := Result{Args: cmd.Args, Stdout: string(out)}
	if err != nil {
		r.Code, r.Stderr = -1, err.Error()
	}
	return r
}

// imagesVMPull: a VM from a catalog image not pulled yet pulls it on
// demand and is ready when its TCP port 80 answers. 4 checks.
func imagesVMPull(s *S) {
	s.servedRaw()
	s.Gale("image", "delete", "loop-raw") // owned here: the create must pull it
	s.Watch("webpull")
	r := s.Expect("vm create from a catalog image not pulled yet (pull on demand, ready by TCP port)", 0,
		"vm", "create", "webpull", "--image", "loop-raw", "--cloud-init", "cloudinit/web-server.yaml", "--ready-port", "80")
	s.Check(r.HasWord("pull"), "create did not show the pull stage: %s", r)
	s.checkPage("webpull", "when ready by its port", 1)
	s.Expect("vm delete webpull", 0, "vm", "delete", "webpull")
}

// sfdiskTable is the part of `sfdisk -J` output the legacy scenario reads.
type sfdiskTable struct {
	PartitionTable struct {
		Partitions []struct {
			Start int64 `json:"start"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// imagesVMLegacy: a VMDK without cloud-init whose fstab names /dev/sda1
// (as a physical server's would): pre-flight warns, --prepare fixes a copy
// and leaves the source alone, and a VM from it is ready by its guest
// agent; the image cannot be deleted while the VM uses it. 16 checks.
func imagesVMLegacy(s *S) {
	work := filepath.Join(s.Env.Dir, "work")
	w := func(name string) string { return filepath.Join(work, name) }
	s.CopySparse(s.workDisk("raw"), w("nocloud.raw"))
	table := decode[sfdiskTable](s, s.MustHost("sfdisk", "-J", w("nocloud.raw")))
	if len(table.PartitionTable.Partitions) == 0 {
		s.Fatal("the template has no partition")
	}
	off := table.PartitionTable.Partitions[0].Start * 512
	fsOf := func(img string) string { return fmt.Sprintf("%s?offset=%d", img, off) }
	s.Host("debugfs", "-w", "-R", "rm /usr/bin/cloud-init", fsOf(w("nocloud.raw")))
	fstab := s.Host("debugfs", "-R", "cat /etc/fstab", fsOf(w("nocloud.raw"))).Stdout
	fstab = regexp.MustCompile(`(?m)^(UUID|LABEL)=\S+(\s+/\s)`).ReplaceAllString(fstab, "/dev/sda1$2")
	if !regexp.MustCompile(`(?m)^/dev/sda1`).MatchString(fstab) {
		fstab = "/dev/sda1 / ext4 defaults 0 1\n"
	}
	if err := os.WriteFile(w("fstab"), []byte(fstab), 0o644); err != nil {
		s.Fatal(err)
	}
	s.Host("debugfs", "-w", "-R", "rm /etc/fstab", fsOf(w("nocloud.raw")))
	s.MustHost("debugfs", "-w", "-R", "write "+w("fstab")+" /etc/fstab", fsOf(w("nocloud.raw")))
	s.MustHost("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", w("nocloud.raw"), w("legacy.vmdk"))
	sumBefore, err := sha256File(w("legacy.vmdk"))
	if err != nil {
		s.Fatal(err)
	}

	r := s.Expect("pre-flight of a VMDK whose fstab names /dev/sda1 (no --prepare)", 0, "image", "import", w("legacy.vmdk"), "--name", "legacy-asis")
	s.Check(r.Matches(`warn *device-names`), "pre-flight does not warn about the device name: %s", r)
	r = s.Expect("import a VMDK without cloud-init, with --prepare", 0, "image", "import", w("legacy.vmdk"), "--name", "legacy", "--prepare")
	s.Check(r.Matches(`changed *device-names`), "--prepare does not report the device-name change: %s", r)
	legacy := showJSON[api.ImageDetail](s, "image", "legacy")
	s.MustHost("qemu-img", "convert", "-f", "qcow2", "-O", "raw", legacy.Path, w("prepared.raw"))
	prepared := s.Host("debugfs", "-R", "cat /etc/fstab", fsOf(w("prepared.raw")))
	_ = os.Remove(w("prepared.raw"))
	s.Check(prepared.Matches(`(?m)^/dev/vda1`), "the prepared image's fstab does not name /dev/vda1: %s", prepared)
	sumAfter, err := sha256File(w("legacy.vmdk"))
	s.Check(err == nil && sumAfter == sumBefore, "--prepare changed the source VMDK (%v)", err)
	r = s.Expect("image show legacy", 0, "image", "show", "legacy", "-o", "json")
	s.Check(decode[api.ImageDetail](s, r).Readiness == "agent", "pre-flight did not choose the guest agent for readiness: %s", r.Stdout)

	s.Watch("legacy1")
	start := time.Now()
	s.Expect("vm create from the imported VMDK", 0, "vm", "create", "legacy1", "--image", "legacy")
	s.Logf("create to ready: %s", time.Since(start).Round(time.Second))
	ci := showJSON[api.VM](s, "vm", "legacy1").CloudInit
	s.Check(ci == api.CloudInitNone, "legacy1's cloud-init is %q, want none (ready without cloud-init)", ci)
	s.Expect("exec in the imported VM", 0, "vm", "exec", "legacy1", "--", "cat", "/etc/debian_version")

	r = s.Expect("delete an image a VM uses is refused", 4, "image", "delete", "legacy")
	s.Check(r.Has("legacy1"), "the in-use refusal does not name the VM: %s", r)
	s.Expect("vm delete legacy1", 0, "vm", "delete", "legacy1")
	s.Expect("delete legacy", 0, "image", "delete", "legacy")
	s.Check(!Exists(filepath.Join(s.imagesDir(), "imported", "legacy.qcow2")), "legacy is still on disk after delete")
}

// imagesPrune: prune removes a stale build and keeps the current template;
// prune --all removes unused images. 7 checks. It removes every unused
// image, the template's copy included, which it puts back when done.
func imagesPrune(s *S) {
	s.Cleanup(func() {
		if !Exists(s.Env.Template) {
			_ = sh(`cp --sparse=always "$1" "$2"`, os.Getenv("GALE_E2E_TEMPLATE"), s.Env.Template)
		}
	})
	stale := filepath.Join(s.imagesDir(), "debian-12-000000000000.qcow2")
	s.CopySparse(s.Env.Template, stale)
	unused := filepath.Join(s.TempDir(), "unused.qcow2")
	s.MustHost("qemu-img", "create", "-q", "-f", "qcow2", unused, "64M")
	s.Must("image", "import", unused, "--name", "prune-unused", "--no-preflight")

	r := s.Expect("prune --dry-run", 0, "image", "prune", "--dry-run", "-o", "json")
	s.Check(r.Has(stale) && Exists(stale), "the dry run does not list the stale build, or removed it: %s", r)
	s.Expect("prune", 0, "image", "prune")
	s.Check(!Exists(stale), "the stale build survived prune")
	s.Check(Exists(s.Env.Template), "prune removed the current template")
	s.Expect("prune --all", 0, "image", "prune", "--all")
	s.Check(!Exists(filepath.Join(s.imagesDir(), "imported", "prune-unused.qcow2")), "prune --all kept an unused import")
}
