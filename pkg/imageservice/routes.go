package imageservice

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/server/httpapi"
)

// Routes registers the image API: list, show, delete, pull, build, import,
// upload and prune.
func (s *Service) Routes(r httpapi.Router) {
	r.Handle("GET "+api.ImagesPath, func(w http.ResponseWriter, r *http.Request) error {
		imgs, err := s.List(r.Context())
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, imgs)
	})
	r.Handle("GET "+api.ImagePath, func(w http.ResponseWriter, r *http.Request) error {
		d, err := s.Show(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, d)
	})
	r.Handle("DELETE "+api.ImagePath, func(w http.ResponseWriter, r *http.Request) error {
		if err := s.Delete(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	r.Handle("POST "+api.ImagePullPath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.PullImageRequest
		if err := httpapi.Decode(r, &req, false); err != nil {
			return err
		}
		return httpapi.Accepted(w)(s.Pull(r.Context(), req))
	})
	r.Handle("POST "+api.ImageBuildPath, func(w http.ResponseWriter, r *http.Request) error {
		return httpapi.Accepted(w)(s.Build(r.Context(), r.PathValue("name")))
	})
	r.Handle("POST "+api.ImageImportPath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.ImportImageRequest
		if err := httpapi.Decode(r, &req, false); err != nil {
			return err
		}
		peer := httpapi.PeerOf(r.Context())
		return httpapi.Accepted(w)(s.Import(r.Context(), req, Caller{UID: peer.UID, Known: peer.Known}))
	})
	r.Handle("POST "+api.ImageUploadPath, s.serveUpload)
	r.Handle("POST "+api.ImagePrunePath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.PruneRequest
		if err := httpapi.Decode(r, &req, true); err != nil {
			return err
		}
		res, err := s.Prune(r.Context(), req)
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, res)
	})
}

// serveUpload takes the import's options from the query and the image from
// the body (which the server does not bound: Upload does, at
// Config.MaxUploadBytes).
func (s *Service) serveUpload(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := api.ImportImageRequest{Name: q.Get("name"), Format: q.Get("format"), Boot: q.Get("boot")}
	var err error
	for key, dst := range map[string]*bool{"prepare": &req.Prepare, "no_preflight": &req.NoPreflight} {
		if v := q.Get(key); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				return fmt.Errorf("%w: %s: %w", httpapi.ErrInvalidBody, key, err)
			}
		}
	}
	if v := q.Get("ready_port"); v != "" {
		if req.ReadyPort, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("%w: ready_port: %w", httpapi.ErrInvalidBody, err)
		}
	}
	return httpapi.Accepted(w)(s.Upload(r.Context(), req, r.Body, s.cfg.MaxUploadBytes))
}
