//go:build e2e

package e2e

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/galevm/gale/pkg/api"
)

// cloneModel is the model of the clone scenarios: the web-server snippet,
// as the web fixture is made (the parent is one more cold boot of it).
var cloneModel = []string{"--image", "debian-12", "--cloud-init", "cloudinit/web-server.yaml", "--memory", "1G", "--disk", "4G"}

// createClone runs `gale vm create NAME <cloneModel> --clone MODE` and
// returns its result and how long it took.
func (s *S) createClone(name, mode string, extra ...string) (Result, time.Duration) {
	s.Helper()
	s.Watch(name)
	args := append(append([]string{"vm", "create", name}, cloneModel...), "--clone", mode)
	start := time.Now()
	r := s.Gale(append(args, extra...)...)
	return r, time.Since(start)
}

// guest runs a shell command in VM name and returns its trimmed stdout; a
// failure is a failed check, reported with what.
func (s *S) guest(name, what, cmd string) string {
	s.Helper()
	r := s.Gale("vm", "exec", name, "--", "sh", "-c", cmd)
	s.Check(r.Code == 0, "%s in %s: %s", what, name, r)
	return strings.TrimSpace(r.Stdout)
}

// parentsDir is where galed keeps saved parents.
func (s *S) parentsDir() string { return filepath.Join(s.Env.Dir, "data", "parents") }

// identity is what must differ between two clones of one parent.
type identity struct {
	MAC, IP, Hostname, MachineID, HostKey, InstanceID, Page string
}

func (s *S) identityOf(name string) identity {
	s.Helper()
	v := showJSON[api.VM](s, "vm", name)
	id := identity{MAC: v.MAC, IP: strings.TrimSpace(s.Gale("vm", "ip", name).Stdout)}
	id.Hostname = s.guest(name, "hostname", "hostname")
	id.MachineID = s.guest(name, "machine-id", "cat /etc/machine-id")
	id.HostKey = s.guest(name, "ssh host key", "cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub")
	id.InstanceID = s.guest(name, "cloud-init instance-id", "cat /var/lib/cloud/data/instance-id")
	id.Page = s.GetPage(name, 10)
	s.Check(id.InstanceID == v.ID, "%s: cloud-init instance-id %q, want gale's id %q", name, id.InstanceID, v.ID)
	return id
}

