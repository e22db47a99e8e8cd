package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/galevm/gale/pkg/api"
)

// contains fails the test unless s holds every one of subs.
func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func TestVMListJSON(t *testing.T) {
	f := startFake(t)
	for _, args := range [][]string{{"vm", "list", "-o", "json"}, {"vm", "ls", "--output=json"}} {
		r := gale(t, f.sock, "", args...)
		if r.code != 0 {
			t.Fatalf("%q: exit %d: %s", args, r.code, r.stderr)
		}
		var vms []api.VM
		if err := json.Unmarshal([]byte(r.stdout), &vms); err != nil {
			t.Fatalf("%q: output is not JSON: %v\n%s", args, err, r.stdout)
		}
		if len(vms) != 2 || vms[1].Name != "web" || vms[1].MemoryMiB != 2048 || !vms[1].CreatedAt.Equal(created) {
			t.Fatalf("%q: vms = %+v", args, vms)
		}
	}
}

func TestVMListTableAndYAML(t *testing.T) {
	f := startFake(t)
	r := gale(t, f.sock, "", "vm", "list")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	contains(t, "table", r.stdout, "NAME", "STATE", "web", "running", "192.168.122.10", "2G", "20G", "db", "stopped")

	r = gale(t, f.sock, "", "vm", "list", "-o", "yaml")
	var vms []map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &vms); err != nil || len(vms) != 2 {
		t.Fatalf("yaml: %v\n%s", err, r.stdout)
	}
	if vms[1]["memory_mib"] != 2048 || vms[1]["ready_after"] != "42.3s" {
		t.Fatalf("yaml keys follow the JSON names: %v", vms[1])
	}
}

