package server

import (
	"cmp"
	"fmt"
	"net/http"
	"strconv"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/vm"
)

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.VersionInfo{Version: s.cfg.Version, APIVersion: api.Version, Accel: s.cfg.Accel, SSHIdentity: s.cfg.SSHIdentity})
}

func (s *Server) listVMs(w http.ResponseWriter, r *http.Request) {
	vms, err := s.cfg.VMs.List(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, vms)
}

func (s *Server) createVM(w http.ResponseWriter, r *http.Request) {
	var req api.CreateVMRequest
	if err := decode(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	op, err := s.cfg.VMs.Create(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, op)
}

func (s *Server) getVM(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.VMs.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) deleteVM(w http.ResponseWriter, r *http.Request) {
	keep, err := strconv.ParseBool(cmp.Or(r.URL.Query().Get(api.QueryKeepDisk), "false"))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: %s: %w", errInvalidBody, api.QueryKeepDisk, err))
		return
	}
	op, err := s.cfg.VMs.Delete(r.Context(), r.PathValue("name"), vm.DeleteOptions{KeepDisk: keep})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, op)
}

// vmAction serves start, stop and restart (exec has its own, more specific pattern).
func (s *Server) vmAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	var opts api.StopVMRequest
	if action == "stop" || action == "restart" {
		if err := decode(r, &opts, true); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	var op api.Operation
	var err error
	switch action {
	case "start":
		op, err = s.cfg.VMs.Start(r.Context(), name)
	case "stop":
		op, err = s.cfg.VMs.Stop(r.Context(), name, opts)
	case "restart":
		op, err = s.cfg.VMs.Restart(r.Context(), name, opts)
	default:
		err = fmt.Errorf("%w: unknown action %q (want start, stop or restart)", vm.ErrNotFound, action)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, op)
}

func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	var req api.ExecRequest
	if err := decode(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.cfg.VMs.Exec(r.Context(), r.PathValue("name"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	b, err := s.cfg.VMs.Logs(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request) {
	op, err := s.cfg.VMs.Operation(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, op)
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	nets, err := s.cfg.VMs.ListNetworks(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nets)
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) {
	var req api.CreateNetworkRequest
	if err := decode(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.cfg.VMs.CreateNetwork(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, n)
}

func (s *Server) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.VMs.DeleteNetwork(r.Context(), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) doctor(w http.ResponseWriter, r *http.Request) {
	checks := []api.Check{}
	if s.cfg.Doctor != nil {
		checks = s.cfg.Doctor(r.Context())
	}
	writeJSON(w, http.StatusOK, checks)
}
