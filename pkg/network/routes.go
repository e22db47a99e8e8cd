package network

import (
	"net/http"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/server/httpapi"
)

// Routes registers the network API: list, create and delete.
func (s *Service) Routes(r httpapi.Router) {
	r.Handle("GET "+api.NetworksPath, func(w http.ResponseWriter, r *http.Request) error {
		nets, err := s.List(r.Context())
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, nets)
	})
	r.Handle("POST "+api.NetworksPath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.CreateNetworkRequest
		if err := httpapi.Decode(r, &req, false); err != nil {
			return err
		}
		n, err := s.Create(r.Context(), req)
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusCreated, n)
	})
	r.Handle("DELETE "+api.NetworkPath, func(w http.ResponseWriter, r *http.Request) error {
		if err := s.Delete(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
