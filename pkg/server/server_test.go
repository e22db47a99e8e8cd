package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/disk"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/hypervisor/fake"
	"github.com/galevm/gale/pkg/network"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/server/httpapi"
	"github.com/galevm/gale/pkg/store"
	"github.com/galevm/gale/pkg/vm"
)

type fileDisks struct{}

func (fileDisks) CreateOverlay(_ context.Context, path, backing, _ string, _ int64) error {
	return os.WriteFile(path, []byte(backing), 0o600)
}
func (fileDisks) Info(context.Context, string, string) (disk.Info, error) {
	return disk.Info{}, nil
}

type images struct{ tmpl vm.Template }

func (i images) Resolve(name string) (vm.ResolvedImage, error) {
	if name != "debian-12" {
		return vm.ResolvedImage{}, vm.ErrInvalid
	}
	return vm.ResolvedImage{Template: i.tmpl, CPUs: 1, MemoryMiB: 256, DiskBytes: 1 << 30}, nil
}

type host struct{}

func (host) MemAvailableBytes() (int64, error) { return 2 << 30, nil }
func (host) FreeDiskBytes() (int64, error)     { return 50 << 30, nil }

func newTestServer(t *testing.T) (*httptest.Server, *fake.Driver) {
	t.Helper()
	ctx := context.Background()
	d := fake.New()
	_, cidr, _ := net.ParseCIDR("192.168.60.1/24")
	if err := d.CreateNetwork(ctx, hypervisor.NetworkSpec{Name: "gale-default", Mode: hypervisor.NetworkIsolated, CIDR: cidr}); err != nil {
		t.Fatal(err)
	}
	d.SetAgentExec(func(_ context.Context, _ string, req hypervisor.ExecRequest) (hypervisor.ExecResult, error) {
		last := ""
		if len(req.Args) > 0 {
			last = req.Args[len(req.Args)-1]
		}
		switch last {
		case "/run/cloud-init/status.json":
			return hypervisor.ExecResult{Stdout: []byte(`{"v1":{}}`)}, nil
		case "/run/cloud-init/result.json":
			return hypervisor.ExecResult{Stdout: []byte(`{"v1":{"errors":[]}}`)}, nil
		}
		return hypervisor.ExecResult{Stdout: []byte(strings.Join(append([]string{req.Path}, req.Args...), " "))}, nil
	})
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "t.qcow2")
	_ = os.WriteFile(tmpl, []byte("t"), 0o644)
	st, err := store.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := logrus.New()
	log.SetOutput(bytes.NewBuffer(nil))
	img := images{vm.Template{Name: "debian-12", Path: tmpl, Format: disk.FormatQCOW2}}
	svc, err := vm.NewService(vm.ServiceConfig{
		Engine: &vm.Engine{Driver: d, Disks: fileDisks{}, Dir: filepath.Join(dir, "vms"), Log: log},
		Store:  st, Ops: operation.New(0, nil), Images: img, Host: host{}, DefaultNetwork: "gale-default",
		AddressTimeout: 50 * time.Millisecond, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	nets, err := network.New(network.Config{Driver: d, Store: st, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Services: []httpapi.Service{svc, nets}, Operations: svc, Version: "test", Accel: "tcg",
		Heartbeat: 20 * time.Millisecond, Log: log}))
	t.Cleanup(srv.Close)
	return srv, d
}

func do(t *testing.T, srv *httptest.Server, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

// follow reads the SSE stream of op until the Done event.
func follow(t *testing.T, srv *httptest.Server, id string) []api.Event {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/v1/operations/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var evs []api.Event
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var ev api.Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
		if ev.Done {
			return evs
		}
	}
	t.Fatalf("stream ended without Done: %+v (%v)", evs, sc.Err())
	return nil
}

func sshKey(t *testing.T) string {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	// ssh-ed25519 wire format: string "ssh-ed25519", string key.
	var b bytes.Buffer
	for _, f := range [][]byte{[]byte("ssh-ed25519"), pub} {
		b.Write([]byte{0, 0, 0, byte(len(f))})
		b.Write(f)
	}
	return "ssh-ed25519 " + base64Std(b.Bytes()) + " test"
}

