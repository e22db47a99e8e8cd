package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/api"
)

// fakeGaled is a canned galed on a unix socket.
type fakeGaled struct {
	sock string

	mu       sync.Mutex
	created  []api.CreateVMRequest
	execs    []api.ExecRequest
	requests []string          // "METHOD /path?query"
	extra    map[string]api.VM // VMs created through the fake
	// identity is the SSHIdentity the fake's version endpoint reports.
	identity string
	// uploads are the bodies of image uploads, by image name; imports are
	// the path import requests.
	uploads map[string][]byte
	imports []api.ImportImageRequest
}

// setIdentity sets the SSHIdentity the version endpoint reports.
func (f *fakeGaled) setIdentity(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.identity = path
}

// vm returns the VM called name.
func (f *fakeGaled) vm(name string) (api.VM, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if vm, ok := f.extra[name]; ok {
		return vm, true
	}
	vm, ok := fakeVMs[name]
	return vm, ok
}

var created = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeVMs are the VMs the fake knows.
var fakeVMs = map[string]api.VM{
	"web": {Name: "web", ID: "id-web", State: api.StateRunning, Image: "debian-12", CPUs: 2, MemoryMiB: 2048,
		DiskBytes: 20 << 30, Network: "default", MAC: "52:54:00:aa:bb:cc", Addresses: []string{"192.168.122.10/24"},
		CloudInit: api.CloudInitDone, CreatedAt: created, ReadyAfter: api.Duration(42300 * time.Millisecond)},
	"db": {Name: "db", ID: "id-db", State: api.StateStopped, Image: "debian-12", CPUs: 1, MemoryMiB: 1024,
		DiskBytes: 10 << 30, Network: "default", CloudInit: api.CloudInitDone, CreatedAt: created},
	"broken": {Name: "broken", State: api.StateRunning, Image: "debian-12", CloudInit: api.CloudInitError},
}

