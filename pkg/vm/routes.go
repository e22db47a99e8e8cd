package vm

import (
	"cmp"
	"fmt"
	"net/http"
	"strconv"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/server/httpapi"
)

// Routes registers the VM API (see pkg/api): list, create, show, delete,
// start, stop, restart, exec and logs.
func (s *Service) Routes(r httpapi.Router) {
	r.Handle("GET "+api.VMsPath, func(w http.ResponseWriter, r *http.Request) error {
		vms, err := s.List(r.Context())
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, vms)
	})
	r.Handle("POST "+api.VMsPath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.CreateVMRequest
		if err := httpapi.Decode(r, &req, false); err != nil {
			return err
		}
		op, err := s.Create(r.Context(), req)
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusAccepted, op)
	})
	r.Handle("GET "+api.VMPath, func(w http.ResponseWriter, r *http.Request) error {
		v, err := s.Get(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, v)
	})
	r.Handle("DELETE "+api.VMPath, func(w http.ResponseWriter, r *http.Request) error {
		keep, err := strconv.ParseBool(cmp.Or(r.URL.Query().Get(api.QueryKeepDisk), "false"))
		if err != nil {
			return fmt.Errorf("%w: %s: %w", httpapi.ErrInvalidBody, api.QueryKeepDisk, err)
		}
		op, err := s.Delete(r.Context(), r.PathValue("name"), DeleteOptions{KeepDisk: keep})
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusAccepted, op)
	})
	r.Handle("POST "+api.VMActionPath, s.serveAction)
	r.Handle("POST "+api.VMExecPath, func(w http.ResponseWriter, r *http.Request) error {
		var req api.ExecRequest
		if err := httpapi.Decode(r, &req, false); err != nil {
			return err
		}
		res, err := s.Exec(r.Context(), r.PathValue("name"), req)
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusOK, res)
	})
	r.Handle("GET "+api.VMLogsPath, func(w http.ResponseWriter, r *http.Request) error {
		b, err := s.Logs(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(b)
		return nil
	})
}

// serveAction serves start, stop and restart (exec has its own, more
// specific pattern).
func (s *Service) serveAction(w http.ResponseWriter, r *http.Request) error {
	name, action := r.PathValue("name"), r.PathValue("action")
	var opts api.StopVMRequest
	if action == "stop" || action == "restart" {
		if err := httpapi.Decode(r, &opts, true); err != nil {
			return err
		}
	}
	switch action {
	case "start":
		op, err := s.Start(r.Context(), name)
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusAccepted, op)
	case "stop":
		op, err := s.Stop(r.Context(), name, opts)
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusAccepted, op)
	case "restart":
		op, err := s.Restart(r.Context(), name, opts)
		if err != nil {
			return err
		}
		return httpapi.JSON(w, http.StatusAccepted, op)
	}
	return fmt.Errorf("%w: unknown action %q (want start, stop or restart)", ErrNotFound, action)
}
