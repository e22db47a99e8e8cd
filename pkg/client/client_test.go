package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galevm/gale/pkg/api"
)

// serve starts an HTTP server with mux on a unix socket in a temporary
// directory and returns a client for it.
func serve(t *testing.T, mux http.Handler) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "gale.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c := New(sock)
	t.Cleanup(c.Close)
	return c
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRequests(t *testing.T) {
	type seen struct {
		method, path, query, body string
	}
	var got seen
	mux := http.NewServeMux()
	record := func(status int, answer any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got = seen{r.Method, r.URL.Path, r.URL.RawQuery, strings.TrimSpace(string(b))}
			if answer == nil {
				w.WriteHeader(status)
				return
			}
			writeJSON(w, status, answer)
		}
	}
	op := api.Operation{ID: "op1", Kind: "create", Target: "web", Status: api.OpRunning}
	mux.HandleFunc("GET "+api.VersionPath, record(200, api.VersionInfo{Version: "1.2.3", APIVersion: "v1", Accel: "kvm"}))
	mux.HandleFunc("GET "+api.VMsPath, record(200, []api.VM{{Name: "web"}, {Name: "db"}}))
	mux.HandleFunc("POST "+api.VMsPath, record(202, op))
	mux.HandleFunc("GET "+api.VMPath, record(200, api.VM{Name: "web", State: api.StateRunning}))
	mux.HandleFunc("DELETE "+api.VMPath, record(202, op))
	mux.HandleFunc("POST "+api.VMActionPath, record(202, op))
	mux.HandleFunc("POST "+api.VMExecPath, record(200, api.ExecResponse{ExitCode: 3, Stdout: []byte("out"), Stderr: []byte("err")}))
	mux.HandleFunc("GET "+api.VMLogsPath, func(w http.ResponseWriter, r *http.Request) {
		got = seen{r.Method, r.URL.Path, r.URL.RawQuery, ""}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "line 1\nline 2\n")
	})
	mux.HandleFunc("GET "+api.OperationPath, record(200, op))
	mux.HandleFunc("GET "+api.NetworksPath, record(200, []api.Network{{Name: "default"}}))
	mux.HandleFunc("POST "+api.NetworksPath, record(201, api.Network{Name: "lab", Mode: "isolated", Bridge: "virbr9"}))
	mux.HandleFunc("DELETE "+api.NetworkPath, record(204, nil))
	mux.HandleFunc("GET "+api.ImagesPath, record(200, []api.Image{{Name: "debian-12"}}))
	mux.HandleFunc("GET "+api.DoctorPath, record(200, []api.Check{{Name: "kvm", OK: true}}))
	c := serve(t, mux)

	tests := []struct {
		name string
		call func() (any, error)
		want seen
		res  string // fmt %+v of the result, substring
	}{
		{"version", func() (any, error) { return c.Version(ctx(t)) }, seen{"GET", "/v1/version", "", ""}, "Version:1.2.3"},
		{"list vms", func() (any, error) { return c.ListVMs(ctx(t)) }, seen{"GET", "/v1/vms", "", ""}, "Name:db"},
		{"get vm", func() (any, error) { return c.GetVM(ctx(t), "web") }, seen{"GET", "/v1/vms/web", "", ""}, "State:running"},
		{"create vm", func() (any, error) {
			return c.CreateVM(ctx(t), api.CreateVMRequest{Name: "web", Image: "debian-12", CPUs: 2})
		}, seen{"POST", "/v1/vms", "", `{"name":"web","image":"debian-12","cpus":2}`}, "ID:op1"},
		{"delete vm", func() (any, error) { return c.DeleteVM(ctx(t), "web", DeleteOptions{}) }, seen{"DELETE", "/v1/vms/web", "", ""}, "ID:op1"},
		{"delete vm keep disk", func() (any, error) { return c.DeleteVM(ctx(t), "web", DeleteOptions{KeepDisk: true}) },
			seen{"DELETE", "/v1/vms/web", "keep_disk=true", ""}, "ID:op1"},
		{"start", func() (any, error) { return c.StartVM(ctx(t), "web") }, seen{"POST", "/v1/vms/web/start", "", ""}, "ID:op1"},
		{"stop", func() (any, error) {
			return c.StopVM(ctx(t), "web", api.StopVMRequest{Force: true, Timeout: api.Duration(30 * time.Second)})
		}, seen{"POST", "/v1/vms/web/stop", "", `{"force":true,"timeout":"30s"}`}, "ID:op1"},
		{"restart", func() (any, error) { return c.RestartVM(ctx(t), "web", api.StopVMRequest{}) },
			seen{"POST", "/v1/vms/web/restart", "", `{}`}, "ID:op1"},
		{"exec", func() (any, error) {
			return c.Exec(ctx(t), "web", api.ExecRequest{Command: []string{"ls", "-la"}})
		}, seen{"POST", "/v1/vms/web/exec", "", `{"command":["ls","-la"]}`}, "ExitCode:3"},
		{"logs", func() (any, error) { return c.Logs(ctx(t), "web") }, seen{"GET", "/v1/vms/web/logs", "", ""}, "line 2"},
		{"operation", func() (any, error) { return c.GetOperation(ctx(t), "op1") }, seen{"GET", "/v1/operations/op1", "", ""}, "Kind:create"},
		{"networks", func() (any, error) { return c.ListNetworks(ctx(t)) }, seen{"GET", "/v1/networks", "", ""}, "Name:default"},
		{"create network", func() (any, error) {
			return c.CreateNetwork(ctx(t), api.CreateNetworkRequest{Name: "lab", Mode: "isolated", CIDR: "10.9.0.1/24"})
		}, seen{"POST", "/v1/networks", "", `{"name":"lab","mode":"isolated","cidr":"10.9.0.1/24"}`}, "Bridge:virbr9"},
		{"delete network", func() (any, error) { return nil, c.DeleteNetwork(ctx(t), "lab") }, seen{"DELETE", "/v1/networks/lab", "", ""}, ""},
		{"images", func() (any, error) { return c.ListImages(ctx(t)) }, seen{"GET", "/v1/images", "", ""}, "debian-12"},
		{"doctor", func() (any, error) { return c.Doctor(ctx(t)) }, seen{"GET", "/v1/doctor", "", ""}, "OK:true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = seen{}
			res, err := tt.call()
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if got != tt.want {
				t.Errorf("request = %+v, want %+v", got, tt.want)
			}
			if s := fmt.Sprintf("%+v", deref(res)); !strings.Contains(s, tt.res) {
				t.Errorf("result %s does not contain %q", s, tt.res)
			}
		})
	}
}

