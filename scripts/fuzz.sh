#!/usr/bin/env bash
# fuzz.sh: run every Go fuzz target in the tree for a short time each.
#
#   scripts/fuzz.sh [REGEXP]
#
# Targets are found by looking for "func FuzzX(" in *_test.go files, so new
# ones are picked up; REGEXP, if given, keeps only targets whose
# "package/FuzzX" name matches it (grep -E). go test -fuzz takes one target
# per package per run, so they run one after another, each for FUZZTIME
# (default 10s) with -parallel=1 (FUZZPARALLEL) to leave the machine's other
# cores alone. Each new interesting input is minimized for at most
# FUZZMINIMIZETIME (default 1000x, that many runs): go test's default of 60s
# can stall a short run entirely on one input. A failing input is written by go test to the package's
# testdata/fuzz/FuzzX/ directory, where it becomes a regression test; the
# script goes on with the other targets and exits non-zero at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

fuzztime=${FUZZTIME:-10s}
parallel=${FUZZPARALLEL:-1}
minimize=${FUZZMINIMIZETIME:-1000x}
filter=${1:-.}

# "./pkg/dir FuzzName" lines, sorted.
mapfile -t targets < <(
	grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
		grep -v '^./vendor/' |
		sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#' |
		sort -u |
		while read -r dir name; do
			if [[ "${dir#./}/$name" =~ $filter ]]; then echo "$dir $name"; fi
		done
)
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz.sh: no fuzz targets match '$filter'" >&2
	exit 1
fi

echo "fuzz.sh: ${#targets[@]} targets, $fuzztime each:"
printf '  %s\n' "${targets[@]}"

start=$SECONDS
failed=()
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	echo
	echo "=== $dir $name ==="
	t0=$SECONDS
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" \
		-fuzzminimizetime "$minimize" -parallel "$parallel" "$dir"; then
		failed+=("$dir $name")
	fi
	echo "--- $name: $((SECONDS - t0))s"
done

echo
echo "fuzz.sh: ${#targets[@]} targets in $((SECONDS - start))s"
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "fuzz.sh: FAILED:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