// clonesPair: the first `--clone always` of a model saves a parent (one
// cold boot) and clones it; a second VM is a clone too. Both are distinct
// machines (MAC, address, hostname, machine-id, SSH host keys, cloud-init
// instance-id), each serves its own page, their clocks are right, a reboot
// is not a first boot, and deleting one leaves the other and the parent.
func clonesPair(s *S) {
	r1, d1 := s.createClone("c1", "always")
	s.Check(r1.Code == 0, "create c1 (saves the parent): %s", r1)
	s.Check(r1.Has("] parent") && r1.Has("] restore") && r1.Has("] identity"), "create c1 did not show the parent, restore and identity stages: %s", r1)
	r2, d2 := s.createClone("c2", "auto")
	s.Check(r2.Code == 0 && r2.Has("] restore"), "create c2 (a clone of the saved parent): %s", r2)
	s.Check(!r2.Has("] parent") && !r2.Has("clone-fallback"), "create c2 built a parent or fell back: %s", r2)
	s.Logf("create to ready: c1 (parent + clone) %s, c2 (clone) %s", d1.Round(100*time.Millisecond), d2.Round(100*time.Millisecond))
	if s.Failed() {
		return
	}
	v1, v2 := showJSON[api.VM](s, "vm", "c1"), showJSON[api.VM](s, "vm", "c2")
	s.Check(v1.Made == api.MadeClone && v2.Made == api.MadeClone && v1.Parent != "" && v1.Parent == v2.Parent,
		"made/parent: c1 %s/%s, c2 %s/%s", v1.Made, v1.Parent, v2.Made, v2.Parent)
	s.Check(v2.State == api.StateRunning && v2.CloudInit == api.CloudInitDone, "c2 is %s, cloud-init %s", v2.State, v2.CloudInit)
	show := s.Expect("vm show c2", 0, "vm", "show", "c2")
	s.Check(show.Has("clone of "+v1.Parent), "vm show does not say how c2 was made: %s", show)

	a, b := s.identityOf("c1"), s.identityOf("c2")
	s.Logf("c1: %+v\nc2: %+v", a, b)
	s.Check(a.MAC != b.MAC && a.IP != "" && b.IP != "" && a.IP != b.IP, "MAC/IP not distinct: %s/%s vs %s/%s", a.MAC, a.IP, b.MAC, b.IP)
	s.Check(a.Hostname == "c1" && b.Hostname == "c2", "hostnames %q %q", a.Hostname, b.Hostname)
	s.Check(a.MachineID != b.MachineID && len(a.MachineID) == 32, "machine-ids %q %q", a.MachineID, b.MachineID)
	s.Check(a.HostKey != b.HostKey && a.HostKey != "", "SSH host keys are the same: %q", a.HostKey)
	s.Check(strings.Contains(a.Page, "Hello from c1") && strings.Contains(b.Page, "Hello from c2"), "pages: %q %q", a.Page, b.Page)
	// sshd serves the new host key, not the parent's.
	scan := s.Host("ssh-keyscan", "-T", "10", "-t", "ed25519", b.IP)
	s.Check(strings.Contains(scan.Stdout, b.HostKey), "sshd of c2 offers another host key than its file's: %s", scan)
	guestMAC := s.guest("c2", "NIC MAC", "cat /sys/class/net/*/address | grep -v 00:00:00:00:00:00")
	s.Check(strings.EqualFold(guestMAC, b.MAC), "c2's NIC carries %q, gale recorded %q", guestMAC, b.MAC)
	clock, _ := strconv.ParseInt(s.guest("c2", "clock", "date +%s"), 10, 64)
	s.Check(abs(time.Now().Unix()-clock) < 30, "c2's clock is %d s off", time.Now().Unix()-clock)

	ps := decode[[]api.Parent](s, s.Expect("parent list -o json", 0, "parent", "list", "-o", "json"))
	s.Check(len(ps) == 1 && ps[0].Name == v1.Parent && strings.Join(ps[0].Clones, ",") == "c1,c2", "parent list: %+v", ps)
	s.Expect("deleting a parent with clones is refused", 4, "parent", "delete", v1.Parent)

	// A reboot of a clone is not a first boot: same identity, same keys.
	s.Expect("vm restart c2", 0, "vm", "restart", "c2")
	s.Expect("vm wait c2", 0, "vm", "wait", "c2", "--timeout", "5m")
	// vm wait knows the domain runs; the guest is still booting.
	back := Eventually(4*time.Minute, 3*time.Second, func() bool {
		return s.Gale("vm", "exec", "c2", "--", "test", "-e", "/run/cloud-init/result.json").Code == 0
	})
	s.Check(back, "c2 did not come back from its reboot within 4 minutes")
	after := s.identityOf("c2")
	s.Check(after.HostKey == b.HostKey && after.MachineID == b.MachineID && after.Hostname == "c2", "c2 after a reboot: %+v, before %+v", after, b)
	s.Check(strings.Contains(after.Page, "Hello from c2"), "c2's page after a reboot: %q", after.Page)

	s.Expect("vm delete c1", 0, "vm", "delete", "c1")
	s.checkGone("c1", "after its delete")
	s.checkPage("c2", "after c1 was deleted", 5)
	s.Check(Exists(filepath.Join(s.parentsDir(), v1.Parent, "state.sav")), "the parent's state went with c1")
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// clonesBadState: a parent state file that is truncated, not a save image,
// of another save-format version, or whose QEMU stream QEMU refuses is not
// used: the create says why (clone-fallback) and boots instead, and no
// domain, state copy or disk of the failed clone is left. The boot is
// cancelled by a delete once the fallback is seen.
func clonesBadState(s *S) {
	parent := s.onlyParent()
	state := filepath.Join(s.parentsDir(), parent, "state.sav")
	backup := filepath.Join(s.Env.Dir, "work", "state.sav.orig")
	s.MustHost("cp", "--sparse=always", state, backup)
	defer func() { s.MustHost("cp", "--sparse=always", backup, state); _ = os.Remove(backup) }()
	st, err := os.Stat(state)
	if err != nil {
		s.Fatal(err)
	}
	xmlLen := headerUint32(s, backup, 20) // data_len
	cases := []struct {
		name   string
		damage func()
	}{
		{"truncated", func() { s.Check(os.Truncate(state, st.Size()/2) == nil, "truncate") }},
		{"not a save image", func() { patch(s, state, 0, []byte("NotLibvirtSave!!")) }},
		{"another format version", func() { patch(s, state, 16, le32(7)) }},
		{"stream QEMU refuses", func() { patch(s, state, 92+int64(xmlLen)+4, []byte{0xde, 0xad, 0xbe, 0xef}) }},
	}
	for _, c := range cases {
		s.MustHost("cp", "--sparse=always", backup, state)
		c.damage()
		r, _ := s.createClone("bad", "auto", "--timeout", "15s")
		s.Check(r.Has("clone-fallback"), "%s: the create did not fall back with a reason: %s", c.name, r)
		s.Check(!r.Has("] identity"), "%s: a clone was made distinct from a bad state: %s", c.name, r)
		s.Expect(c.name+": delete the fallback boot", 0, "vm", "delete", "bad")
		s.checkGone("bad", "after a "+c.name+" state")
		copies, _ := filepath.Glob(filepath.Join(s.Env.Dir, "data", "*", "*", ".restore-*"))
		s.Check(len(copies) == 0, "%s: state copies left: %v", c.name, copies)
	}
}

// onlyParent returns the name of the one saved parent (clones_pair made it).
func (s *S) onlyParent() string {
	s.Helper()
	ps := decode[[]api.Parent](s, s.Must("parent", "list", "-o", "json"))
	if len(ps) == 0 {
		r, _ := s.createClone("c0", "always")
		if r.Code != 0 {
			s.Fatalf("make a parent: %s", r)
		}
		s.Must("vm", "delete", "c0")
		ps = decode[[]api.Parent](s, s.Must("parent", "list", "-o", "json"))
	}
	if len(ps) != 1 {
		s.Fatalf("want one parent, have %+v", ps)
	}
	return ps[0].Name
}

func headerUint32(s *S, path string, off int64) uint32 {
	f, err := os.Open(path)
	if err != nil {
		s.Fatal(err)
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		s.Fatal(err)
	}
	return binary.LittleEndian.Uint32(b[:])
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func patch(s *S, path string, off int64, b []byte) {
	s.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		s.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		s.Fatal(err)
	}
}

// clonesCrash: galed killed (SIGKILL) mid-clone leaves no domain, disk,
// seed or state copy once it is back, and the parent is intact.
func clonesCrash(s *S) {
	parent := s.onlyParent()
	for _, delay := range []time.Duration{500 * time.Millisecond, 2 * time.Second} {
		s.Watch("crash")
		s.Expect("create crash --no-wait", 0, append(append([]string{"vm", "create", "crash"}, cloneModel...), "--clone", "auto", "--no-wait")...)
		time.Sleep(delay)
		s.Env.Daemon.Restart(s, syscall.SIGKILL)
		// Reconcile at start has removed an unfinished clone; a clone that
		// finished before the kill is a VM like any other: delete it.
		if r := s.Gale("vm", "delete", "crash"); r.Code == 0 {
			s.Logf("the create killed after %s had finished: %s", delay, r)
		} else {
			s.Check(r.Code == 3, "delete after the crash: %s", r)
		}
		s.checkGone("crash", "after SIGKILL mid-clone")
		copies, _ := filepath.Glob(filepath.Join(s.Env.Dir, "data", "*", "*", ".restore-*"))
		s.Check(len(copies) == 0, "state copies left after SIGKILL: %v", copies)
	}
	ps := decode[[]api.Parent](s, s.Must("parent", "list", "-o", "json"))
	s.Check(len(ps) == 1 && ps[0].Name == parent, "parents after the crashes: %+v", ps)
	r, _ := s.createClone("crash", "auto")
	s.Check(r.Code == 0 && r.Has("] restore"), "a clone after the crashes: %s", r)
	s.Expect("delete crash", 0, "vm", "delete", "crash")
}

// clonesModelChange: another model (the bare image, other memory) gets its
// own parent; the clone of the first parent keeps serving meanwhile, and
// the first parent can be deleted once its last clone is.
func clonesModelChange(s *S) {
	first := s.onlyParent()
	s.Watch("bare1")
	r := s.Gale("vm", "create", "bare1", "--image", "debian-12", "--memory", "768M", "--disk", "4G", "--clone", "always")
	s.Check(r.Code == 0 && r.Has("] parent") && r.Has("] restore"), "create bare1 (a new model: a new parent): %s", r)
	ps := decode[[]api.Parent](s, s.Must("parent", "list", "-o", "json"))
	s.Check(len(ps) == 2, "parents after a second model: %+v", ps)
	v := showJSON[api.VM](s, "vm", "bare1")
	s.Check(v.Made == api.MadeClone && v.Parent != first && v.MemoryMiB == 768, "bare1: %+v", v)
	s.checkPage("c2", "while another model's parent was made", 5)
	s.Expect("delete bare1", 0, "vm", "delete", "bare1")
	s.Expect("delete c2", 0, "vm", "delete", "c2")
	s.Expect("delete the first parent once unused", 0, "parent", "delete", first)
	s.Check(!Exists(filepath.Join(s.parentsDir(), first)), "files of parent %s left", first)
	// Leave no parent for the image scenarios: a parent uses its image.
	s.Expect("delete the second parent", 0, "parent", "delete", v.Parent)
	ps = decode[[]api.Parent](s, s.Must("parent", "list", "-o", "json"))
	s.Check(len(ps) == 0, "parents left: %+v", ps)
}
