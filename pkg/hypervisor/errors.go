package hypervisor

import "github.com/galevm/gale/pkg/errdefs"

// ErrDomainRunning: the operation needs a stopped domain (e.g. Undefine).
// Drivers wrap it; callers match it with errors.Is.
var ErrDomainRunning = errdefs.New(errdefs.Conflict, "domain is running")
