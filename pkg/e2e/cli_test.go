//go:build e2e

package e2e

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/galevm/gale/pkg/api"
)

// The CLI scenarios: galed and the gale CLI on real VMs. The number in each
// scenario's comment is how many checks of the former scripts/e2e-cli.sh it
// carries (85 in all); README.md has the table.

// cliDaemon: galed answers and holds its data dir. 3 checks.
func cliDaemon(s *S) {
	s.Expect("gale version reaches galed", 0, "version")
	r := run(time.Minute, nil, "", nil, s.Env.Galed, "--config", filepath.Join(s.Env.Dir, "galed.yaml"), "--socket", filepath.Join(s.Env.Dir, "other.sock"))
	s.Check(r.Code == 1, "a second galed on the same data dir: want exit 1; %s", r)
	s.Check(r.Has("locked"), "the second galed does not say the data dir is locked: %s", r)
}

// cliHost: host checks and the image list, no VM needed. 3 checks.
func cliHost(s *S) {
	s.Expect("gale doctor passes in the test environment", 0, "doctor")
	r := s.Expect("gale image list -o json", 0, "image", "list", "-o", "json")
	present := false
	for _, im := range decode[[]api.Image](s, r) {
		if im.Name == "debian-12" {
			present = im.Present && im.Kind == api.ImageKindBuild
		}
	}
	s.Check(present, "image list does not show debian-12 built and present: %s", r.Stdout)
}

// cliNetwork: an isolated network is made, listed, refused twice and
// deleted. 8 checks.
func cliNetwork(s *S) {
	s.Expect("network create lab (isolated)", 0, "network", "create", "lab", "--mode", "isolated", "--cidr", "192.168.160.1/24")
	r := s.Expect("network list -o yaml", 0, "network", "list", "-o", "yaml")
	s.Check(r.Has("name: lab"), "network list does not show lab: %s", r)
	xml := s.MustHost("virsh", "net-dumpxml", "lab")
	s.Check(!xml.Has("<forward"), "isolated network lab has a <forward>: a route out:\n%s", xml.Stdout)
	s.Expect("network create lab again is a conflict", 4, "network", "create", "lab", "--mode", "isolated", "--cidr", "192.168.161.1/24")
	s.Expect("network create with a bad CIDR is refused", 2, "network", "create", "lab2", "--mode", "isolated", "--cidr", "300.1.1.1/24")
	s.Expect("network delete lab", 0, "network", "delete", "lab")
	s.Check(s.Host("virsh", "net-info", "lab").Code != 0, "lab is still defined in libvirt after delete")
}

