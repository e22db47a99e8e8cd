#!/usr/bin/env bash
# test.sh: run all of gale's tests on a fresh Debian 12 host, as root.
#
#   scripts/test.sh
#
# 1. installs what the tests need (scripts/setup-host.sh, groups from
#    scripts/packages.txt) and the Go modules,
# 2. checks formatting, go vet and that go.mod is tidy, and the Vagrantfile
#    (vagrant validate),
# 3. runs the unit tests (libvirt's test:///default driver, fakes, real
#    qemu-img) inside a bare Debian 12 root that gets only the listed
#    packages (scripts/fresh-root.sh), with GALE_REQUIRE_TOOLS=1: a test
#    that would skip for a missing tool fails, so the list is proven,
# 4. runs every fuzz target briefly (scripts/fuzz.sh, FUZZTIME, default 3s),
# 5. builds the default template if the cache lacks it, and runs the
#    end-to-end tests on real VMs inside a network namespace with its own
#    libvirtd (scripts/e2e.sh).
# Exits non-zero if any step fails. Each step prints its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
export GALE_REQUIRE_TOOLS=1

t_all=$SECONDS
t_step=$SECONDS
step() {
	[ "$t_step" -eq "$SECONDS" ] || echo "(step took $((SECONDS - t_step)) s)"
	t_step=$SECONDS
	echo
	echo "=== $* ==="
}

step "host set-up"
scripts/setup-host.sh --no-daemons --uses run,build,image,unit,e2e,lint

step "go modules"
go mod download

step "lint"
make --no-print-directory lint

step "Vagrantfile"
vagrant validate

step "unit tests in a fresh Debian 12 root"
scripts/fresh-root.sh

step "fuzz targets, ${FUZZTIME:-3s} each"
FUZZTIME=${FUZZTIME:-3s} scripts/fuzz.sh

step "end-to-end tests"
scripts/e2e.sh
step "done"
echo "test.sh: all steps passed in $((SECONDS - t_all)) s"
