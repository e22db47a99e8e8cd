#!/usr/bin/env bash
# fuzz.sh: run every Go fuzz target in the tree for a short time each.
#
#   scripts/fuzz.sh [REGEXP]
#
# Targets are found by looking for "func FuzzX(" in *_test.go files, so new
# ones are picked up; REGEXP (extended), if given, keeps only the targets
# whose "pkg/dir/FuzzX" name it matches. go test -fuzz takes one target per
# package per run, so they run one after another, each for FUZZTIME
# (default 10s) with -parallel=1 (FUZZPARALLEL) to leave the machine's other
# cores alone. Each new interesting input is minimized for at most
# FUZZMINIMIZETIME (default 1000x, that many runs): go test's default of
# 60s can stall a short run entirely on one input.
#
# A failing input is written by go test to the package's testdata/fuzz/FuzzX/
# directory, where it becomes a regression test; the script goes on with
# the other targets and exits non-zero at the end. A run that fails only
# with "context deadline exceeded" as FUZZTIME runs out, and writes no
# failing input, hit a race in go's fuzzing coordinator (golang/go#75804):
# it is reported, but does not fail the script.
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

out=$(mktemp)
trap 'rm -f "$out"' EXIT

start=$SECONDS
failed=()
flaked=()
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	echo
	echo "=== $dir $name ==="
	t0=$SECONDS
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" \
		-fuzzminimizetime "$minimize" -parallel "$parallel" "$dir" 2>&1 | tee "$out"; then
		# A bare "context deadline exceeded" when -fuzztime runs out, with
		# no failing input written, is a race in go's fuzzing coordinator
		# (golang/go#75804), not a finding.
		if grep -q '^    context deadline exceeded$' "$out" && ! grep -q 'Failing input written' "$out"; then
			flaked+=("$dir $name")
		else
			failed+=("$dir $name")
		fi
	fi
	echo "--- $name: $((SECONDS - t0))s"
done

echo
echo "fuzz.sh: ${#targets[@]} targets in $((SECONDS - start))s"
if [[ ${#flaked[@]} -gt 0 ]]; then
	echo "fuzz.sh: stopped by go's deadline race (golang/go#75804), no failing input:"
	printf '  %s\n' "${flaked[@]}"
fi
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "fuzz.sh: FAILED:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
