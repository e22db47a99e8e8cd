#!/usr/bin/env bash
# e2e-repo.sh DIR PACKAGE...: make DIR a flat apt repository holding
# PACKAGE... and their whole dependency closure, from the host's apt sources.
# The end-to-end tests serve it to guests on their isolated network, so that
# snippets that install packages can be checked without a route out.
# Idempotent: reuses the .debs already in DIR.
set -euo pipefail
dir=$1
shift
mkdir -p "$dir/partial" "$dir/.state" "$dir/.cache"
: >"$dir/.state/status" # nothing installed: apt fetches the full closure
command -v apt-ftparchive >/dev/null || {
	echo "e2e-repo: apt-ftparchive missing: run scripts/setup-host.sh --uses e2e (package apt-utils)" >&2
	exit 1
}
[ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || apt-get update -q >/dev/null
apt-get -q -y --download-only --no-install-recommends \
	-o Dir::State::status="$dir/.state/status" \
	-o Dir::Cache="$dir/.cache" -o Dir::Cache::archives="$dir" \
	install "$@" >/dev/null
(cd "$dir" && apt-ftparchive packages . >Packages && apt-ftparchive release . >Release)
echo "e2e-repo: $(ls "$dir"/*.deb | wc -l) packages in $dir" >&2