func TestVMShow(t *testing.T) {
	f := startFake(t)
	r := gale(t, f.sock, "", "vm", "show", "web")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	contains(t, "show", r.stdout, "State:", "running", "Addresses:", "192.168.122.10/24", "Image:", "debian-12",
		"CPUs:", "Memory:", "2G", "Disk:", "20G", "Cloud-init:", "done", "Created:", "2025-01-02", "Ready after:", "42.3s")

	r = gale(t, f.sock, "", "vm", "show", "web", "-o", "json")
	var vm api.VM
	if err := json.Unmarshal([]byte(r.stdout), &vm); err != nil || vm.Name != "web" {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
}

func TestErrorEnvelopeExitCodes(t *testing.T) {
	f := startFake(t)
	tests := []struct {
		name string
		args []string
		code int
		msg  []string
	}{
		{"not found", []string{"vm", "show", "nope"}, exitNotFound, []string{`gale: show vm nope: vm "nope" not found`}},
		{"conflict", []string{"vm", "create", "web", "--image", "debian-12"}, exitConflict, []string{`vm "web" already exists`}},
		{"insufficient", []string{"vm", "create", "huge", "--image", "debian-12", "--memory", "64G"}, exitInsufficient,
			[]string{"needs 64G of memory", "retry with --force"}},
		{"usage: missing name", []string{"vm", "show"}, exitUsage, []string{"missing NAME", "gale vm show --help"}},
		{"usage: unknown flag", []string{"vm", "show", "web", "--colour"}, exitUsage, []string{"unknown flag --colour"}},
		{"usage: bad size", []string{"vm", "create", "x", "--image", "d", "--memory", "lots"}, exitUsage, []string{"--memory", "lots"}},
		{"usage: missing image", []string{"vm", "create", "x"}, exitUsage, []string{"missing --image"}},
		{"usage: bad output", []string{"vm", "list", "-o", "xml"}, exitUsage, []string{`unknown output format "xml"`}},
		{"usage: unknown subcommand", []string{"vm", "frob"}, exitUsage, []string{`unknown command "frob"`}},
		{"usage: bad mode", []string{"network", "create", "lab", "--mode", "bridge"}, exitUsage, []string{"want nat, isolated or open"}},
		{"cloud-init failed in wait", []string{"vm", "wait", "broken"}, exitError, []string{"cloud-init failed", "gale vm logs broken"}},
		{"doctor failed check", []string{"doctor"}, exitError, []string{"1 of 2 checks failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gale(t, f.sock, "", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			contains(t, "stderr", r.stderr, tt.msg...)
		})
	}
}

func TestCreateStreamsStages(t *testing.T) {
	f := startFake(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "id.pub")
	if err := os.WriteFile(key, []byte("ssh-ed25519 AAAA me@host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Flags after the name, --cpus=2 inline, user-data from stdin.
	r := gale(t, f.sock, "#cloud-config\npackages: [nginx]\n",
		"vm", "create", "app", "--image", "debian-12", "--cpus=2", "--memory", "1G", "--disk", "10G",
		"--cloud-init", "-", "--ssh-key", key, "--network", "lab")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	contains(t, "stdout", r.stdout, "Creating vm app from debian-12 (operation op-web)",
		"] disk: overlay on debian-12", "] boot: waiting for the guest agent", "] cloud-init",
		"vm app is ready after 42.0s at 192.168.122.20: gale vm ssh app")
	for _, stage := range []string{"disk", "boot", "cloud-init"} {
		if n := strings.Count(r.stdout, "] "+stage); n != 1 {
			t.Errorf("stage %s printed %d times, want once per stage:\n%s", stage, n, r.stdout)
		}
	}
	want := api.CreateVMRequest{Name: "app", Image: "debian-12", CPUs: 2, MemoryMiB: 1024, DiskBytes: 10 << 30,
		Network: "lab", UserData: []byte("#cloud-config\npackages: [nginx]\n"), SSHKeys: []string{"ssh-ed25519 AAAA me@host"},
		Clone: api.CloneAuto}
	if len(f.created) != 1 || !reflect.DeepEqual(f.created[0], want) {
		t.Fatalf("create request = %+v\nwant %+v", f.created, want)
	}
}

func TestCreateFailedOperation(t *testing.T) {
	f := startFake(t)
	r := gale(t, f.sock, "", "vm", "create", "bad", "--image", "debian-12")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d", r.code, exitError)
	}
	contains(t, "stdout", r.stdout, "] disk", "] cloud-init")
	contains(t, "stderr", r.stderr,
		"gale: create vm bad: operation op-bad failed at stage cloud-init: cloud-init failed in module scripts_user",
		"    + apt-get install -y nginxx\n    E: Unable to locate package nginxx")
}

func TestCreateNoWait(t *testing.T) {
	f := startFake(t)
	r := gale(t, f.sock, "", "vm", "create", "app", "--no-wait", "--image", "debian-12")
	if r.code != 0 || r.stdout != "op-web\n" {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
}

func TestExecExitCode(t *testing.T) {
	f := startFake(t)
	r := gale(t, f.sock, "", "vm", "exec", "web", "--", "ls", "-la", "--color")
	if r.code != 3 {
		t.Fatalf("exit %d, want the guest's 3; stderr %s", r.code, r.stderr)
	}
	if r.stdout != "hello\n" || r.stderr != "warning\n" {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if got := f.execs[0].Command; !reflect.DeepEqual(got, []string{"ls", "-la", "--color"}) {
		t.Fatalf("command = %q", got)
	}

	r = gale(t, f.sock, "input", "vm", "exec", "-i", "web", "--", "cat")
	if string(f.execs[1].Stdin) != "input" {
		t.Fatalf("stdin = %q", f.execs[1].Stdin)
	}
}

func TestLifecycle(t *testing.T) {
	f := startFake(t)
	tests := []struct {
		args    []string
		out     string
		request string
	}{
		{[]string{"vm", "stop", "web", "--force"}, "vm web stopped", "POST /v1/vms/web/stop"},
		{[]string{"vm", "restart", "web"}, "vm web restarted", "POST /v1/vms/web/restart"},
		{[]string{"vm", "start", "db"}, "vm db started", "POST /v1/vms/db/start"},
		{[]string{"vm", "delete", "web", "--keep-disk"}, "vm web deleted", "DELETE /v1/vms/web?keep_disk=true"},
		{[]string{"vm", "rm", "web"}, "vm web deleted", "DELETE /v1/vms/web"},
	}
	for _, tt := range tests {
		f.requests = nil
		r := gale(t, f.sock, "", tt.args...)
		if r.code != 0 {
			t.Fatalf("%q: exit %d: %s", tt.args, r.code, r.stderr)
		}
		contains(t, "stdout", r.stdout, tt.out)
		if len(f.requests) == 0 || f.requests[0] != tt.request {
			t.Errorf("%q: requests %q, want first %q", tt.args, f.requests, tt.request)
		}
	}
}

func TestSSHAndConsole(t *testing.T) {
	f := startFake(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, []byte("private key"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.setIdentity(key)
	r := gale(t, f.sock, "", "vm", "ssh", "web", "--", "uptime")
	want := []string{"/usr/bin/ssh", "ssh", "-i", key, "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "gale@192.168.122.10", "uptime"}
	if r.code != 0 || !reflect.DeepEqual(r.execed, want) {
		t.Fatalf("exit %d (%s), exec %q\nwant %q", r.code, r.stderr, r.execed, want)
	}
	// A group-readable key that we own would be refused by ssh: a 0600 copy is used.
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	r = gale(t, f.sock, "", "vm", "ssh", "web")
	copyPath := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "gale", "id_ed25519")
	if r.code != 0 || r.execed[3] != copyPath {
		t.Fatalf("exit %d (%s), exec %q, want -i %s", r.code, r.stderr, r.execed, copyPath)
	}
	if st, err := os.Stat(copyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("copy %s: %v, mode %v", copyPath, err, st.Mode())
	}
	if b, _ := os.ReadFile(copyPath); string(b) != "private key" {
		t.Fatalf("copy holds %q", b)
	}
	f.setIdentity(filepath.Join(t.TempDir(), "missing"))
	r = gale(t, f.sock, "", "vm", "ssh", "web")
	if r.code == 0 || r.execed != nil {
		t.Fatalf("missing key: exit %d exec %q", r.code, r.execed)
	}
	contains(t, "stderr", r.stderr, "is galed running")
	r = gale(t, f.sock, "", "vm", "ssh", "web", "--identity", "/k")
	if r.execed[3] != "/k" {
		t.Fatalf("exec %q", r.execed)
	}
	r = gale(t, f.sock, "", "vm", "ssh", "db")
	if r.code != exitError || r.execed != nil {
		t.Fatalf("stopped VM: exit %d exec %q", r.code, r.execed)
	}
	contains(t, "stderr", r.stderr, "vm db has no address: it is stopped")

	r = gale(t, f.sock, "", "vm", "console", "web")
	if want := []string{"/usr/bin/virsh", "virsh", "-c", "qemu:///system", "console", "web"}; !reflect.DeepEqual(r.execed, want) {
		t.Fatalf("exec %q", r.execed)
	}
}

func TestMisc(t *testing.T) {
	f := startFake(t)
	tests := []struct {
		args []string
		out  []string
	}{
		{[]string{"vm", "ip", "web"}, []string{"192.168.122.10\n"}},
		{[]string{"vm", "logs", "web"}, []string{"cloud-init finished"}},
		{[]string{"vm", "wait", "web"}, []string{"vm web is ready after 42.3s at 192.168.122.10"}},
		{[]string{"network", "list"}, []string{"default", "nat", "192.168.122.1/24", "virbr0", "yes"}},
		{[]string{"network", "create", "lab", "--mode", "isolated", "--cidr", "10.9.0.1/24"}, []string{"network lab created (isolated, 10.9.0.1/24)"}},
		{[]string{"network", "delete", "lab"}, []string{"network lab deleted"}},
		{[]string{"image", "list"}, []string{"debian-12", "2.00 GiB", "built"}},
		{[]string{"version"}, []string{"gale:", "dev", "galed:", "1.0.0", "tcg"}},
		{[]string{"completion", "bash"}, []string{"complete -o bashdefault", "_gale_complete gale"}},
		{[]string{"completion", "fish"}, []string{"complete -c gale"}},
	}
	for _, tt := range tests {
		r := gale(t, f.sock, "", tt.args...)
		if r.code != 0 {
			t.Errorf("%q: exit %d: %s", tt.args, r.code, r.stderr)
		}
		contains(t, strings.Join(tt.args, " "), r.stdout, tt.out...)
	}
	r := gale(t, f.sock, "", "doctor")
	contains(t, "doctor", r.stdout, "ok", "libvirtd", "FAIL", "kvm", "fix: enable VT-x in the firmware")
}

func TestDaemonUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gale.sock")
	want := "cannot reach galed at " + sock + ": is galed running? start it with `galed` (see README)"

	r := gale(t, sock, "", "vm", "list")
	if r.code != exitUnreachable {
		t.Fatalf("exit %d, want %d", r.code, exitUnreachable)
	}
	contains(t, "stderr", r.stderr, want)

	r = gale(t, sock, "", "version")
	if r.code != exitUnreachable {
		t.Fatalf("version: exit %d", r.code)
	}
	contains(t, "version stdout", r.stdout, "gale:", "dev")
	contains(t, "version stderr", r.stderr, want)

	r = gale(t, sock, "", "doctor")
	if r.code != exitUnreachable {
		t.Fatalf("doctor: exit %d", r.code)
	}
	contains(t, "doctor stdout", r.stdout, "galed is not reachable", "does not exist", "start galed", "GALE_SOCKET")
}

func TestSocketFromEnv(t *testing.T) {
	f := startFake(t)
	t.Setenv("GALE_SOCKET", f.sock)
	var out strings.Builder
	d := deps{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
	if code := run(t.Context(), newApp(d), []string{"gale", "image", "list"}); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	contains(t, "stdout", out.String(), "debian-12")
}

func TestNameCompletion(t *testing.T) {
	f := startFake(t)
	saved := os.Args
	defer func() { os.Args = saved }()
	tests := []struct {
		args    []string
		want    []string
		notWant []string
	}{
		{[]string{"vm", "show", "--generate-bash-completion"}, []string{"web\n", "db\n"}, []string{"debian-12"}},
		{[]string{"vm", "delete", "--generate-bash-completion"}, []string{"web\n"}, nil},
		{[]string{"image", "show", "--generate-bash-completion"}, []string{"debian-12\n"}, []string{"web"}},
		{[]string{"vm", "show", "web", "--generate-bash-completion"}, nil, []string{"db"}},
		{[]string{"vm", "create", "--generate-bash-completion"}, nil, []string{"web"}},
		{[]string{"vm", "stop", "--f", "--generate-bash-completion"}, []string{"--force"}, []string{"web"}},
	}
	for _, tt := range tests {
		os.Args = append([]string{"gale"}, tt.args...)
		r := gale(t, f.sock, "", tt.args...)
		if r.code != 0 {
			t.Errorf("%q: exit %d: %s", tt.args, r.code, r.stderr)
		}
		contains(t, strings.Join(tt.args, " "), r.stdout, tt.want...)
		for _, s := range tt.notWant {
			if strings.Contains(r.stdout, s) {
				t.Errorf("%q: completion offers %q:\n%s", tt.args, s, r.stdout)
			}
		}
	}
}

func TestImageImport(t *testing.T) {
	f := startFake(t)
	// A stream: sent as the body, its format given.
	r := gale(t, f.sock, "disk bytes", "image", "import", "-", "--name", "web-old", "--format", "raw")
	if r.code != 0 {
		t.Fatalf("stream import: exit %d: %s", r.code, r.stderr)
	}
	contains(t, "stream import", r.stdout, "Importing - as web-old", "Done: web-old", "warn", "device-names", "fix: run import with --prepare")
	f.mu.Lock()
	got := string(f.uploads["web-old/raw"])
	f.mu.Unlock()
	if got != "disk bytes" {
		t.Fatalf("uploaded %q", got)
	}
	// A stream without a format is refused before anything is sent.
	r = gale(t, f.sock, "disk bytes", "image", "import", "-", "--name", "x")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--format") {
		t.Fatalf("stream without format: exit %d: %s", r.code, r.stderr)
	}
	f.mu.Lock()
	_, sent := f.uploads["x/"]
	f.mu.Unlock()
	if sent {
		t.Fatal("a stream without format was uploaded")
	}
	r = gale(t, f.sock, "", "image", "import", "disk.img")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--name") {
		t.Fatalf("import without --name: exit %d: %s", r.code, r.stderr)
	}
}
