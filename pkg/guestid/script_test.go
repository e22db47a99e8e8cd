package guestid

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestScriptNoRawSecrets(t *testing.T) {
	id := testIdentity(t)
	s, err := id.Script()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range s {
		if c != '\n' && c != '\t' && (c < 0x20 || c > 0x7e) {
			t.Fatalf("byte %d of the script is %#x", i, c)
		}
	}
	if bytes.Contains(s, []byte("PRIVATE KEY")) {
		t.Error("script contains a PEM private key")
	}
	if bytes.Contains(s, []byte(id.MachineID)) {
		t.Error("script contains the machine-id in clear")
	}
	for i := 0; i+16 <= len(id.RandomSeed); i += 16 {
		if bytes.Contains(s, id.RandomSeed[i:i+16]) {
			t.Fatal("script contains raw seed bytes")
		}
	}
	b64 := base64.StdEncoding.EncodeToString
	for _, secret := range [][]byte{id.RandomSeed, []byte(id.MachineID + "\n")} {
		if !bytes.Contains(s, []byte("'"+b64(secret)+"'")) {
			t.Error("script lacks a base64-encoded secret")
		}
	}
	for _, k := range id.HostKeys {
		body := strings.Split(strings.TrimSpace(string(k.Private)), "\n")
		for _, line := range body[1 : len(body)-1] {
			if bytes.Contains(s, []byte(line)) {
				t.Fatalf("script contains a line of the %s private key", k.Type)
			}
		}
	}
	files, err := id.filesArchive()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(s, []byte("'"+b64(files)+"'")) {
		t.Error("script lacks the base64-encoded archive of the identity files")
	}
	if !bytes.HasPrefix(s, []byte("#!/bin/sh\n")) || !bytes.Contains(s, []byte("\nset -eu\n")) {
		t.Error("script does not start with #!/bin/sh and set -eu")
	}
	if !bytes.Contains(s, []byte("\nR=''\n")) || !bytes.Contains(s, []byte("\nTESTROOT='0'\n")) {
		t.Error("production script is not rooted at /")
	}
	if bytes.Contains(s, []byte("GALE_GUESTID")) {
		t.Error("production script reads the environment")
	}
	again, err := id.Script()
	if err != nil || !bytes.Equal(s, again) {
		t.Error("Script is not deterministic")
	}
}

func TestScriptSyntax(t *testing.T) {
	id := testIdentity(t)
	s, err := id.Script()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "identity.sh")
	if err := os.WriteFile(p, s, 0o600); err != nil {
		t.Fatal(err)
	}
	checks := [][]string{{"/bin/sh", "-n", p}, {"dash", "-n", p}, {"bash", "--posix", "-n", p}, {"busybox", "sh", "-n", p}}
	if _, err := exec.LookPath("shellcheck"); err == nil {
		checks = append(checks, []string{"shellcheck", "-s", "sh", p})
	} else {
		t.Log("shellcheck not installed")
	}
	for _, c := range checks {
		if _, err := exec.LookPath(c[0]); err != nil {
			t.Logf("%s not installed", c[0])
			continue
		}
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}

// fakeRoot is a guest file system in a test directory.
type fakeRoot struct {
	t    *testing.T
	dir  string
	side string // outside the root: where hooks record what they saw
}

