// Package server is galed's HTTP API: routes from pkg/api's path patterns,
// thin handlers that decode JSON, call the VM service and encode JSON, and
// the mapping of sentinel errors to status codes and the api.Error envelope.
// Operation progress streams as server-sent events.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/cloudinit"
	"github.com/galevm/gale/pkg/imageops"
	"github.com/galevm/gale/pkg/vm"
)

// MaxBodyBytes bounds request bodies: user-data (at most
// cloudinit.MaxUserDataBytes, base64 in JSON) plus room for the rest.
const MaxBodyBytes = 1 << 20

var _ = cloudinit.MaxUserDataBytes

// DefaultHeartbeat is how often an idle event stream gets a comment line.
const DefaultHeartbeat = 15 * time.Second

// Images is the image service (pkg/imageops implements it). A server
// without one lists no images and refuses image work.
type Images interface {
	List(ctx context.Context) ([]api.Image, error)
	Show(ctx context.Context, name string) (api.ImageDetail, error)
	Pull(ctx context.Context, req api.PullImageRequest) (api.Operation, error)
	Build(ctx context.Context, name string) (api.Operation, error)
	Import(ctx context.Context, req api.ImportImageRequest, who imageops.Caller) (api.Operation, error)
	Upload(ctx context.Context, req api.ImportImageRequest, body io.Reader, maxBytes int64) (api.Operation, error)
	Delete(ctx context.Context, name string) error
	Prune(ctx context.Context, req api.PruneRequest) (api.PruneResult, error)
}

// Config wires a Server. VMs is required.
type Config struct {
	VMs    *vm.Service
	Images Images
	// MaxUploadBytes bounds an image upload (0: inspect.DefaultMaxVirtualSize).
	MaxUploadBytes int64
	// Version is galed's version; Accel the driver's accelerator.
	Version string
	Accel   string
	// SSHIdentity is the path of galed's private SSH key (api.VersionInfo).
	SSHIdentity string
	// Doctor, when set, answers GET /v1/doctor.
	Doctor    func(ctx context.Context) []api.Check
	Heartbeat time.Duration
	Log       logrus.FieldLogger
}

// Server is an http.Handler for the API.
type Server struct {
	cfg Config
	mux *http.ServeMux
	log logrus.FieldLogger
}

// New returns the API handler.
func New(cfg Config) *Server {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Log}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler; bodies are limited to MaxBodyBytes,
// except image uploads, which Upload bounds itself.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != api.ImageUploadPath {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET "+api.VersionPath, s.version)
	m.HandleFunc("GET "+api.VMsPath, s.listVMs)
	m.HandleFunc("POST "+api.VMsPath, s.createVM)
	m.HandleFunc("GET "+api.VMPath, s.getVM)
	m.HandleFunc("DELETE "+api.VMPath, s.deleteVM)
	m.HandleFunc("POST "+api.VMActionPath, s.vmAction)
	m.HandleFunc("POST "+api.VMExecPath, s.exec)
	m.HandleFunc("GET "+api.VMLogsPath, s.logs)
	m.HandleFunc("GET "+api.OperationPath, s.getOperation)
	m.HandleFunc("GET "+api.OperationEventsPath, s.operationEvents)
	m.HandleFunc("GET "+api.NetworksPath, s.listNetworks)
	m.HandleFunc("POST "+api.NetworksPath, s.createNetwork)
	m.HandleFunc("DELETE "+api.NetworkPath, s.deleteNetwork)
	m.HandleFunc("GET "+api.ImagesPath, s.listImages)
	m.HandleFunc("GET "+api.ImagePath, s.showImage)
	m.HandleFunc("DELETE "+api.ImagePath, s.deleteImage)
	m.HandleFunc("POST "+api.ImagePullPath, s.pullImage)
	m.HandleFunc("POST "+api.ImageBuildPath, s.buildImage)
	m.HandleFunc("POST "+api.ImageImportPath, s.importImage)
	m.HandleFunc("POST "+api.ImageUploadPath, s.uploadImage)
	m.HandleFunc("POST "+api.ImagePrunePath, s.pruneImages)
	m.HandleFunc("GET "+api.DoctorPath, s.doctor)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("%w: no route for %s %s", vm.ErrNotFound, r.Method, r.URL.Path))
	})
}

// decode reads a JSON body into v. An empty body leaves v unchanged when
// optional is true.
func decode(r *http.Request, v any, optional bool) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if optional && errors.Is(err, io.EOF) {
			return nil
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("%w: larger than %d bytes", errInvalidBody, tooBig.Limit)
		}
		return fmt.Errorf("%w: %w", errInvalidBody, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := statusOf(err)
	log := s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "status": status})
	if status >= 500 {
		log.WithError(err).Warn("request failed")
	} else {
		log.WithError(err).Debug("request refused")
	}
	writeJSON(w, status, api.Error{Error: err.Error(), Code: code})
}
