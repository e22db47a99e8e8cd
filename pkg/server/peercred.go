package server

import (
	"context"
	"net"

	"golang.org/x/sys/unix"

	"github.com/galevm/gale/pkg/imageops"
)

type callerKey struct{}

// ConnContext records the peer credentials of a unix-socket connection in
// its context, for handlers that decide by who is asking (an import of a
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
	return context.WithValue(ctx, callerKey{}, imageops.Caller{UID: int(cred.Uid), Known: true})
}

// callerOf returns the credentials ConnContext recorded (unknown otherwise).
func callerOf(ctx context.Context) imageops.Caller {
	c, _ := ctx.Value(callerKey{}).(imageops.Caller)
	return c
}
