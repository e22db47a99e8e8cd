package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/fake"
)

// fileDisks is a disk.Manager that writes plain files instead of running qemu-img.
type fileDisks struct{ failCreate error }

func (f *fileDisks) CreateOverlay(_ context.Context, path, backing, _ string, _ int64) error {
	if f.failCreate != nil {
		return f.failCreate
	}
	return os.WriteFile(path, []byte("overlay of "+backing), 0o600)
}
func (f *fileDisks) Info(context.Context, string, string) (disk.Info, error) {
	return disk.Info{}, nil
}

func newTestEngine(t *testing.T) (*Engine, *fake.Driver, Template) {
	t.Helper()
	d := fake.New()
	_, cidr, _ := net.ParseCIDR("192.168.50.0/24")
	if err := d.CreateNetwork(context.Background(), hypervisor.NetworkSpec{Name: "testnet", Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "template.qcow2")
	if err := os.WriteFile(tmpl, []byte("template"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &Engine{Driver: d, Disks: &fileDisks{}, Dir: filepath.Join(dir, "vms")}
	return e, d, Template{Name: "debian-12", Path: tmpl, Format: disk.FormatQCOW2}
}

func TestCreateMakesDiskSeedAndRunningDomain(t *testing.T) {
	e, d, tmpl := newTestEngine(t)
	inst, err := e.Create(context.Background(), CreateRequest{Name: "web", Template: tmpl, Network: "testnet", SSHKeys: nil})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, p := range []string{inst.DiskPath, inst.SeedPath} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	dom, err := d.Get(context.Background(), "web")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if dom.State != hypervisor.StateRunning {
		t.Errorf("state = %s, want running", dom.State)
	}
	if dom.Metadata == nil || dom.Metadata.ID != inst.ID || dom.Metadata.Image != "debian-12" {
		t.Errorf("metadata = %+v, want id %s image debian-12", dom.Metadata, inst.ID)
	}
	spec, _ := d.Spec("web")
	if spec.VCPUs != 1 || spec.MemoryMiB != 1024 || !spec.GuestAgent || spec.NICs[0].MAC != inst.MAC {
		t.Errorf("spec = %+v, want defaults 1 vCPU, 1024 MiB, agent, MAC %s", spec, inst.MAC)
	}
	for _, dk := range spec.Disks {
		if dk.Format == "" {
			t.Errorf("disk %s has no explicit format", dk.Path)
		}
	}
}

func TestCreateRefusesBadInputWithoutSideEffects(t *testing.T) {
	e, d, tmpl := newTestEngine(t)
	if _, err := e.Create(context.Background(), CreateRequest{Name: "taken", Template: tmpl, Network: "testnet"}); err != nil {
		t.Fatal(err)
	}
	missing := tmpl
	missing.Path = filepath.Join(filepath.Dir(tmpl.Path), "nope.qcow2")
	dirTmpl := tmpl
	dirTmpl.Path = filepath.Dir(tmpl.Path)
	relTmpl := tmpl
	relTmpl.Path = "template.qcow2"
	probed := tmpl
	probed.Format = ""
	tests := []struct {
		name string
		req  CreateRequest
		want error
	}{
		{"path traversal name", CreateRequest{Name: "../x", Template: tmpl, Network: "testnet"}, ErrInvalid},
		{"slash in name", CreateRequest{Name: "a/b", Template: tmpl, Network: "testnet"}, ErrInvalid},
		{"leading hyphen", CreateRequest{Name: "-x", Template: tmpl, Network: "testnet"}, ErrInvalid},
		{"64 characters", CreateRequest{Name: strings.Repeat("a", 64), Template: tmpl, Network: "testnet"}, ErrInvalid},
		{"xml metacharacters", CreateRequest{Name: "a<b>&", Template: tmpl, Network: "testnet"}, ErrInvalid},
		{"missing template", CreateRequest{Name: "vm1", Template: missing, Network: "testnet"}, ErrInvalid},
		{"template is a directory", CreateRequest{Name: "vm1", Template: dirTmpl, Network: "testnet"}, ErrInvalid},
		{"relative template path", CreateRequest{Name: "vm1", Template: relTmpl, Network: "testnet"}, ErrInvalid},
		{"template format left to probing", CreateRequest{Name: "vm1", Template: probed, Network: "testnet"}, ErrInvalid},
		{"unknown network", CreateRequest{Name: "vm1", Template: tmpl, Network: "nonet"}, ErrInvalid},
		{"malformed cloud-config", CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet", UserData: []byte("#cloud-config\nruncmd: [\n")}, ErrInvalid},
		{"huge user-data", CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet", UserData: append([]byte("#!/bin/sh\n"), make([]byte, 1<<20)...)}, ErrInvalid},
		{"ssh key with newline", CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet", SSHKeys: []string{"ssh-ed25519 AAAA\nruncmd: [reboot]"}}, ErrInvalid},
		{"negative disk", CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet", DiskBytes: -1}, ErrInvalid},
		{"duplicate name", CreateRequest{Name: "taken", Template: tmpl, Network: "testnet"}, ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := listDir(t, e.Dir)
			_, err := e.Create(context.Background(), tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Create error = %v, want %v", err, tt.want)
			}
			if after := listDir(t, e.Dir); after != before {
				t.Errorf("vm directory changed: %q -> %q", before, after)
			}
			doms, _ := d.List(context.Background())
			if len(doms) != 1 || doms[0].Name != "taken" {
				t.Errorf("domains = %+v, want only the existing one", doms)
			}
		})
	}
}

func TestCreateUndoesEachStepOnFailure(t *testing.T) {
	boom := errors.New("injected")
	tests := []struct {
		name  string
		setup func(e *Engine, d *fake.Driver)
	}{
		{"disk fails", func(e *Engine, _ *fake.Driver) { e.Disks = &fileDisks{failCreate: boom} }},
		{"define fails", func(_ *Engine, d *fake.Driver) { d.FailNext("Define", boom) }},
		{"start fails", func(_ *Engine, d *fake.Driver) { d.FailNext("Start", boom) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, d, tmpl := newTestEngine(t)
			tt.setup(e, d)
			_, err := e.Create(context.Background(), CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet"})
			if !errors.Is(err, boom) {
				t.Fatalf("Create error = %v, want the injected error", err)
			}
			if _, err := d.Get(context.Background(), "vm1"); !errors.Is(err, hypervisor.ErrNotFound) {
				t.Errorf("domain left behind (Get: %v)", err)
			}
			if got := listDir(t, e.Dir); got != "" {
				t.Errorf("files left behind: %s", got)
			}
			// The name is reusable at once.
			e.Disks = &fileDisks{}
			if _, err := e.Create(context.Background(), CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet"}); err != nil {
				t.Fatalf("create after failure: %v", err)
			}
		})
	}
}

func TestDeleteIsIdempotent(t *testing.T) {
	e, d, tmpl := newTestEngine(t)
	ctx := context.Background()
	inst, err := e.Create(ctx, CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet"})
	if err != nil {
		t.Fatal(err)
	}
	// A half-done delete: the domain is gone, the files are not.
	if err := d.Destroy(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Undefine(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(ctx, "vm1", DeleteOptions{}); err != nil {
		t.Fatalf("finishing a half-done delete: %v", err)
	}
	if _, err := os.Stat(inst.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory still there: %v", err)
	}
	if err := e.Delete(ctx, "vm1", DeleteOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting nothing = %v, want ErrNotFound", err)
	}
	if err := e.Delete(ctx, "../etc", DeleteOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("deleting ../etc = %v, want ErrInvalid", err)
	}

	kept, err := e.Create(ctx, CreateRequest{Name: "vm2", Template: tmpl, Network: "testnet"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(ctx, "vm2", DeleteOptions{KeepDisk: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(kept.DiskPath); err != nil {
		t.Errorf("--keep-disk removed the disk: %v", err)
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

// scriptedGuest answers the agent's cat of cloud-init's files from a script
// of (status.json, result.json) pairs, one per poll.
type scriptedGuest struct {
	polls  [][2]string
	n      int
	output string
}

func (g *scriptedGuest) exec(_ context.Context, _ string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error) {
	i := g.n / 2
	if i >= len(g.polls) {
		i = len(g.polls) - 1
	}
	switch {
	case req.Path == "/bin/cat" && req.Args[0] == statusJSONPath:
		g.n++
		return fileResult(g.polls[i][0]), nil
	case req.Path == "/bin/cat" && req.Args[0] == resultJSONPath:
		g.n++
		return fileResult(g.polls[i][1]), nil
	case req.Path == "/usr/bin/tail":
		return hypervisor.ExecResult{Stdout: []byte(g.output)}, nil
	}
	return hypervisor.ExecResult{}, fmt.Errorf("unexpected exec %v", req)
}

func fileResult(content string) hypervisor.ExecResult {
	if content == "" {
		return hypervisor.ExecResult{ExitCode: 1, Stderr: []byte("No such file or directory")}
	}
	return hypervisor.ExecResult{Stdout: []byte(content)}
}

const (
	statusInit  = `{"v1": {"stage": "init", "init-local": {"start": 1.0, "finished": 2.0, "errors": []}, "init": {"start": 3.0, "finished": null, "errors": []}}}`
	statusFinal = `{"v1": {"stage": null, "init-local": {"start": 1.0}, "init": {"start": 3.0}, "modules-config": {"start": 5.0}, "modules-final": {"start": 6.0, "finished": 7.0}}}`
)

func TestWaitReady(t *testing.T) {
	readyPollInterval = 5 * time.Millisecond
	tests := []struct {
		name        string
		pingFails   int
		polls       [][2]string
		wantErr     error
		wantStages  []Stage
		wantModules []string
	}{
		{
			name:       "agent late, then cloud-init runs to done",
			pingFails:  3,
			polls:      [][2]string{{"", ""}, {statusInit, ""}, {statusFinal, `{"v1": {"datasource": "NoCloud", "errors": []}}`}},
			wantStages: []Stage{StageBooting, StageAgent, StageInitLocal, StageInit, StageConfig, StageFinal, StageReady},
		},
		{
			name:        "cloud-init reports a failing module",
			polls:       [][2]string{{statusFinal, `{"v1": {"errors": ["('scripts_user', RuntimeError('Runparts: 1 failures in 1 attempted commands'))"]}}`}},
			wantErr:     ErrCloudInitFailed,
			wantStages:  []Stage{StageBooting, StageAgent, StageInitLocal, StageInit, StageConfig, StageFinal, StageFailed},
			wantModules: []string{"scripts_user"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, d, tmpl := newTestEngine(t)
			if _, err := e.Create(context.Background(), CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet"}); err != nil {
				t.Fatal(err)
			}
			pings := 0
			d.SetAgentPing(func(context.Context, string) error {
				pings++
				if pings <= tt.pingFails {
					return hypervisor.ErrAgentUnavailable
				}
				return nil
			})
			g := &scriptedGuest{polls: tt.polls, output: "tail of output log\n"}
			d.SetAgentExec(g.exec)
			var stages []Stage
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := WaitReady(ctx, d, "vm1", func(p Progress) { stages = append(stages, p.Stage) })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("WaitReady error = %v, want %v", err, tt.wantErr)
			}
			if fmt.Sprint(stages) != fmt.Sprint(tt.wantStages) {
				t.Errorf("stages = %v, want %v", stages, tt.wantStages)
			}
			if fmt.Sprint(res.FailedModules) != fmt.Sprint(tt.wantModules) {
				t.Errorf("failed modules = %v, want %v", res.FailedModules, tt.wantModules)
			}
			if tt.wantErr != nil && res.OutputTail != "tail of output log\n" {
				t.Errorf("output tail = %q", res.OutputTail)
			}
		})
	}
}

func TestWaitReadyStopsAtDeadline(t *testing.T) {
	readyPollInterval = 5 * time.Millisecond
	e, d, tmpl := newTestEngine(t)
	if _, err := e.Create(context.Background(), CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet"}); err != nil {
		t.Fatal(err)
	}
	d.SetAgentPing(func(context.Context, string) error { return hypervisor.ErrAgentUnavailable })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := WaitReady(ctx, d, "vm1", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady = %v, want deadline exceeded", err)
	}
}

func TestWaitReadyFailsFastWhenTheGuestStops(t *testing.T) {
	readyPollInterval = 5 * time.Millisecond
	e, d, tmpl := newTestEngine(t)
	if _, err := e.Create(context.Background(), CreateRequest{Name: "vm1", Template: tmpl, Network: "testnet"}); err != nil {
		t.Fatal(err)
	}
	d.SetAgentPing(func(context.Context, string) error { return hypervisor.ErrAgentUnavailable })
	if err := d.Destroy(context.Background(), "vm1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := WaitReady(ctx, d, "vm1", nil); !errors.Is(err, ErrStoppedBeforeReady) {
		t.Fatalf("WaitReady = %v, want ErrStoppedBeforeReady", err)
	}
}