func TestVMLifecycleOverHTTP(t *testing.T) {
	srv, _ := newTestServer(t)
	resp, body := do(t, srv, "POST", "/v1/vms", api.CreateVMRequest{Name: "web", Image: "debian-12", SSHKeys: []string{sshKey(t)}})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var op api.Operation
	_ = json.Unmarshal(body, &op)
	evs := follow(t, srv, op.ID)
	if last := evs[len(evs)-1]; last.Status != api.OpSucceeded || evs[0].Stage != "disk" {
		t.Fatalf("events = %+v", evs)
	}
	// A late subscriber gets the whole history again.
	if again := follow(t, srv, op.ID); len(again) != len(evs) {
		t.Fatalf("replay has %d events, want %d", len(again), len(evs))
	}
	steps := []struct {
		name, method, path string
		body               any
		status             int
		contains           string
	}{
		{"version", "GET", "/v1/version", nil, 200, `"api_version":"v1"`},
		{"get", "GET", "/v1/vms/web", nil, 200, `"state":"running"`},
		{"list", "GET", "/v1/vms", nil, 200, `"name":"web"`},
		{"operation", "GET", "/v1/operations/" + op.ID, nil, 200, `"status":"succeeded"`},
		{"exec", "POST", "/v1/vms/web/exec", api.ExecRequest{Command: []string{"echo", "hi"}}, 200, `"exit_code":0`},
		{"logs", "GET", "/v1/vms/web/logs", nil, 200, "/bin/cat /var/log/cloud-init-output.log"},
		{"networks", "GET", "/v1/networks", nil, 200, `"gale-default"`},
		{"doctor", "GET", "/v1/doctor", nil, 200, `[]`},
		{"stop", "POST", "/v1/vms/web/stop", api.StopVMRequest{Force: true}, 202, `"kind":"stop"`},
		{"start no body", "POST", "/v1/vms/web/start", nil, 202, `"kind":"start"`},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, body := do(t, srv, st.method, st.path, st.body)
			if resp.StatusCode != st.status || !strings.Contains(string(body), st.contains) {
				t.Fatalf("%d %s; want %d containing %s", resp.StatusCode, body, st.status, st.contains)
			}
			if resp.StatusCode == 202 {
				var op api.Operation
				_ = json.Unmarshal(body, &op)
				follow(t, srv, op.ID)
			}
		})
	}
	resp, body = do(t, srv, "DELETE", "/v1/vms/web", nil)
	if resp.StatusCode != 202 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	_ = json.Unmarshal(body, &op)
	follow(t, srv, op.ID)
	if resp, _ := do(t, srv, "GET", "/v1/vms/web", nil); resp.StatusCode != 404 {
		t.Fatalf("get after delete: %d", resp.StatusCode)
	}
}

func TestErrorMapping(t *testing.T) {
	srv, d := newTestServer(t)
	big := api.CreateVMRequest{Name: "big", Image: "debian-12", MemoryMiB: 1 << 20}
	tests := []struct {
		name, method, path string
		body               any
		setup              func()
		status             int
		code               string
	}{
		{"bad json", "POST", "/v1/vms", []byte("{"), nil, 400, api.CodeInvalid},
		{"unknown field", "POST", "/v1/vms", []byte(`{"name":"a","bogus":1}`), nil, 400, api.CodeInvalid},
		{"bad name", "POST", "/v1/vms", api.CreateVMRequest{Name: "A_B", Image: "debian-12"}, nil, 400, api.CodeInvalid},
		{"too large body", "POST", "/v1/vms", append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), MaxBodyBytes)...), nil, 400, api.CodeInvalid},
		{"too large user-data", "POST", "/v1/vms", api.CreateVMRequest{Name: "a", Image: "debian-12", UserData: bytes.Repeat([]byte("#"), 64*1024+1)}, nil, 400, api.CodeInvalid},
		{"insufficient", "POST", "/v1/vms", big, nil, 422, api.CodeInsufficient},
		{"not found", "GET", "/v1/vms/nope", nil, nil, 404, api.CodeNotFound},
		{"unknown op", "GET", "/v1/operations/op-x/events", nil, nil, 404, api.CodeNotFound},
		{"unknown action", "POST", "/v1/vms/nope/jump", nil, nil, 404, api.CodeNotFound},
		{"bad network", "POST", "/v1/networks", api.CreateNetworkRequest{Name: "n", Mode: "bridge", CIDR: "10.0.0.1/24"}, nil, 400, api.CodeInvalid},
		{"unavailable", "GET", "/v1/vms", nil, func() { d.SetDown(true) }, 503, api.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
				defer d.SetDown(false)
			}
			resp, body := do(t, srv, tt.method, tt.path, tt.body)
			var e api.Error
			_ = json.Unmarshal(body, &e)
			if resp.StatusCode != tt.status || e.Code != tt.code || e.Error == "" {
				t.Fatalf("%d %s; want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
		})
	}
}