// deref follows a pointer so results print as values.
func deref(v any) any {
	switch p := v.(type) {
	case *api.VersionInfo:
		return *p
	case *api.VM:
		return *p
	case *api.Operation:
		return *p
	case *api.ExecResponse:
		return *p
	case *api.Network:
		return *p
	}
	return v
}

func TestPathEscaping(t *testing.T) {
	var raw string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		raw = r.URL.EscapedPath()
		writeJSON(w, 404, api.Error{Error: "no", Code: api.CodeNotFound})
	})
	c := serve(t, mux)
	_, _ = c.GetVM(ctx(t), "a/b c")
	if raw != "/v1/vms/a%2Fb%20c" {
		t.Fatalf("path = %q", raw)
	}
}

func TestErrorEnvelope(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		sentinel error
		code     string
		msg      string
	}{
		{"not found", 404, `{"error":"vm \"web\" not found","code":"not_found"}`, ErrNotFound, api.CodeNotFound, `vm "web" not found`},
		{"conflict", 409, `{"error":"vm \"web\" exists","code":"conflict"}`, ErrConflict, api.CodeConflict, `vm "web" exists`},
		{"invalid", 400, `{"error":"bad name","code":"invalid"}`, ErrInvalid, api.CodeInvalid, "bad name"},
		{"insufficient", 422, `{"error":"needs 4G, 1G free","code":"insufficient"}`, ErrInsufficient, api.CodeInsufficient, "needs 4G, 1G free"},
		{"unavailable", 503, `{"error":"libvirtd is down","code":"unavailable"}`, ErrUnavailable, api.CodeUnavailable, "libvirtd is down"},
		{"internal", 500, `{"error":"boom","code":"internal"}`, ErrInternal, api.CodeInternal, "boom"},
		{"no envelope", 404, "404 page not found\n", ErrNotFound, api.CodeNotFound, "404 page not found"},
		{"empty body", 503, "", ErrUnavailable, api.CodeUnavailable, "galed answered 503 Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			})
			c := serve(t, mux)
			_, err := c.GetVM(ctx(t), "web")
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *Error", err)
			}
			if ce.Status != tt.status || ce.Code != tt.code || ce.Error() != tt.msg {
				t.Fatalf("error = %+v (%q), want status %d code %s message %q", ce, ce.Error(), tt.status, tt.code, tt.msg)
			}
			for _, other := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrInsufficient, ErrUnavailable, ErrInternal} {
				if other != tt.sentinel && errors.Is(err, other) {
					t.Errorf("error also matches %v", other)
				}
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing socket", func(t *testing.T) {
		sock := filepath.Join(dir, "none.sock")
		_, err := New(sock).ListVMs(ctx(t))
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("err = %v, want ErrUnreachable and ENOENT", err)
		}
		want := "cannot reach galed at " + sock + ": is galed running? start it with `galed` (see README)"
		if err.Error() != want {
			t.Fatalf("message = %q\nwant      %q", err, want)
		}
	})
	t.Run("refused", func(t *testing.T) {
		sock := filepath.Join(dir, "stale.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close() // leaves a socket file nobody listens on
		_, err = New(sock).Version(ctx(t))
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err = %v, want ErrUnreachable and ECONNREFUSED", err)
		}
	})
	t.Run("permission", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores socket permissions")
		}
		sub := filepath.Join(dir, "locked")
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(sub, "gale.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := os.Chmod(sock, 0); err != nil {
			t.Fatal(err)
		}
		_, err = New(sock).Version(ctx(t))
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "gale group") {
			t.Fatalf("err = %v, want ErrUnreachable with a hint about the gale group", err)
		}
	})
	t.Run("default socket", func(t *testing.T) {
		if got := New("").Socket(); got != api.DefaultSocket {
			t.Fatalf("Socket() = %q", got)
		}
	})
}
