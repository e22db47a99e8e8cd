package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
)

var errNoImages = errdefs.New(errdefs.NotFound, "image not found: this galed has no image service")

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Images == nil {
		writeJSON(w, http.StatusOK, []api.Image{})
		return
	}
	imgs, err := s.cfg.Images.List(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, imgs)
}

func (s *Server) showImage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Images == nil {
		s.writeError(w, r, errNoImages)
		return
	}
	d, err := s.cfg.Images.Show(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) deleteImage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Images == nil {
		s.writeError(w, r, errNoImages)
		return
	}
	if err := s.cfg.Images.Delete(r.Context(), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	var req api.PullImageRequest
	s.imageOp(w, r, &req, func() (api.Operation, error) { return s.cfg.Images.Pull(r.Context(), req) })
}

func (s *Server) buildImage(w http.ResponseWriter, r *http.Request) {
	s.imageOp(w, r, nil, func() (api.Operation, error) { return s.cfg.Images.Build(r.Context(), r.PathValue("name")) })
}

func (s *Server) importImage(w http.ResponseWriter, r *http.Request) {
	var req api.ImportImageRequest
	s.imageOp(w, r, &req, func() (api.Operation, error) {
		return s.cfg.Images.Import(r.Context(), req, callerOf(r.Context()))
	})
}

// uploadImage takes the import's options from the query and the image from
// the body.
func (s *Server) uploadImage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := api.ImportImageRequest{Name: q.Get("name"), Format: q.Get("format"), Boot: q.Get("boot")}
	var err error
	for key, dst := range map[string]*bool{"prepare": &req.Prepare, "no_preflight": &req.NoPreflight} {
		if v := q.Get(key); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				s.writeError(w, r, fmt.Errorf("%w: %s: %w", errInvalidBody, key, err))
				return
			}
		}
	}
	if v := q.Get("ready_port"); v != "" {
		if req.ReadyPort, err = strconv.Atoi(v); err != nil {
			s.writeError(w, r, fmt.Errorf("%w: ready_port: %w", errInvalidBody, err))
			return
		}
	}
	s.imageOp(w, r, nil, func() (api.Operation, error) {
		return s.cfg.Images.Upload(r.Context(), req, r.Body, s.cfg.MaxUploadBytes)
	})
}

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Images == nil {
		s.writeError(w, r, errNoImages)
		return
	}
	var req api.PruneRequest
	if err := decode(r, &req, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.cfg.Images.Prune(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// imageOp decodes the body into req (when not nil), runs start and answers
// 202 with the operation.
func (s *Server) imageOp(w http.ResponseWriter, r *http.Request, req any, start func() (api.Operation, error)) {
	if s.cfg.Images == nil {
		s.writeError(w, r, errNoImages)
		return
	}
	if req != nil {
		if err := decode(r, req, false); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	op, err := start()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, op)
}
