//go:build e2e

// End-to-end tests of the engine on a real libvirtd and real QEMU guests.
// They run inside scripts/testenv.sh (a network namespace with its own
// libvirtd) and need GALE_E2E_TEMPLATE, the path of a built debian-12
// template: `make e2e` sets both up.
package vm_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/libvirt"
	"github.com/galevm/gale/pkg/vm"
)

// e2eEnv is one test's engine on the namespace's libvirtd, with an isolated network.
type e2eEnv struct {
	engine   *vm.Engine
	driver   hypervisor.Driver
	template vm.Template
	network  string
}

func newE2EEnv(t *testing.T) *e2eEnv {
	t.Helper()
	tmpl := os.Getenv("GALE_E2E_TEMPLATE")
	root := os.Getenv("GALE_TESTENV_DIR")
	if tmpl == "" || root == "" {
		t.Fatal("GALE_E2E_TEMPLATE and GALE_TESTENV_DIR must be set: run the e2e tests with `make e2e` (scripts/e2e.sh)")
	}
	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)
	d, err := libvirt.New("qemu:///system", libvirt.Options{Log: log})
	if err != nil {
		t.Fatalf("connect to libvirtd: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	_, cidr, _ := net.ParseCIDR("192.168.231.1/24")
	cidr.IP = net.ParseIP("192.168.231.1")
	netName := "gale-e2e"
	if _, err := d.GetNetwork(context.Background(), netName); errors.Is(err, hypervisor.ErrNotFound) {
		if err := d.CreateNetwork(context.Background(), hypervisor.NetworkSpec{Name: netName, Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
			t.Fatalf("create isolated network: %v", err)
		}
	}
	return &e2eEnv{
		engine:   &vm.Engine{Driver: d, Disks: disk.NewQemuImg(nil), Dir: filepath.Join(root, "vms"), Log: log},
		driver:   d,
		template: vm.Template{Name: "debian-12", Path: tmpl, Format: disk.FormatQCOW2},
		network:  netName,
	}
}

// assertNothingLeft checks that no domain, directory or file of name remains.
func (e *e2eEnv) assertNothingLeft(t *testing.T, name string) {
	t.Helper()
	if _, err := e.driver.Get(context.Background(), name); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("domain %q still defined (Get error: %v)", name, err)
	}
	if _, err := os.Lstat(e.engine.Paths(name).Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory of %q still exists (%v)", name, err)
	}
}

// dumpOnFailure prints the guest's cloud-init logs (through the agent) and
// its serial console when the test failed. It runs before the VM is deleted.
func (e *e2eEnv) dumpOnFailure(t *testing.T, name string) {
	if !t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, f := range []string{"/var/log/cloud-init.log", "/var/log/cloud-init-output.log"} {
		res, err := e.driver.AgentExec(ctx, name, hypervisor.ExecRequest{Path: "/usr/bin/tail", Args: []string{"-n", "60", f}})
		if err != nil {
			t.Logf("read %s: %v", f, err)
			continue
		}
		t.Logf("----- guest %s (last 60 lines) -----\n%s", f, res.Stdout)
	}
	if console, err := os.ReadFile(e.engine.Paths(name).ConsoleLog); err == nil {
		if len(console) > 6000 {
			console = console[len(console)-6000:]
		}
		t.Logf("----- serial console (end) -----\n%s", console)
	}
}

// leasesFor returns the network's DHCP lease lines that mention mac.
func leasesFor(t *testing.T, network, mac string) []string {
	t.Helper()
	out, err := exec.Command("virsh", "net-dhcp-leases", network).CombinedOutput()
	if err != nil {
		t.Fatalf("virsh net-dhcp-leases: %v: %s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, mac) {
			lines = append(lines, l)
		}
	}
	return lines
}

const e2eUserData = `#cloud-config
write_files:
  - path: /var/lib/gale-e2e/marker
    content: "written by cloud-init\n"
runcmd:
  - [sh, -c, "uname -r > /var/lib/gale-e2e/kernel"]
`

func TestE2ECreateBootExecDelete(t *testing.T) {
	e := newE2EEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	name := "e2e-life"
	inst, err := e.engine.Create(ctx, vm.CreateRequest{
		Name: name, Template: e.template, VCPUs: 1, MemoryMiB: 1024,
		DiskBytes: 4 << 30, Network: e.network, UserData: []byte(e2eUserData),
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = e.engine.Delete(context.Background(), name, vm.DeleteOptions{}) })
	t.Cleanup(func() { e.dumpOnFailure(t, name) })

	for _, p := range []string{inst.DiskPath, inst.SeedPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("expected %s after create: %v", p, err)
		}
	}
	info, err := disk.NewQemuImg(nil).Info(ctx, inst.DiskPath, disk.FormatQCOW2)
	if err != nil {
		t.Fatalf("disk info: %v", err)
	}
	if info.VirtualSize != 4<<30 || info.BackingFilename != e.template.Path {
		t.Fatalf("overlay = %+v, want 4 GiB on %s", info, e.template.Path)
	}

	var stages []string
	ready, err := vm.WaitReady(ctx, e.driver, name, func(p vm.Progress) {
		stages = append(stages, string(p.Stage))
		t.Logf("stage %-15s after %s", p.Stage, p.Elapsed.Round(100*time.Millisecond))
	})
	if err != nil {
		t.Fatalf("wait ready: %v (errors %v, output tail:\n%s)", err, ready.Errors, ready.OutputTail)
	}
	t.Logf("guest agent after %s, cloud-init done after %s", ready.AgentAfter.Round(time.Second), ready.DoneAfter.Round(time.Second))
	if stages[len(stages)-1] != string(vm.StageReady) {
		t.Fatalf("stages = %v, want them to end with ready", stages)
	}

	// The user-data ran: a file it wrote and a command's output, read back through the agent.
	for path, want := range map[string]string{
		"/var/lib/gale-e2e/marker": "written by cloud-init\n",
		"/var/lib/gale-e2e/kernel": "-cloud-amd64\n",
	} {
		res, err := e.driver.AgentExec(ctx, name, hypervisor.ExecRequest{Path: "/bin/cat", Args: []string{path}})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("cat %s: %v (exit %d, stderr %q)", path, err, res.ExitCode, res.Stderr)
		}
		if !strings.HasSuffix(string(res.Stdout), want) {
			t.Errorf("%s = %q, want it to end with %q", path, res.Stdout, want)
		}
	}
	// A failing command's exit code and stderr come back too.
	res, err := e.driver.AgentExec(ctx, name, hypervisor.ExecRequest{Path: "/bin/sh", Args: []string{"-c", "echo oops >&2; exit 3"}})
	if err != nil || res.ExitCode != 3 || strings.TrimSpace(string(res.Stderr)) != "oops" {
		t.Fatalf("exec exit 3 = %+v, %v", res, err)
	}
	// The root filesystem grew to the requested disk size.
	res, err = e.driver.AgentExec(ctx, name, hypervisor.ExecRequest{Path: "/bin/df", Args: []string{"--output=size", "-B1M", "/"}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("df: %v %+v", err, res)
	}
	fields := strings.Fields(string(res.Stdout))
	if len(fields) < 2 || len(fields[1]) < 4 { // at least 1000 MiB
		t.Errorf("root filesystem size = %q MiB, want it grown towards 4 GiB", res.Stdout)
	}

	// The address comes from the network's DHCP lease.
	addrs, err := vm.WaitAddress(ctx, e.driver, name)
	if err != nil {
		t.Fatalf("address: %v", err)
	}
	if addrs[0].Source != hypervisor.SourceLease || !strings.HasPrefix(addrs[0].IP.String(), "192.168.231.") || addrs[0].MAC != inst.MAC {
		t.Fatalf("addresses = %+v, want a lease in 192.168.231.0/24 for %s", addrs, inst.MAC)
	}
	t.Logf("address %s (%s)", addrs[0].IP, addrs[0].Source)

	// Graceful shutdown; the guest releases its lease on the way down.
	if err := e.driver.Shutdown(ctx, name, 90*time.Second); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	dom, err := e.driver.Get(ctx, name)
	if err != nil || dom.State != hypervisor.StateShutoff {
		t.Fatalf("after shutdown: %+v, %v", dom, err)
	}
	if err := e.engine.Delete(ctx, name, vm.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	e.assertNothingLeft(t, name)
	if l := leasesFor(t, e.network, inst.MAC); len(l) != 0 {
		t.Errorf("lease still present after delete: %v", l)
	}
	if err := e.engine.Delete(ctx, name, vm.DeleteOptions{}); !errors.Is(err, vm.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
}

func TestE2EFailedCreateLeavesNothing(t *testing.T) {
	e := newE2EEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// An inactive network passes validation and definition but fails start:
	// the disk, seed and domain made before must all be undone.
	_, cidr, _ := net.ParseCIDR("192.168.232.0/24")
	cidr.IP = net.ParseIP("192.168.232.1")
	if err := e.driver.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: "gale-e2e-down", Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
		t.Fatalf("create network: %v", err)
	}
	t.Cleanup(func() { _ = e.driver.DeleteNetwork(context.Background(), "gale-e2e-down") })
	if out, err := exec.Command("virsh", "net-destroy", "gale-e2e-down").CombinedOutput(); err != nil {
		t.Fatalf("virsh net-destroy: %v: %s", err, out)
	}

	missing := e.template
	missing.Path = "/nonexistent/template.qcow2"
	hostFile := e.template
	hostFile.Path = "/etc"
	tests := []struct {
		name    string
		req     vm.CreateRequest
		wantErr error
	}{
		{"missing template", vm.CreateRequest{Name: "e2e-fail", Template: missing, Network: e.network}, vm.ErrInvalid},
		{"template is a directory", vm.CreateRequest{Name: "e2e-fail", Template: hostFile, Network: e.network}, vm.ErrInvalid},
		{"unknown network", vm.CreateRequest{Name: "e2e-fail", Template: e.template, Network: "no-such-net"}, vm.ErrInvalid},
		{"path in name", vm.CreateRequest{Name: "../x", Template: e.template, Network: e.network}, vm.ErrInvalid},
		{"bad cloud-config", vm.CreateRequest{Name: "e2e-fail", Template: e.template, Network: e.network, UserData: []byte("#cloud-config\nruncmd: [\n")}, vm.ErrInvalid},
		{"start fails on an inactive network", vm.CreateRequest{Name: "e2e-fail", Template: e.template, Network: "gale-e2e-down"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.engine.Create(ctx, tt.req)
			if err == nil {
				t.Fatal("create succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			t.Logf("refused: %v", err)
			if tt.req.Name == "e2e-fail" {
				e.assertNothingLeft(t, tt.req.Name)
			}
		})
	}
	entries, _ := os.ReadDir(e.engine.Dir)
	for _, ent := range entries {
		if strings.HasPrefix(ent.Name(), "e2e-fail") || strings.HasPrefix(ent.Name(), ".") {
			t.Errorf("left behind in %s: %s", e.engine.Dir, ent.Name())
		}
	}
}
