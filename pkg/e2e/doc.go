// Package e2e holds gale's end-to-end scenarios: the gale CLI against a
// private galed on a real libvirtd, real QEMU guests and real images. The
// scenarios are Go tests behind the build tag e2e; they run inside
// scripts/testenv.sh (a network namespace with its own libvirtd), which
// scripts/e2e.sh arranges. See README.md in this directory for how to run
// one scenario alone and for what each scenario checks.
package e2e