// cliWeb: the web fixture, made with the web-server snippet, serves its
// page; list, show, exec, ssh and logs read it. 18 checks (the create's exit
// code is checked by the fixture).
func cliWeb(s *S) {
	create := web.Get(s)
	s.Logf("create of web:\n%s", create.Out())
	for _, stage := range []string{"disk", "seed", "define", "boot", "agent", "ready"} {
		s.Check(create.HasWord(stage), "create did not show stage %s: %s", stage, create)
	}
	ip := strings.TrimSpace(s.Gale("vm", "ip", "web").Stdout)
	s.Check(strings.HasPrefix(ip, "192.168.150."), "vm ip web = %q, want an address in %s", ip, bridgeCIDR)
	// The snippet's last runcmd waits until the page answers, so ready means serving.
	page := s.GetPage("web", 1)
	s.Check(strings.Contains(page, "Hello from web"), "page served by the snippet's unit = %q", page)

	r := s.Expect("vm list -o json", 0, "vm", "list", "-o", "json")
	found := false
	for _, v := range decode[[]api.VM](s, r) {
		found = found || v.Name == "web" && v.State == api.StateRunning && v.CloudInit == api.CloudInitDone
	}
	s.Check(found, "vm list does not show web running with cloud-init done: %s", r.Stdout)
	r = s.Expect("vm show -o yaml", 0, "vm", "show", "web", "-o", "yaml")
	s.Check(r.Has("image: debian-12"), "vm show does not name the image: %s", r)

	r = s.Expect("vm exec returns the guest's exit code", 7, "vm", "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
	s.Check(strings.Contains(r.Stdout, "out") && strings.Contains(r.Stderr, "err"), "exec does not pass stdout and stderr: %s", r)
	r = s.Gale("vm", "ssh", "web", "--", "cat", "/etc/hostname")
	s.Check(r.Code == 0 && r.Out() == "web", "vm ssh runs a command as the login user: %s", r)
	r = s.Expect("vm logs", 0, "vm", "logs", "web")
	s.Check(r.Has("Cloud-init"), "vm logs do not show cloud-init's output: %s", r)
}

// cliStopStart: web stopped and started again serves its page again.
// 5 checks.
func cliStopStart(s *S) {
	web.Mutate(s)
	s.Expect("vm stop web", 0, "vm", "stop", "web")
	v := showJSON[api.VM](s, "vm", "web")
	s.Check(v.State == api.StateStopped, "web after stop is %q, want stopped", v.State)
	s.Expect("vm start web", 0, "vm", "start", "web")
	s.Expect("vm wait web", 0, "vm", "wait", "web", "--timeout", "5m")
	s.checkPage("web", "after stop/start", 30)
}

// checkPage is one check: VM name serves its page (which names it) within
// tries attempts 2 s apart.
func (s *S) checkPage(name, when string, tries int) {
	s.Helper()
	page := s.GetPage(name, tries)
	s.Check(strings.Contains(page, "Hello from "+name), "page of %s %s = %q", name, when, page)
}

// cliLibvirtdRestart: libvirtd restarts under galed, which reports it down,
// reconnects and keeps serving. 4 checks.
func cliLibvirtdRestart(s *S) {
	web.Mutate(s)
	pid := namespaceLibvirtd(s)
	if !s.Check(pid != 0, "could not find this namespace's libvirtd") {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	Eventually(5*time.Second, 100*time.Millisecond, func() bool { return syscall.Kill(pid, 0) != nil })
	s.Expect("galed says libvirtd is unreachable while it is down", 7, "vm", "list")
	r := run(time.Minute, nil, "", []string{"LIBVIRT_LOG_OUTPUTS=3:file:" + filepath.Join(s.Env.StateDir, "libvirtd.log")},
		"libvirtd", "-d", "-p", filepath.Join(s.Env.StateDir, "libvirtd.pid"))
	if r.Code != 0 {
		s.Fatalf("restart libvirtd: %s", r)
	}
	Eventually(time.Minute, time.Second, func() bool { return s.Gale("vm", "exec", "web", "--", "true").Code == 0 })
	s.Expect("exec works after libvirtd restarted", 0, "vm", "exec", "web", "--", "true")
	r = s.Expect("list works after libvirtd restarted", 0, "vm", "list", "-o", "json")
	running := false
	for _, v := range decode[[]api.VM](s, r) {
		running = running || v.Name == "web" && v.State == api.StateRunning
	}
	s.Check(running, "web is not running after libvirtd restarted: %s", r.Stdout)
}

// namespaceLibvirtd is the pid of the libvirtd in this process's network
// namespace, or 0.
func namespaceLibvirtd(s *S) int {
	ours, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		s.Fatalf("read our network namespace: %v", err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range procs {
		comm, err := os.ReadFile(p)
		if err != nil || strings.TrimSpace(string(comm)) != "libvirtd" {
			continue
		}
		dir := filepath.Dir(p)
		if ns, err := os.Readlink(filepath.Join(dir, "ns", "net")); err == nil && ns == ours {
			if pid, err := strconv.Atoi(filepath.Base(dir)); err == nil {
				return pid
			}
		}
	}
	return 0
}

// cliGaledRestart: a VM recorded as running that was powered off while
// galed was down is started again by galed's reconcile, after galed has
// started its own network, found inactive. 4 checks: the bash scenario's 3
// and the network's.
func cliGaledRestart(s *S) {
	web.Mutate(s)
	s.Env.Daemon.Stop(syscall.SIGTERM)
	s.MustHost("virsh", "-q", "destroy", "web")
	// As after a host boot without network autostart: galed's own network
	// is defined but inactive, and web cannot start until galed starts it.
	s.MustHost("virsh", "-q", "net-destroy", "gale-default")
	if err := s.Env.Daemon.Start(); err != nil {
		s.Fatalf("start galed: %v", err)
	}
	active := strings.TrimSpace(s.Host("virsh", "-q", "net-list", "--name").Stdout)
	s.Check(strings.Contains(active, "gale-default"), "galed did not start its inactive network gale-default: active networks %q", active)
	var state string
	Eventually(30*time.Second, time.Second, func() bool {
		state = strings.TrimSpace(s.Host("virsh", "domstate", "web").Stdout)
		return state == "running"
	})
	s.Check(state == "running", "galed did not restart web, which was recorded as running: domain state %q", state)
	s.Expect("vm wait web after galed restarted it", 0, "vm", "wait", "web", "--timeout", "5m")
	s.checkPage("web", "after galed restarted web", 60)
}

// cliBadInput: bad input is refused with the right exit code and leaves
// nothing behind. 14 checks.
func cliBadInput(s *S) {
	web.Get(s) // for the duplicate name
	dir := s.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	huge := filepath.Join(dir, "huge.sh")
	if err := os.WriteFile(broken, []byte("#cloud-config\nruncmd: [\n"), 0o644); err != nil {
		s.Fatal(err)
	}
	if err := os.WriteFile(huge, []byte("#!/bin/sh\n"+strings.Repeat("a", 70000)), 0o644); err != nil {
		s.Fatal(err)
	}
	before := s.stateSnapshot()
	for _, c := range []struct {
		what string
		code int
		args []string
	}{
		{"name ../x refused", 2, []string{"../x", "--image", "debian-12"}},
		{"name a/b refused", 2, []string{"a/b", "--image", "debian-12"}},
		{"name -x refused", 2, []string{"--image", "debian-12", "--", "-x"}},
		{"64-character name refused", 2, []string{strings.Repeat("a", 64), "--image", "debian-12"}},
		{"XML metacharacters refused", 2, []string{"<a&b>", "--image", "debian-12"}},
		{"unknown image refused", 2, []string{"x1", "--image", "no-such-image"}},
		{"unknown network refused", 2, []string{"x1", "--image", "debian-12", "--network", "no-such-net"}},
		{"invalid cloud-config refused", 2, []string{"x1", "--image", "debian-12", "--cloud-init", broken}},
		{"user-data over the limit refused", 2, []string{"x1", "--image", "debian-12", "--cloud-init", huge}},
		{"memory beyond the host refused", 6, []string{"x1", "--image", "debian-12", "--memory", "100T"}},
		{"disk beyond the host refused", 6, []string{"x1", "--image", "debian-12", "--disk", "100T"}},
		{"duplicate name refused", 4, []string{"web", "--image", "debian-12"}},
	} {
		r := s.Expect(c.what, c.code, append([]string{"vm", "create"}, c.args...)...)
		if c.what == "invalid cloud-config refused" {
			s.Check(r.Has("line"), "the cloud-config error does not name the line: %s", r)
		}
	}
	after := s.stateSnapshot()
	s.Check(after == before, "bad input changed state: %q -> %q", before, after)
}

// stateSnapshot lists libvirt's domains and galed's VM directories.
func (s *S) stateSnapshot() string {
	entries, _ := os.ReadDir(filepath.Join(s.Env.Dir, "data", "vms"))
	names := s.Domains()
	for _, e := range entries {
		names = append(names, "dir:"+e.Name())
	}
	return strings.Join(names, " ")
}

// cliCrash: a second operation on a VM being created is refused, but a
// delete cancels the create and leaves nothing; galed killed (SIGKILL) or
// stopped (SIGTERM) mid-create leaves no leak once it is back. 17 checks:
// the bash scenario's 12 (its refused delete is now a refused stop) and 5
// on the delete that cancels; 5 are on the branches taken when the create
// survives the restart.
func cliCrash(s *S) {
	s.Watch("busy")
	s.Expect("create busy --no-wait", 0, "vm", "create", "busy", "--image", "debian-12", "--no-wait")
	s.Expect("stopping a VM mid-create is refused", 4, "vm", "stop", "busy")
	time.Sleep(2 * time.Second)
	s.Expect("deleting a VM mid-create cancels the create, then deletes", 0, "vm", "delete", "busy")
	s.Expect("vm show busy after the delete", 3, "vm", "show", "busy")
	s.checkGone("busy", "after a delete mid-create")

	s.Expect("create busy again --no-wait", 0, "vm", "create", "busy", "--image", "debian-12", "--no-wait")
	time.Sleep(3 * time.Second)
	s.Env.Daemon.Restart(s, syscall.SIGKILL)
	time.Sleep(time.Second)
	if s.Gale("vm", "show", "busy").Code == 0 {
		// Killed after the boot began: reconcile resumes the create, which finishes.
		s.Expect("the create cut by SIGKILL finishes after the restart", 0, "vm", "wait", "busy", "--timeout", "5m")
		v := showJSON[api.VM](s, "vm", "busy")
		s.Check(v.State == api.StateRunning && v.CloudInit == api.CloudInitDone, "busy after the resumed create: %s/%s, want running/done", v.State, v.CloudInit)
		s.Expect("delete the VM caught mid-create", 0, "vm", "delete", "busy")
	}
	s.checkGone("busy", "after SIGKILL")
	s.Expect("the name is reusable after the crash", 0, "vm", "create", "busy", "--image", "debian-12", "--no-wait")

	time.Sleep(2 * time.Second)
	s.Env.Daemon.Restart(s, syscall.SIGTERM)
	if s.Gale("vm", "show", "busy").Code == 0 {
		s.Expect("the create cut by a graceful stop finishes after the restart", 0, "vm", "wait", "busy", "--timeout", "5m")
		s.Expect("delete the VM caught by a graceful stop", 0, "vm", "delete", "busy")
	}
	s.checkGone("busy", "after a graceful stop")
}

// checkGone is two checks: VM name has no domain and no files left.
func (s *S) checkGone(name, when string) {
	s.Helper()
	s.Check(!s.HasDomain(name), "domain %s leaked %s", name, when)
	s.Check(!Exists(s.Env.VMDir(name)), "files of %s leaked %s", name, when)
}

// cliDelete: web, taken over from the fixture, is deleted and nothing of
// it is left: domain, files, list entry, lease. 7 checks.
func cliDelete(s *S) {
	web.Take(s)
	mac := showJSON[api.VM](s, "vm", "web").MAC
	s.Expect("vm stop web (the guest releases its lease)", 0, "vm", "stop", "web")
	s.Expect("vm delete web", 0, "vm", "delete", "web")
	s.Expect("vm show web after delete", 3, "vm", "show", "web")
	// Other fixture VMs may exist; nothing else may.
	keep := liveFixtureVMs()
	s.Check(strings.Join(s.Domains(), " ") == strings.Join(keep, " "), "domains left: %v, want %v", s.Domains(), keep)
	entries, _ := os.ReadDir(filepath.Join(s.Env.Dir, "data", "vms"))
	var dirs []string
	for _, e := range entries {
		dirs = append(dirs, e.Name())
	}
	s.Check(strings.Join(dirs, " ") == strings.Join(keep, " "), "VM files left: %v, want %v", dirs, keep)
	vms := decode[[]api.VM](s, s.Must("vm", "list", "-o", "json"))
	s.Check(len(vms) == len(keep), "vm list has %d VMs, want %d: %+v", len(vms), len(keep), vms)
	leases := s.MustHost("virsh", "net-dhcp-leases", "gale-default")
	s.Check(mac != "" && !strings.Contains(strings.ToLower(leases.Stdout), strings.ToLower(mac)), "lease of web (%q) left:\n%s", mac, leases.Stdout)
}

// cliToolbox: the developer-toolbox snippet installs its packages from a
// local repository (scripts/e2e-repo.sh, made before the namespace, since
// guests have no route out) served on the address of galed's default
// network's bridge (galed makes that network at start). 8 checks.
func cliToolbox(s *S) {
	repo := os.Getenv("GALE_E2E_REPO")
	if repo == "" {
		s.Fatal("GALE_E2E_REPO is not set: the dev-toolbox snippet cannot be checked (scripts/e2e.sh sets it)")
	}
	l, err := net.Listen("tcp", bridgeIP+":0")
	if err != nil {
		s.Fatalf("serve the package repository on the bridge: %v", err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(repo)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	s.Cleanup(func() { _ = srv.Close() })
	snippet, err := os.ReadFile(filepath.Join(s.Env.Repo, "cloudinit", "dev-toolbox.yaml"))
	if err != nil {
		s.Fatal(err)
	}
	userData := filepath.Join(s.TempDir(), "toolbox.yaml")
	apt := "apt:\n  preserve_sources_list: false\n  sources_list: |\n    deb [trusted=yes] http://" + l.Addr().String() + "/ ./\n"
	if err := os.WriteFile(userData, append(snippet, apt...), 0o644); err != nil {
		s.Fatal(err)
	}
	s.Watch("tools")
	s.Expect("vm create with the dev-toolbox snippet", 0, "vm", "create", "tools", "--image", "debian-12", "--cloud-init", userData)
	s.Expect("toolbox: git runs", 0, "vm", "exec", "tools", "--", "git", "--version")
	r := s.Expect("toolbox: jq runs", 0, "vm", "exec", "tools", "--", "sh", "-c", `echo '{"a": 41}' | jq '.a + 1'`)
	s.Check(r.Out() == "42", "jq printed %q, want 42", r.Out())
	r = s.Expect("toolbox: git defaults", 0, "vm", "exec", "tools", "--", "git", "config", "--system", "init.defaultBranch")
	s.Check(r.Out() == "main", "init.defaultBranch = %q, want main", r.Out())
	s.Expect("toolbox: shell conveniences for logins", 0, "vm", "exec", "tools", "--", "bash", "-lc", "alias ll")
	s.Expect("delete tools", 0, "vm", "delete", "tools")
}
