#!/usr/bin/env bash
# test.sh: run all of gale's tests on a fresh Debian 12 host, as root.
#
#   scripts/test.sh
#
# 1. installs what the tests need (scripts/setup-host.sh --no-daemons) and
#    the Go modules,
# 2. checks formatting, go vet and that go.mod is tidy, and the Vagrantfile
#    (vagrant validate),
# 3. runs the unit tests (libvirt's test:///default driver, fakes, real qemu-img),
# 4. builds the default template if the cache lacks it, and runs the
#    end-to-end tests on real VMs inside a network namespace with its own
#    libvirtd (scripts/e2e.sh).
# Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

step() { echo; echo "=== $* ==="; }

step "host set-up"
scripts/setup-host.sh --no-daemons --uses run,build,image,unit,e2e,lint

step "go modules"
go mod download

step "lint"
make --no-print-directory lint

step "Vagrantfile"
vagrant validate

step "unit tests"
# A test that would skip for a missing host tool fails here instead: every
# tool must come from scripts/packages.txt.
GALE_REQUIRE_TOOLS=1 go test -count=1 ./...

step "end-to-end tests"
scripts/e2e.sh
