#!/usr/bin/env bash
# bench/sets.sh: scale-out of a set against the time of one VM, side by side
# in one run, through the product, for the web-server model (1 GiB, 1 vCPU,
# probed over HTTP). In order:
#   one VM, cold boot        `gale vm create --clone never` to ready
#   parent                   `gale vm create --clone always` (boot + save + clone)
#   one VM, clone            `gale vm create --clone auto` to ready
#   set 0 -> 3               `gale set create --capacity 3` to 3 healthy in the map
#   set 3 -> 6               `gale set scale 6` to 6 healthy
# Prints Markdown for docs/benchmarks.md. Only one run: each row boots VMs.
#
#   scripts/bench/sets.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin

if [ "${GALE_BENCH_INNER:-}" != 1 ]; then
	scripts/setup-host.sh --no-daemons --uses run,build,image,e2e,bench >/dev/null
	template=$(scripts/build-image.sh images/debian-12.yaml | tail -n 1)
	make --no-print-directory build >/dev/null
	GALE_BENCH_INNER=1 GALE_BENCH_TEMPLATE=$template exec scripts/testenv.sh "$0"
fi

work=$GALE_TESTENV_DIR/sets
. scripts/lib/galed.sh
galed_config "$work" 192.168.154.1/24 "$GALE_BENCH_TEMPLATE" warn
GALED_PID=
trap 'kill $GALED_PID 2>/dev/null' EXIT
galed_start "$work"

ms() { date +%s%3N; }
secs() { awk -v m="$1" 'BEGIN {printf "%.1f", m/1000}'; }
model=(--image debian-12 --memory 1G --disk 4G --cloud-init cloudinit/web-server.yaml)

# timed LABEL CMD...: run CMD, print "LABEL|seconds".
timed() {
	local label=$1 t0 t1
	shift
	t0=$(ms)
	"$@" >"$work/last.out" 2>&1 || { echo "bench: $label failed:" >&2; cat "$work/last.out" >&2; exit 1; }
	t1=$(ms)
	echo "$label|$(secs $((t1 - t0)))"
}

rows=()
rows+=("$(timed "one VM, cold boot" bin/gale vm create cold "${model[@]}" --clone never)")
bin/gale vm delete cold >/dev/null
rows+=("$(timed "parent (boot + save) and its first clone" bin/gale vm create first "${model[@]}" --clone always)")
bin/gale vm delete first >/dev/null
rows+=("$(timed "one VM, clone" bin/gale vm create one "${model[@]}" --clone auto)")
bin/gale vm delete one >/dev/null
rows+=("$(timed "set 0 -> 3 healthy" bin/gale set create web "${model[@]}" --capacity 3 --lb 8080:80 --probe http:80/,interval=1s,healthy=1 --timeout 15m)")
rows+=("$(timed "set 3 -> 6 healthy" bin/gale set scale web 6 --timeout 15m)")
bin/gale set delete web --timeout 5m >/dev/null

echo "| what (web-server model, 1 GiB, 1 vCPU) | seconds |"
echo "| --- | ---: |"
for r in "${rows[@]}"; do
	echo "| ${r%%|*} | ${r##*|} |"
done