func envelope(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.Error{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Operation event streams by operation ID.
var streams = map[string][]api.Event{
	"op-import": {
		{Operation: "op-import", Stage: "inspect", Message: "raw, virtual size 1.00 MiB"},
		{Operation: "op-import", Stage: "convert", Message: "100%"},
		{Operation: "op-import", Stage: "present", Done: true, Status: api.OpSucceeded},
	},
	"op-web": {
		{Operation: "op-web", Stage: "disk", Message: "overlay on debian-12", Elapsed: api.Duration(200 * time.Millisecond)},
		{Operation: "op-web", Stage: "boot", Message: "waiting for the guest agent", Elapsed: api.Duration(3 * time.Second)},
		{Operation: "op-web", Stage: "cloud-init", Elapsed: api.Duration(20 * time.Second)},
		{Operation: "op-web", Stage: "ready", Elapsed: api.Duration(42 * time.Second), Done: true, Status: api.OpSucceeded},
	},
	"op-bad": {
		{Operation: "op-bad", Stage: "disk", Elapsed: api.Duration(time.Second)},
		{Operation: "op-bad", Stage: "cloud-init", Elapsed: api.Duration(30 * time.Second)},
		{Operation: "op-bad", Stage: "cloud-init", Elapsed: api.Duration(31 * time.Second), Done: true, Status: api.OpFailed,
			Error:  "cloud-init failed in module scripts_user",
			Detail: "+ apt-get install -y nginxx\nE: Unable to locate package nginxx"},
	},
	"op-stop": {
		{Operation: "op-stop", Stage: "shutdown", Elapsed: api.Duration(time.Second)},
		{Operation: "op-stop", Stage: "stopped", Elapsed: api.Duration(2 * time.Second), Done: true, Status: api.OpSucceeded},
	},
}

// startFake serves the fake on a socket in a temporary directory.
func startFake(t *testing.T) *fakeGaled {
	t.Helper()
	f := &fakeGaled{sock: filepath.Join(t.TempDir(), "gale.sock"), extra: map[string]api.VM{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.VersionPath, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		identity := f.identity
		f.mu.Unlock()
		writeJSON(w, 200, api.VersionInfo{Version: "1.0.0", APIVersion: api.Version, Accel: "tcg", SSHIdentity: identity})
	})
	mux.HandleFunc("GET "+api.VMsPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []api.VM{fakeVMs["db"], fakeVMs["web"]})
	})
	mux.HandleFunc("GET "+api.VMPath, func(w http.ResponseWriter, r *http.Request) {
		vm, ok := f.vm(r.PathValue("name"))
		if !ok {
			envelope(w, 404, api.CodeNotFound, fmt.Sprintf("vm %q not found", r.PathValue("name")))
			return
		}
		writeJSON(w, 200, vm)
	})
	mux.HandleFunc("POST "+api.VMsPath, func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateVMRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			envelope(w, 400, api.CodeInvalid, err.Error())
			return
		}
		f.mu.Lock()
		f.created = append(f.created, req)
		f.mu.Unlock()
		switch req.Name {
		case "web", "db":
			envelope(w, 409, api.CodeConflict, fmt.Sprintf("vm %q already exists", req.Name))
		case "huge":
			envelope(w, 422, api.CodeInsufficient, "needs 64G of memory, 3G free")
		case "bad":
			writeJSON(w, 202, api.Operation{ID: "op-bad", Kind: "create", Target: "bad", Status: api.OpRunning})
		default:
			f.mu.Lock()
			f.extra[req.Name] = api.VM{Name: req.Name, State: api.StateRunning, CloudInit: api.CloudInitDone,
				Addresses: []string{"192.168.122.20"}, ReadyAfter: api.Duration(42 * time.Second)}
			f.mu.Unlock()
			writeJSON(w, 202, api.Operation{ID: "op-web", Kind: "create", Target: req.Name, Status: api.OpRunning})
		}
	})
	mux.HandleFunc("POST "+api.VMActionPath, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := fakeVMs[r.PathValue("name")]; !ok {
			envelope(w, 404, api.CodeNotFound, fmt.Sprintf("vm %q not found", r.PathValue("name")))
			return
		}
		writeJSON(w, 202, api.Operation{ID: "op-stop", Kind: r.PathValue("action"), Target: r.PathValue("name")})
	})
	mux.HandleFunc("DELETE "+api.VMPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 202, api.Operation{ID: "op-stop", Kind: "delete", Target: r.PathValue("name")})
	})
	mux.HandleFunc("POST "+api.VMExecPath, func(w http.ResponseWriter, r *http.Request) {
		var req api.ExecRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.execs = append(f.execs, req)
		f.mu.Unlock()
		writeJSON(w, 200, api.ExecResponse{ExitCode: 3, Stdout: []byte("hello\n"), Stderr: []byte("warning\n")})
	})
	mux.HandleFunc("GET "+api.VMLogsPath, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "[    0.000000] Linux version 6.1\ncloud-init finished\n")
	})
	mux.HandleFunc("GET "+api.OperationEventsPath, func(w http.ResponseWriter, r *http.Request) {
		evs, ok := streams[r.PathValue("id")]
		if !ok {
			envelope(w, 404, api.CodeNotFound, "operation not found")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, ": ping\n\ndata: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("GET "+api.NetworksPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []api.Network{{Name: "default", Mode: "nat", CIDR: "192.168.122.1/24", Bridge: "virbr0", Active: true}})
	})
	mux.HandleFunc("POST "+api.NetworksPath, func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateNetworkRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		writeJSON(w, 201, api.Network{Name: req.Name, Mode: req.Mode, CIDR: req.CIDR, Bridge: "virbr1", Active: true})
	})
	mux.HandleFunc("DELETE "+api.NetworkPath, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(204)
	})
	mux.HandleFunc("GET "+api.ImagesPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []api.Image{{Name: "debian-12", OS: "debian", Present: true, SizeBytes: 2 << 30, Origin: "built", Buildable: true}})
	})
	mux.HandleFunc("POST "+api.ImageUploadPath, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		if f.uploads == nil {
			f.uploads = map[string][]byte{}
		}
		f.uploads[r.URL.Query().Get("name")+"/"+r.URL.Query().Get("format")] = body
		f.mu.Unlock()
		writeJSON(w, 202, api.Operation{ID: "op-import", Kind: "import", Target: "image/" + r.URL.Query().Get("name"), Status: api.OpRunning})
	})
	mux.HandleFunc("POST "+api.ImageImportPath, func(w http.ResponseWriter, r *http.Request) {
		var req api.ImportImageRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.imports = append(f.imports, req)
		f.mu.Unlock()
		writeJSON(w, 202, api.Operation{ID: "op-import", Kind: "import", Target: "image/" + req.Name, Status: api.OpRunning})
	})
	mux.HandleFunc("GET "+api.ImagePath, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.ImageDetail{Image: api.Image{Name: r.PathValue("name"), Kind: api.ImageKindImport, Present: true, SizeBytes: 1 << 20},
			Readiness: "agent", UsedBy: []string{},
			Record: map[string]any{"preflight": map[string]any{"findings": []any{
				map[string]any{"check": "device-names", "severity": "warn", "detail": "fstab names /dev/sda1", "fix": "run import with --prepare"}}}}})
	})
	mux.HandleFunc("GET "+api.DoctorPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []api.Check{
			{Name: "libvirtd", OK: true, Detail: "libvirt 9.0.0"},
			{Name: "kvm", OK: false, Detail: "/dev/kvm missing", Fix: "enable VT-x in the firmware"},
		})
	})
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
	l, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := httptest.NewUnstartedServer(logged)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

// result is what one gale run produced.
type result struct {
	stdout, stderr string
	code           int
	execed         []string // argv passed to execve
}

// gale runs the CLI with args (a command line without "gale") against the
// socket sock, with stdin.
func gale(t *testing.T, sock, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	var res result
	d := deps{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		execve: func(path string, argv []string, env []string) error {
			res.execed = append([]string{path}, argv...)
			return nil
		},
		lookPath:     func(file string) (string, error) { return "/usr/bin/" + file, nil },
		pollInterval: 10 * time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res.code = run(ctx, newApp(d), append([]string{"gale", "--socket", sock}, args...))
	res.stdout, res.stderr = out.String(), errOut.String()
	return res
}
