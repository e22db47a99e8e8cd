// Package server is galed's HTTP API: it serves each service's routes (a
// service registers them itself, see pkg/server/httpapi), galed's own
// (version, doctor) and the operation routes, including progress as
// server-sent events. It turns a handler's error into the api.Error
// envelope with the code and status of the error's kind (one table, see
// statusOf).
package server

import (
	"context"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/server/httpapi"
)

// MaxBodyBytes bounds request bodies: user-data (at most
// cloudinit.MaxUserDataBytes, base64 in JSON) plus room for the rest.
// Image uploads are bounded by the image service instead.
const MaxBodyBytes = 1 << 20

// DefaultHeartbeat is how often an idle event stream gets a comment line.
const DefaultHeartbeat = 15 * time.Second

// Operations looks up operations, in memory or persisted (pkg/vm's Service
// implements it over the shared registry and the store).
type Operations interface {
	Operation(ctx context.Context, id string) (api.Operation, error)
	// FollowOperation calls fn with every event of operation id, from the
	// first, until the Done event or ctx ends.
	FollowOperation(ctx context.Context, id string, fn func(api.Event) error) error
}

// Config wires a Server. Operations is required.
type Config struct {
	// Services register their own routes.
	Services   []httpapi.Service
	Operations Operations
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
	s.Handle("GET "+api.VersionPath, s.version)
	s.Handle("GET "+api.OperationPath, s.getOperation)
	s.Handle("GET "+api.OperationEventsPath, s.operationEvents)
	s.Handle("GET "+api.DoctorPath, s.doctor)
	for _, svc := range cfg.Services {
		svc.Routes(s)
	}
	s.Handle("/", func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.Newf(errdefs.NotFound, "no route for %s %s", r.Method, r.URL.Path)
	})
	return s
}

// Handle implements httpapi.Router: h's error is answered with the error
// envelope.
func (s *Server) Handle(pattern string, h httpapi.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// ServeHTTP implements http.Handler; bodies are limited to MaxBodyBytes,
// except image uploads, which the image service bounds itself.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != api.ImageUploadPath {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) error {
	return httpapi.JSON(w, http.StatusOK, api.VersionInfo{Version: s.cfg.Version, APIVersion: api.Version, Accel: s.cfg.Accel, SSHIdentity: s.cfg.SSHIdentity})
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request) error {
	op, err := s.cfg.Operations.Operation(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpapi.JSON(w, http.StatusOK, op)
}

func (s *Server) doctor(w http.ResponseWriter, r *http.Request) error {
	checks := []api.Check{}
	if s.cfg.Doctor != nil {
		checks = s.cfg.Doctor(r.Context())
	}
	return httpapi.JSON(w, http.StatusOK, checks)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := statusOf(err)
	log := s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "status": status})
	if status >= 500 {
		log.WithError(err).Warn("request failed")
	} else {
		log.WithError(err).Debug("request refused")
	}
	_ = httpapi.JSON(w, status, api.Error{Error: err.Error(), Code: code})
}
