package hypervisor

import "errors"

// ErrDomainRunning: the operation needs a stopped domain (e.g. Undefine).
// Drivers wrap it; callers match it with errors.Is.
var ErrDomainRunning = errors.New("domain is running")
