package server

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/cloudinit"
	"github.com/galevm/gale/pkg/errdefs"
	"github.com/galevm/gale/pkg/hypervisor"
	"github.com/galevm/gale/pkg/imageservice"
	"github.com/galevm/gale/pkg/network"
	"github.com/galevm/gale/pkg/operation"
	"github.com/galevm/gale/pkg/server/httpapi"
	"github.com/galevm/gale/pkg/vm"
)

// TestStatusOf checks that each package's sentinels, wrapped with context,
// map through their kind to the documented code and status.
func TestStatusOf(t *testing.T) {
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{vm.ErrInvalid, api.CodeInvalid, http.StatusBadRequest},
		{httpapi.ErrInvalidBody, api.CodeInvalid, http.StatusBadRequest},
		{hypervisor.ErrInvalidSpec, api.CodeInvalid, http.StatusBadRequest},
		{cloudinit.ErrInvalidUserData, api.CodeInvalid, http.StatusBadRequest},
		{imageservice.ErrInvalid, api.CodeInvalid, http.StatusBadRequest},
		{vm.ErrNotFound, api.CodeNotFound, http.StatusNotFound},
		{operation.ErrNotFound, api.CodeNotFound, http.StatusNotFound},
		{imageservice.ErrNotFound, api.CodeNotFound, http.StatusNotFound},
		{hypervisor.ErrNotFound, api.CodeNotFound, http.StatusNotFound},
		{vm.ErrExists, api.CodeConflict, http.StatusConflict},
		{network.ErrInUse, api.CodeConflict, http.StatusConflict},
		{vm.ErrNotRunning, api.CodeConflict, http.StatusConflict},
		{operation.ErrBusy, api.CodeConflict, http.StatusConflict},
		{imageservice.ErrInUse, api.CodeConflict, http.StatusConflict},
		{imageservice.ErrExists, api.CodeConflict, http.StatusConflict},
		{hypervisor.ErrExists, api.CodeConflict, http.StatusConflict},
		{hypervisor.ErrAgentUnavailable, api.CodeConflict, http.StatusConflict},
		{vm.ErrInsufficient, api.CodeInsufficient, http.StatusUnprocessableEntity},
		{hypervisor.ErrUnavailable, api.CodeUnavailable, http.StatusServiceUnavailable},
		{vm.ErrStalled, api.CodeTimedOut, http.StatusGatewayTimeout},
		{errors.New("boom"), api.CodeInternal, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			err := fmt.Errorf("context: %w", tt.err)
			if code, status := statusOf(err); code != tt.code || status != tt.status {
				t.Fatalf("statusOf(%v) = %s %d, want %s %d", err, code, status, tt.code, tt.status)
			}
		})
	}
	for _, k := range errdefs.Kinds {
		if _, ok := wireErrors[k]; !ok {
			t.Errorf("kind %q has no entry in wireErrors", k)
		}
	}
}
