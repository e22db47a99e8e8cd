package libvirt

import (
	"errors"
	"fmt"
	"strings"

	lv "libvirt.org/go/libvirt"

	"github.com/galevm/gale/pkg/hypervisor"
)

// lvError presents a libvirt error by its message alone (libvirt.Error's own
// text is "virError(Code=..., Domain=..., Message='...')") while keeping it in
// the chain for errors.As and errors.Is(err, libvirt.ERR_...).
type lvError struct{ err lv.Error }

func (e lvError) Error() string { return e.err.Message }
func (e lvError) Unwrap() error { return e.err }

// asLibvirt extracts the libvirt error from err's chain.
func asLibvirt(err error) (lv.Error, bool) {
	var le lv.Error
	if errors.As(err, &le) {
		return le, true
	}
	var pe *lv.Error
	if errors.As(err, &pe) && pe != nil {
		return *pe, true
	}
	return lv.Error{}, false
}

// isConnectionError reports whether err means the connection to libvirt is
// gone (as opposed to an operation failing on a healthy connection).
func isConnectionError(err error) bool {
	le, ok := asLibvirt(err)
	if !ok {
		return false
	}
	switch le.Code {
	case lv.ERR_INVALID_CONN, lv.ERR_NO_CONNECT:
		return true
	}
	if le.Domain == lv.FROM_RPC {
		return true
	}
	// "Cannot write data: Broken pipe" and friends from the remote driver.
	return le.Code == lv.ERR_SYSTEM_ERROR && le.Domain == lv.FROM_REMOTE
}

// sentinelFor returns the hypervisor sentinel matching a libvirt error, or nil.
func sentinelFor(le lv.Error) error {
	switch le.Code {
	case lv.ERR_NO_DOMAIN, lv.ERR_NO_NETWORK:
		return hypervisor.ErrNotFound
	case lv.ERR_DOM_EXIST, lv.ERR_NETWORK_EXIST:
		return hypervisor.ErrExists
	case lv.ERR_OPERATION_INVALID, lv.ERR_OPERATION_FAILED, lv.ERR_INTERNAL_ERROR:
		if strings.Contains(le.Message, "already exists") {
			return hypervisor.ErrExists
		}
	}
	if isConnectionError(le) {
		return hypervisor.ErrUnavailable
	}
	return nil
}

// wrapErr wraps err with op (e.g. `define domain "web"`) and, for libvirt
// errors, the matching hypervisor sentinel. It returns nil for a nil err.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	le, ok := asLibvirt(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	if s := sentinelFor(le); s != nil {
		return fmt.Errorf("%s: %w: %w", op, s, lvError{le})
	}
	return fmt.Errorf("%s: %w", op, lvError{le})
}

// isAgentUnavailable reports whether a libvirt error from a guest-agent call
// means the agent cannot be reached (not running yet, not installed, domain
// not running), as opposed to the agent answering with an error.
func isAgentUnavailable(le lv.Error) bool {
	switch le.Code {
	case lv.ERR_AGENT_UNRESPONSIVE, lv.ERR_AGENT_UNSYNCED, lv.ERR_AGENT_COMMAND_TIMEOUT, lv.ERR_OPERATION_TIMEOUT:
		return true
	case lv.ERR_ARGUMENT_UNSUPPORTED, lv.ERR_OPERATION_INVALID:
		// "QEMU guest agent is not configured", "domain is not running".
		return strings.Contains(le.Message, "agent") || strings.Contains(le.Message, "not running")
	}
	return strings.Contains(le.Message, "guest agent is not connected")
}

// wrapAgentErr is wrapErr for guest-agent calls: agent unavailability maps
// to hypervisor.ErrAgentUnavailable.
func wrapAgentErr(op string, err error) error {
	if le, ok := asLibvirt(err); ok && isAgentUnavailable(le) {
		return fmt.Errorf("%s: %w: %w", op, hypervisor.ErrAgentUnavailable, lvError{le})
	}
	return wrapErr(op, err)
}

// isCode reports whether err is a libvirt error with one of codes.
func isCode(err error, codes ...lv.ErrorNumber) bool {
	le, ok := asLibvirt(err)
	if !ok {
		return false
	}
	for _, c := range codes {
		if le.Code == c {
			return true
		}
	}
	return false
}

// readable returns err with a libvirt error presented by its message.
func readable(err error) error {
	if le, ok := asLibvirt(err); ok {
		return lvError{le}
	}
	return err
}
