#!/usr/bin/env bash
# e2e.sh: run gale's end-to-end tests on real VMs.
#
#   scripts/e2e.sh [go test -run pattern]
#
# Builds the default template if the cache lacks it, makes the local apt
# repository the toolbox scenario serves to guests, compiles the e2e test
# binaries outside the namespace (the namespace has no network), then runs
# them inside scripts/testenv.sh, one package at a time (guests run under
# TCG on small hosts: never boot two suites at once): pkg/saveimage's round
# trip through libvirtd's save and restore, pkg/vm's engine tests,
# then the scenarios of pkg/e2e (gale CLI and galed; see pkg/e2e/README.md).
# One scenario alone: scripts/e2e.sh 'TestE2E/images_hostile'.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-E2E}

template=$(scripts/build-image.sh images/debian-12.yaml | tail -n 1)
[ -f "$template" ] || { echo "e2e: template build did not produce a file: $template" >&2; exit 1; }
echo "e2e: template $template"

mkdir -p bin
make --no-print-directory build >/dev/null
pkgs=(./pkg/saveimage ./pkg/vm ./pkg/e2e)
# A pattern naming pkg/e2e's scenarios would also match pkg/vm's TestE2E*
# tests (go test matches each level unanchored): run pkg/e2e alone then.
case $run in TestE2E/*) pkgs=(./pkg/e2e) ;; esac
bins=()
for p in "${pkgs[@]}"; do
	b="$PWD/bin/e2e-$(basename "$p").test"
	go test -c -tags e2e -o "$b" "$p"
	bins+=("$b:$p")
done

# Packages the snippets install, served to the guests by the toolbox scenario.
snippet_pkgs=$(awk '/^packages:/{p=1; next} p && /^  - /{print $2; next} p && /^[^ ]/{p=0}' cloudinit/*.yaml | sort -u)
export GALE_E2E_REPO=/var/lib/gale-test/repo
scripts/e2e-repo.sh "$GALE_E2E_REPO" $snippet_pkgs

export GALE_E2E_TEMPLATE=$template
rc=0
for entry in "${bins[@]}"; do
	b=${entry%%:*}
	p=${entry#*:}
	echo "e2e: running $p"
	# go test's own output format, so runners and humans read it the same way.
	# -test.timeout guards the whole package: a hung scenario fails the run.
	if scripts/testenv.sh bash -c "cd '$p' && '$b' -test.v -test.count=1 -test.timeout=40m -test.run '$run'"; then
		echo "ok  	$p (e2e)"
	else
		echo "FAIL	$p (e2e)"
		rc=1
	fi
done
exit "$rc"
