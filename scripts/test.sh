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
scripts/setup-host.sh --no-daemons

step "go modules"
go mod download

step "lint"
make --no-print-directory lint

step "Vagrantfile"
for p in vagrant vagrant-libvirt; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$p" >/dev/null
done
vagrant validate

step "unit tests"
go test -count=1 ./...

step "end-to-end tests"
scripts/e2e.sh
