// Package libvirt implements hypervisor.Driver on top of libvirt
// (libvirt.org/go/libvirt, cgo) and libvirtxml.
//
// Domain and network XML are built only from libvirtxml structs. Errors are
// wrapped with the operation and mapped onto the hypervisor sentinels
// (ErrNotFound, ErrExists, ErrUnavailable, ErrAgentUnavailable); the original
// libvirt error stays in the chain, so errors.Is(err, libvirt.ERR_NO_DOMAIN)
// also works.
//
// The driver keeps one connection. A connection that dies (IsAlive false,
// an RPC/invalid-connection error, or libvirt's close callback) is retired
// and replaced: by the next call, or by a background loop with exponential
// backoff, so that lifecycle event subscriptions resume after libvirtd
// restarts without any call being made.
//
// libvirt calls cannot be cancelled: ctx is checked before each call and its
// deadline bounds polling loops and guest-agent timeouts, but a single
// blocked RPC is bounded only by libvirt's keepalive.
package libvirt
