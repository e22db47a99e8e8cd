// Package toolrun runs external tools (qemu-img, debugfs, mmdebstrap, ...)
// the one way gale runs them: an argv, never a shell line; an optional
// wall-clock timeout; optional address-space and CPU-time limits; a cap on
// the output collected; the tail of standard error in every error.
//
// Limits are applied by running the tool under prlimit (util-linux), which
// sets them on itself and then executes the tool, so they bound the tool
// and nothing else. A Spec that asks for a limit fails with ErrNotFound
// when prlimit is missing: a tool is never run unconfined when limits were
// asked for.
//
// Every tool runs in its own process group with LC_ALL=C (unless Spec.Env
// says otherwise); when the timeout expires or ctx ends the whole group is
// killed, so children of the tool do not outlive it.
package toolrun