func TestConflicts(t *testing.T) {
	srv, d := newTestServer(t)
	d.SetAgentPing(func(context.Context, string) error { return hypervisor.ErrAgentUnavailable }) // create stays in progress
	resp, body := do(t, srv, "POST", "/v1/vms", api.CreateVMRequest{Name: "web", Image: "debian-12"})
	if resp.StatusCode != 202 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	tests := []struct {
		name, method, path string
		body               any
	}{
		{"create same name", "POST", "/v1/vms", api.CreateVMRequest{Name: "web", Image: "debian-12"}},
		{"network in use", "DELETE", "/v1/networks/gale-default", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			resp, body := do(t, srv, tt.method, tt.path, tt.body)
			if resp.StatusCode != 409 || !strings.Contains(string(body), api.CodeConflict) {
				t.Fatalf("%d %s, want 409", resp.StatusCode, body)
			}
			if time.Since(start) > time.Second {
				t.Fatal("conflict was not answered at once")
			}
		})
	}
}

// TestDeleteMidCreate: a delete while the VM's create runs is accepted; the
// create ends cancelled, then the delete succeeds.
func TestDeleteMidCreate(t *testing.T) {
	srv, d := newTestServer(t)
	d.SetAgentPing(func(context.Context, string) error { return hypervisor.ErrAgentUnavailable }) // create stays in progress
	resp, body := do(t, srv, "POST", "/v1/vms", api.CreateVMRequest{Name: "web", Image: "debian-12"})
	var create api.Operation
	if resp.StatusCode != 202 || json.Unmarshal(body, &create) != nil {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, srv, "DELETE", "/v1/vms/web", nil)
	var del api.Operation
	if resp.StatusCode != 202 || json.Unmarshal(body, &del) != nil || del.Kind != "delete" {
		t.Fatalf("delete: %d %s, want 202", resp.StatusCode, body)
	}
	for _, tt := range []struct {
		op     api.Operation
		status string
	}{{create, api.OpCancelled}, {del, api.OpSucceeded}} {
		t.Run(tt.op.Kind, func(t *testing.T) {
			evs := follow(t, srv, tt.op.ID)
			if last := evs[len(evs)-1]; !last.Done || last.Status != tt.status {
				t.Fatalf("last event %+v, want status %s", last, tt.status)
			}
		})
	}
	if resp, body := do(t, srv, "GET", "/v1/vms/web", nil); resp.StatusCode != 404 {
		t.Fatalf("get after delete: %d %s", resp.StatusCode, body)
	}
}

func TestHeartbeat(t *testing.T) {
	srv, d := newTestServer(t)
	d.SetAgentPing(func(context.Context, string) error { return hypervisor.ErrAgentUnavailable })
	_, body := do(t, srv, "POST", "/v1/vms", api.CreateVMRequest{Name: "web", Image: "debian-12"})
	var op api.Operation
	_ = json.Unmarshal(body, &op)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/operations/"+op.ID+"/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			return
		}
	}
	t.Fatal("no heartbeat")
}
