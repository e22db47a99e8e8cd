package server

import (
	"context"
	"net"

	"golang.org/x/sys/unix"

	"github.com/galevm/gale/pkg/server/httpapi"
)

// ConnContext records the peer credentials of a unix-socket connection in
// its context (httpapi.PeerOf), for handlers that decide by who is asking (an import of a
// host path is allowed to root only). Set it as http.Server.ConnContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return ctx
	}
	return httpapi.WithPeer(ctx, httpapi.Peer{UID: int(cred.Uid), Known: true})
}
