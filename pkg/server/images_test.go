package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/imageservice"
	"github.com/galevm/gale/pkg/imagestore"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/server/httpapi"
)

// TestImageRoutes drives the image API against a real image service on
// temporary directories: status codes and envelopes of the refusals, and
// that a refused request leaves the image directory as it was.
func TestImageRoutes(t *testing.T) {
	dir := t.TempDir()
	catalog, store := filepath.Join(dir, "catalog"), filepath.Join(dir, "images")
	for _, d := range []string{catalog, store} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	entry := "name: cloud\nos: x\ndefaults: {cpus: 1, memory_mib: 512, disk_gib: 2}\nboot: bios\nuser: u\n" +
		"source:\n  url: http://127.0.0.1:1/cloud.qcow2\n  format: qcow2\n  checksum: {digest: \"sha256:" + strings.Repeat("a", 64) + "\"}\n"
	if err := os.WriteFile(filepath.Join(catalog, "cloud.yaml"), []byte(entry), 0o644); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	svc, err := imageservice.New(imageservice.Config{
		Catalog: image.Catalog{Dirs: []string{catalog}}, Store: imagestore.Store{Dir: store},
		Ops: operation.New(0, nil), Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(New(Config{Services: []httpapi.Service{svc}, Log: log}))
	t.Cleanup(srv.Close)

	call := func(method, path, ctype string, body []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := call("GET", "/v1/images", "", nil)
	var list []api.Image
	if status != 200 || json.Unmarshal(body, &list) != nil || len(list) != 1 || list[0].Name != "cloud" || list[0].Kind != api.ImageKindPull || list[0].Present {
		t.Fatalf("list: %d %s", status, body)
	}
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code, inError                   string
	}{
		{"show unknown", "GET", "/v1/images/nope", "", "", 404, api.CodeNotFound, "neither in the catalog"},
		{"show bad name", "GET", "/v1/images/..", "", "", 404, api.CodeNotFound, ""},
		{"build a pull entry", "POST", "/v1/images/cloud/build", "", "", 400, api.CodeInvalid, "gale image pull cloud"},
		{"pull unknown", "POST", "/v1/images/pull", "application/json", `{"name":"nope"}`, 404, api.CodeNotFound, "not in the catalog"},
		{"pull URL unverified", "POST", "/v1/images/pull", "application/json", `{"url":"http://127.0.0.1:1/x.qcow2","name":"x"}`, 400, api.CodeInvalid, "verified"},
		{"pull file URL", "POST", "/v1/images/pull", "application/json", `{"url":"file:///etc/passwd","name":"x"}`, 400, api.CodeInvalid, "http"},
		{"import traversal name", "POST", "/v1/images/import", "application/json", `{"name":"../x","path":"/etc/passwd","format":"raw"}`, 400, api.CodeInvalid, "name"},
		{"import catalog name", "POST", "/v1/images/import", "application/json", `{"name":"cloud","path":"/etc/passwd","format":"raw"}`, 409, api.CodeConflict, "catalog"},
		{"import by a caller that is not root", "POST", "/v1/images/import", "application/json", `{"name":"x","path":"/etc/passwd","format":"raw"}`, 400, api.CodeInvalid, "only root"},
		{"import relative path", "POST", "/v1/images/import", "application/json", `{"name":"x","path":"etc/passwd","format":"raw"}`, 400, api.CodeInvalid, "absolute"},
		{"upload without format", "POST", "/v1/images/upload?name=x", "application/octet-stream", "data", 400, api.CodeInvalid, "--format"},
		{"upload bad format", "POST", "/v1/images/upload?name=x&format=iso", "application/octet-stream", "data", 400, api.CodeInvalid, "format"},
		{"upload empty", "POST", "/v1/images/upload?name=x&format=raw", "application/octet-stream", "", 400, api.CodeInvalid, "empty"},
		{"upload bad flag", "POST", "/v1/images/upload?name=x&format=raw&prepare=maybe", "application/octet-stream", "x", 400, api.CodeInvalid, "prepare"},
		{"delete missing", "DELETE", "/v1/images/cloud", "", "", 404, api.CodeNotFound, "no local image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(tt.method, tt.path, tt.ctype, []byte(tt.body))
			var e api.Error
			if status != tt.status || json.Unmarshal(body, &e) != nil || e.Code != tt.code || !strings.Contains(e.Error, tt.inError) {
				t.Fatalf("%s %s = %d %s, want %d %s containing %q", tt.method, tt.path, status, body, tt.status, tt.code, tt.inError)
			}
		})
	}
	status, body = call("POST", "/v1/images/prune", "application/json", []byte(`{"dry_run":true}`))
	if status != 200 || !strings.Contains(string(body), `"removed":[]`) {
		t.Fatalf("prune: %d %s", status, body)
	}
	var left []string
	_ = filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("refused requests left files: %v", left)
	}
}
