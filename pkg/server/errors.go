package server

import (
	"net/http"

	"github.com/galevm/gale/pkg/api"
	"github.com/galevm/gale/pkg/errdefs"
)

// wireError is the API code and HTTP status of an error kind.
type wireError struct {
	code   string
	status int
}

// wireErrors is the one table from error kind to API code and HTTP status
// (one-to-one, see api.Code*). Internal is the entry for errors without a kind.
var wireErrors = map[errdefs.Kind]wireError{
	errdefs.Invalid:      {api.CodeInvalid, http.StatusBadRequest},
	errdefs.NotFound:     {api.CodeNotFound, http.StatusNotFound},
	errdefs.Conflict:     {api.CodeConflict, http.StatusConflict},
	errdefs.Insufficient: {api.CodeInsufficient, http.StatusUnprocessableEntity},
	errdefs.Unavailable:  {api.CodeUnavailable, http.StatusServiceUnavailable},
	errdefs.TimedOut:     {api.CodeTimedOut, http.StatusGatewayTimeout},
	errdefs.Internal:     {api.CodeInternal, http.StatusInternalServerError},
}

// statusOf maps an error to the API code and HTTP status of its kind.
func statusOf(err error) (string, int) {
	w, ok := wireErrors[errdefs.KindOf(err)]
	if !ok {
		w = wireErrors[errdefs.Internal]
	}
	return w.code, w.status
}
