package server

import (
	"errors"
	"net/http"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/cloudinit"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/vm"
)

// errInvalidBody: the request body is not valid JSON for the route.
var errInvalidBody = errors.New("invalid request body")

// statusOf maps an error to the API code and HTTP status (one-to-one, see api.Code*).
func statusOf(err error) (string, int) {
	if code, status, ok := imageStatus(err); ok {
		return code, status
	}
	switch {
	case errors.Is(err, hypervisor.ErrUnavailable):
		return api.CodeUnavailable, http.StatusServiceUnavailable
	case errors.Is(err, vm.ErrInsufficient):
		return api.CodeInsufficient, http.StatusUnprocessableEntity
	case errors.Is(err, vm.ErrInvalid), errors.Is(err, errInvalidBody), errors.Is(err, hypervisor.ErrInvalidSpec),
		errors.Is(err, cloudinit.ErrInvalidConfig):
		return api.CodeInvalid, http.StatusBadRequest
	case errors.Is(err, vm.ErrNotFound), errors.Is(err, operation.ErrNotFound), errors.Is(err, hypervisor.ErrNotFound):
		return api.CodeNotFound, http.StatusNotFound
	case errors.Is(err, vm.ErrExists), errors.Is(err, operation.ErrBusy), errors.Is(err, vm.ErrInUse),
		errors.Is(err, vm.ErrNotRunning), errors.Is(err, hypervisor.ErrExists), errors.Is(err, hypervisor.ErrAgentUnavailable):
		return api.CodeConflict, http.StatusConflict
	}
	return api.CodeInternal, http.StatusInternalServerError
}