func newFakeRoot(t *testing.T) *fakeRoot {
	r := &fakeRoot{t: t, dir: t.TempDir(), side: t.TempDir()}
	for _, d := range []string{"dev", "var/lib/systemd", "var/log", "sys/class/net/ens3/device", "sys/class/net/lo"} {
		r.mkdir(d)
	}
	r.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
	r.write("var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
	r.write("etc/hostname", "gale-parent-x\n", 0o644)
	r.write("etc/hosts", "127.0.0.1\tlocalhost\n"+
		"127.0.1.1 gale-parent-x.example gale-parent-x\n"+
		"10.0.0.5 gale-parent-xy gale-parent-x-2 my-gale-parent-x x.gale-parent-x\n"+
		"# gale-parent-x gale-parent-x\n"+
		"::1 localhost ip6-localhost\n", 0o644)
	r.write("etc/ssh/sshd_config", "PermitRootLogin no\n", 0o644)
	r.write("run/sshd.pid", "4242\n", 0o644)
	for _, k := range []string{"dsa", "ecdsa", "ed25519", "rsa"} {
		r.write("etc/ssh/ssh_host_"+k+"_key", "old "+k+"\n", 0o600)
		r.write("etc/ssh/ssh_host_"+k+"_key.pub", "old "+k+" pub\n", 0o644)
	}
	r.write("sys/class/net/ens3/address", testParentMAC+"\n", 0o444)
	r.write("sys/class/net/lo/address", "00:00:00:00:00:00\n", 0o444)
	r.write("etc/systemd/network/10-cloud-init-ens3.network",
		"[Match]\nMACAddress="+strings.ToUpper(testParentMAC)+"\nName=ens3\n\n[Network]\nDHCP=ipv4\n", 0o644)
	r.write("etc/systemd/network/99-other.network", "[Match]\nName=ens9\n", 0o644)
	r.write("run/systemd/network/10-netplan-ens3.network", "[Match]\nMACAddress="+testParentMAC+"\n", 0o644)
	r.write("etc/netplan/50-cloud-init.yaml", "network:\n  ethernets:\n    ens3:\n      match:\n        macaddress: 52:54:00:Aa:bB:cc\n", 0o600)
	r.write("etc/udev/rules.d/70-persistent-net.rules", `SUBSYSTEM=="net", ATTR{address}=="`+testParentMAC+`", NAME="ens3"`+"\n", 0o644)
	r.write("run/systemd/netif/leases/2", "ADDRESS=192.168.122.50\n", 0o644)
	r.write("var/lib/cloud/instances/"+testParentIID+"/obj.pkl", "pickle", 0o600)
	r.write("var/lib/cloud/instances/"+testParentIID+"/sem/config_ssh", "ran", 0o644)
	r.write("var/lib/cloud/instances/"+testParentIID+"/datasource", "DataSourceNoCloud: DataSourceNoCloud [seed=/dev/sr0]\n", 0o644)
	if err := os.Symlink("/var/lib/cloud/instances/"+testParentIID, r.path("var/lib/cloud/instance")); err != nil {
		t.Fatal(err)
	}
	r.write("var/lib/cloud/data/instance-id", testParentIID+"\n", 0o644)
	r.write("var/lib/cloud/data/previous-instance-id", testParentIID+"\n", 0o644)
	r.write("var/lib/cloud/data/previous-hostname", "gale-parent-x\n", 0o644)
	r.write("var/lib/cloud/data/status.json", statusJSON(testParentIID), 0o644)
	r.write("var/lib/cloud/data/result.json", `{"v1": {"datasource": "`+testParentIID+`", "errors": []}}`+"\n", 0o644)
	r.write("run/cloud-init/instance-data.json", `{"v1": {"instance_id": "`+testParentIID+`"}}`+"\n", 0o644)
	r.exe("usr/lib/systemd/systemd-networkd-wait-online", "#!/bin/sh\nexit 99\n")
	return r
}

func statusJSON(iid string) string {
	return `{"v1": {"init": {"start": 1}, "instance": "` + iid + `", "near": ["i-parent.01", "i-parentX0", "xi-parent.0"]}}` + "\n"
}

func (r *fakeRoot) path(p string) string { return filepath.Join(r.dir, filepath.FromSlash(p)) }

func (r *fakeRoot) mkdir(p string) {
	if err := os.MkdirAll(r.path(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
}

func (r *fakeRoot) write(p, data string, mode os.FileMode) {
	r.t.Helper()
	r.mkdir(filepath.Dir(p))
	if err := os.WriteFile(r.path(p), []byte(data), mode); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chmod(r.path(p), mode); err != nil {
		r.t.Fatal(err)
	}
}

func (r *fakeRoot) exe(p, data string) { r.write(p, data, 0o755) }

// hook adds an executable hook that records its name, working directory
// and standard input outside the root, writes to stdout and stderr and
// exits with status.
func (r *fakeRoot) hook(name string, status int) {
	r.exe(HookDir[1:]+"/"+name, fmt.Sprintf(`#!/bin/sh
n=$(basename "$0")
printf '%%s %%s\n' "$n" "$(pwd)" >>'%[1]s/order'
cat >'%[1]s/stdin-'"$n"
echo "stdout of $n"
echo "stderr of $n" >&2
exit %[2]d
`, r.side, status))
}

func (r *fakeRoot) read(p string) string {
	r.t.Helper()
	b, err := os.ReadFile(r.path(p))
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

func (r *fakeRoot) wantFile(p, want string, mode os.FileMode) {
	r.t.Helper()
	st, err := os.Lstat(r.path(p))
	if err != nil {
		r.t.Errorf("%s: %v", p, err)
		return
	}
	if !st.Mode().IsRegular() {
		r.t.Errorf("%s is %v, not a regular file", p, st.Mode())
		return
	}
	if got := r.read(p); got != want {
		r.t.Errorf("%s is %q, want %q", p, got, want)
	}
	if mode != 0 && st.Mode().Perm() != mode {
		r.t.Errorf("%s has mode %v, want %v", p, st.Mode().Perm(), mode)
	}
}

func (r *fakeRoot) wantGone(p string) {
	r.t.Helper()
	if _, err := os.Lstat(r.path(p)); !errors.Is(err, fs.ErrNotExist) {
		r.t.Errorf("%s is still there (%v)", p, err)
	}
}

// run runs the identity script for the root with /bin/sh, the script on
// standard input as gale feeds it, and returns stdout, stderr and the
// exit status.
func (r *fakeRoot) run(id *Identity, shell ...string) (string, string, int) {
	r.t.Helper()
	s, err := id.script(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	if len(shell) == 0 {
		shell = []string{"/bin/sh"}
	}
	cmd := exec.Command(shell[0], append(shell[1:], "-s")...)
	cmd.Stdin = bytes.NewReader(s)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("stderr of the script:\n%s", stderr.String())
	return stdout.String(), stderr.String(), code
}

func (r *fakeRoot) commands() []string {
	r.t.Helper()
	return strings.Split(strings.TrimSuffix(r.read("commands.log"), "\n"), "\n")
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestScriptRuns(t *testing.T) {
	shells := [][]string{{"/bin/sh"}}
	if _, err := exec.LookPath("bash"); err == nil {
		shells = append(shells, []string{"bash", "--posix"})
	}
	for _, sh := range shells {
		t.Run(strings.Join(sh, " "), func(t *testing.T) { testScriptRuns(t, sh) })
	}
}

func testScriptRuns(t *testing.T, shell []string) {
	id := testIdentity(t)
	r := newFakeRoot(t)
	r.hook("B", 0)
	r.hook("a", 0)
	r.hook("10", 0)
	r.hook(".hidden", 0)
	r.write(HookDir[1:]+"/noexec", "#!/bin/sh\ntouch '"+r.side+"/noexec-ran'\n", 0o644)
	r.mkdir(HookDir[1:] + "/dir")

	stdout, stderr, code := r.run(id, shell...)
	if code != 0 {
		t.Fatalf("script exited %d:\n%s", code, stderr)
	}
	if stdout != "gale-clone: done\n" {
		t.Errorf("stdout %q", stdout)
	}

	// 1, 4, 5, 6, 8 and 9: the order of what changes the running system.
	wantLines(t, "commands.log", r.commands(), []string{
		fmt.Sprintf("date -u -s @%d", testNow.Unix()),
		"hostname " + testHostname,
		"systemctl stop systemd-networkd.socket systemd-networkd.service",
		"ip link set dev ens3 down",
		"ip link set dev ens3 address " + testMAC,
		"ip link set dev ens3 up",
		"ip -4 addr flush dev ens3 scope global",
		"ip -6 addr flush dev ens3 scope global",
		"systemctl --no-block restart systemd-networkd.socket systemd-networkd.service systemd-journald.service",
		"kill -HUP 4242",
		"wait-for-address ens3",
		"hook .hidden",
		"hook 10",
		"hook B",
		"hook a",
	})

	// 2. random seed.
	r.wantFile("dev/urandom", string(id.RandomSeed), 0)
	r.wantFile("var/lib/systemd/random-seed", string(id.RandomSeed), 0o600)

	// 3. machine-id.
	r.wantFile("etc/machine-id", id.MachineID+"\n", 0o444)
	r.wantFile("var/lib/dbus/machine-id", id.MachineID+"\n", 0o444)

	// 4. host name.
	r.wantFile("etc/hostname", testHostname+"\n", 0o644)
	r.wantFile("etc/hosts", "127.0.0.1\tlocalhost\n"+
		"127.0.1.1 gale-clone-1.example gale-clone-1\n"+
		"10.0.0.5 gale-parent-xy gale-parent-x-2 my-gale-parent-x x.gale-parent-x\n"+
		"# gale-clone-1 gale-clone-1\n"+
		"::1 localhost ip6-localhost\n", 0o644)
	r.wantFile("var/lib/cloud/data/previous-hostname", testHostname+"\n", 0o644)

	// 5. SSH host keys.
	r.wantGone("etc/ssh/ssh_host_dsa_key")
	r.wantGone("etc/ssh/ssh_host_dsa_key.pub")
	for _, k := range id.HostKeys {
		r.wantFile("etc/ssh/ssh_host_"+k.Type+"_key", string(k.Private), 0o600)
		r.wantFile("etc/ssh/ssh_host_"+k.Type+"_key.pub", string(k.Public), 0o644)
	}
	r.wantFile("etc/ssh/sshd_config", "PermitRootLogin no\n", 0o644)

	// 6. NIC configuration.
	r.wantFile("etc/systemd/network/10-cloud-init-ens3.network",
		"[Match]\nMACAddress="+strings.ToUpper(testMAC)+"\nName=ens3\n\n[Network]\nDHCP=ipv4\n", 0o644)
	r.wantFile("etc/systemd/network/99-other.network", "[Match]\nName=ens9\n", 0o644)
	r.wantFile("run/systemd/network/10-netplan-ens3.network", "[Match]\nMACAddress="+testMAC+"\n", 0o644)
	r.wantFile("etc/netplan/50-cloud-init.yaml", "network:\n  ethernets:\n    ens3:\n      match:\n        macaddress: "+testMAC+"\n", 0o600)
	r.wantFile("etc/udev/rules.d/70-persistent-net.rules", `SUBSYSTEM=="net", ATTR{address}=="`+testMAC+`", NAME="ens3"`+"\n", 0o644)
	r.wantGone("run/systemd/netif/leases/2")

	// 7. cloud-init.
	r.wantGone("var/lib/cloud/instances/" + testParentIID)
	r.wantGone("var/lib/cloud/instances/" + testIID + "/obj.pkl")
	r.wantFile("var/lib/cloud/instances/"+testIID+"/sem/config_ssh", "ran", 0o644)
	if target, err := os.Readlink(r.path("var/lib/cloud/instance")); err != nil || target != r.path("var/lib/cloud/instances/"+testIID) {
		t.Errorf("instance link: %q %v", target, err)
	}
	r.wantFile("var/lib/cloud/data/instance-id", testIID+"\n", 0o644)
	r.wantFile("var/lib/cloud/data/previous-instance-id", testIID+"\n", 0o644)
	r.wantFile("var/lib/cloud/data/status.json", statusJSON(testIID), 0o644)
	r.wantFile("var/lib/cloud/data/result.json", `{"v1": {"datasource": "`+testIID+`", "errors": []}}`+"\n", 0o644)
	r.wantFile("run/cloud-init/instance-data.json", `{"v1": {"instance_id": "`+testIID+`"}}`+"\n", 0o644)

	// 8. hooks: C order, executable regular files only, "/" (the root) as
	// working directory, no standard input, output in the log.
	order, err := os.ReadFile(filepath.Join(r.side, "order"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range []string{".hidden", "10", "B", "a"} {
		want = append(want, n+" "+r.dir)
		if in, err := os.ReadFile(filepath.Join(r.side, "stdin-"+n)); err != nil || len(in) != 0 {
			t.Errorf("hook %s read %q from stdin (%v)", n, in, err)
		}
	}
	wantLines(t, "hooks run", strings.Split(strings.TrimSpace(string(order)), "\n"), want)
	if _, err := os.Stat(filepath.Join(r.side, "noexec-ran")); err == nil {
		t.Error("a non-executable hook ran")
	}
	hookLog := r.read(HookLog[1:])
	for _, s := range []string{"stdout of B", "stderr of B", "stdout of .hidden", "stderr of a"} {
		if !strings.Contains(hookLog, s) {
			t.Errorf("hook log lacks %q:\n%s", s, hookLog)
		}
	}
	if st, err := os.Stat(r.path(HookLog[1:])); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("hook log mode: %v %v", st, err)
	}
	if !strings.Contains(stderr, "] setting the clock") || !strings.Contains(stderr, "] running the per-clone hooks") {
		t.Errorf("stderr lacks the step log:\n%s", stderr)
	}

	// Nothing half-written is left behind.
	_ = filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".gale-new") {
			t.Errorf("left over: %s", p)
		}
		return nil
	})

	// A second run (the NIC now has the new MAC) finds everything done.
	r.write("sys/class/net/ens3/address", testMAC+"\n", 0o444)
	if err := os.Remove(r.path("commands.log")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = r.run(id, shell...)
	if code != 0 || stdout != "gale-clone: done\n" {
		t.Fatalf("second run exited %d, stdout %q:\n%s", code, stdout, stderr)
	}
	for _, c := range r.commands() {
		if strings.HasPrefix(c, "ip link") {
			t.Errorf("second run: %s", c)
		}
	}
	if !strings.Contains(stderr, "ens3 already has "+testMAC) || !strings.Contains(stderr, "instance "+testIID+" is already there") {
		t.Errorf("second run stderr:\n%s", stderr)
	}
	r.wantFile("etc/hosts", "127.0.0.1\tlocalhost\n"+
		"127.0.1.1 gale-clone-1.example gale-clone-1\n"+
		"10.0.0.5 gale-parent-xy gale-parent-x-2 my-gale-parent-x x.gale-parent-x\n"+
		"# gale-clone-1 gale-clone-1\n"+
		"::1 localhost ip6-localhost\n", 0o644)
	r.wantFile("var/lib/cloud/data/instance-id", testIID+"\n", 0o644)
}

func TestScriptHookFails(t *testing.T) {
	id := testIdentity(t)
	r := newFakeRoot(t)
	r.hook("10-ok", 0)
	r.hook("20-fail", 7)
	r.hook("30-after", 0)
	// dbus's machine-id as a link is left alone; a hosts file without a
	// 127.0.1.1 line or a final newline gets one.
	if err := os.Remove(r.path("var/lib/dbus/machine-id")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/machine-id", r.path("var/lib/dbus/machine-id")); err != nil {
		t.Fatal(err)
	}
	r.write("etc/hosts", "127.0.0.1 localhost gale-parent-x", 0o644)
	r.write("etc/hostname", "", 0o644)

	stdout, stderr, code := r.run(id)
	if code != HookFailedExit {
		t.Fatalf("exit status %d, want %d", code, HookFailedExit)
	}
	if strings.Contains(stdout, "done") {
		t.Errorf("stdout %q", stdout)
	}
	for _, s := range []string{"per-clone hook 20-fail failed with status 7", "stderr of 20-fail", "stdout of 30-after"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	if strings.Contains(stderr, "failed in step") {
		t.Errorf("a hook failure is reported as a script failure:\n%s", stderr)
	}
	// cloud-init runs the hooks after a failed one too.
	order, _ := os.ReadFile(filepath.Join(r.side, "order"))
	if strings.Count(string(order), "\n") != 3 {
		t.Errorf("hooks run:\n%s", order)
	}
	if target, err := os.Readlink(r.path("var/lib/dbus/machine-id")); err != nil || target != "/etc/machine-id" {
		t.Errorf("dbus machine-id link: %q %v", target, err)
	}
	// The old host name was empty: nothing replaced, the line added.
	r.wantFile("etc/hosts", "127.0.0.1 localhost gale-parent-x\n127.0.1.1 "+testHostname+"\n", 0o644)
	r.wantFile("etc/hostname", testHostname+"\n", 0o644)
}

func TestScriptFailures(t *testing.T) {
	id := testIdentity(t)
	t.Run("no NIC with the parent's MAC", func(t *testing.T) {
		r := newFakeRoot(t)
		r.write("sys/class/net/ens3/address", "52:54:00:00:00:99\n", 0o444)
		_, stderr, code := r.run(id)
		if code == 0 || code == HookFailedExit {
			t.Fatalf("exit status %d", code)
		}
		if !strings.Contains(stderr, "no network interface has the parent's MAC "+testParentMAC) ||
			!strings.Contains(stderr, "failed in step") {
			t.Errorf("stderr:\n%s", stderr)
		}
		// Stopped before cloud-init.
		r.wantFile("var/lib/cloud/data/instance-id", testParentIID+"\n", 0o644)
	})
	t.Run("new instance exists already", func(t *testing.T) {
		r := newFakeRoot(t)
		r.mkdir("var/lib/cloud/instances/" + testIID)
		r.hook("10-ok", 0)
		_, stderr, code := r.run(id)
		if code == 0 || code == HookFailedExit {
			t.Fatalf("exit status %d", code)
		}
		if !strings.Contains(stderr, "instance "+testIID+" exists already") {
			t.Errorf("stderr:\n%s", stderr)
		}
		if _, err := os.Stat(filepath.Join(r.side, "order")); err == nil {
			t.Error("hooks ran after a failure")
		}
	})
	t.Run("a command exiting 3 is not a hook failure", func(t *testing.T) {
		r := newFakeRoot(t)
		// A base64 that exits 3 fails the random step with status 3.
		bin := t.TempDir()
		if err := os.WriteFile(filepath.Join(bin, "base64"), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		s, err := id.script(r.dir)
		if err != nil {
			t.Fatal(err)
		}
		// The script sets PATH itself; put the wrapper first in it.
		s = bytes.Replace(s, []byte("\nPATH=/usr/local/sbin"), []byte("\nPATH="+bin+":/usr/local/sbin"), 1)
		cmd := exec.Command("/bin/sh", "-s")
		cmd.Stdin = bytes.NewReader(s)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || ee.ExitCode() == HookFailedExit {
			t.Fatalf("exit: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "failed in step: writing the machine-id, host name, random seed and SSH host keys (status 3)") {
			t.Errorf("output:\n%s", out)
		}
	})
}

func TestScriptTestRootChecked(t *testing.T) {
	id := testIdentity(t)
	for _, root := range []string{"relative", "/tmp/a'b", "/tmp/$(x)", "/tmp/a b"} {
		if _, err := id.script(root); err == nil {
			t.Errorf("test root %q accepted", root)
		}
	}
}
