#!/usr/bin/env bash
# bench/clones.sh: create to ready, cold boot against clone, side by side in
# one run, through the product (`gale vm create`, which returns when the VM
# is ready and has its address), for two models: the bare template and the
# web-server snippet. For each model: one `--clone always` that saves the
# parent (a cold boot plus the save) and clones it, then ROUNDS cold boots
# in a row (`--clone never`), then ROUNDS clones in a row (`--clone auto`),
# each VM deleted before the next is made. Then what a parent takes: its
# state file and disk on the host's disk, the state file's pages in the
# page cache, and the resident memory of a clone's QEMU against a cold
# boot's. Prints Markdown for docs/benchmarks.md.
#
#   scripts/bench/clones.sh [ROUNDS]    (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-3}

if [ "${GALE_BENCH_INNER:-}" != 1 ]; then
	scripts/setup-host.sh --no-daemons --uses run,build,image,e2e,bench >/dev/null
	template=$(scripts/build-image.sh images/debian-12.yaml | tail -n 1)
	make --no-print-directory build >/dev/null
	GALE_BENCH_INNER=1 GALE_BENCH_TEMPLATE=$template exec scripts/testenv.sh "$0" "$rounds"
fi

work=$GALE_TESTENV_DIR/clones
. scripts/lib/galed.sh
galed_config "$work" 192.168.153.1/24 "$GALE_BENCH_TEMPLATE" warn
GALED_PID=
trap 'kill $GALED_PID 2>/dev/null' EXIT
galed_start "$work"

ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
secs() { awk -v m="$1" 'BEGIN {printf "%.1f", m/1000}'; }

# create NAME MODE ARGS...: time one create to ready (ms), check how it was made.
create() {
	local name=$1 mode=$2 t0 t1 made
	shift 2
	t0=$(ms)
	bin/gale vm create "$name" --image debian-12 --memory 1G --disk 4G --clone "$mode" "$@" >"$work/$name.out" 2>&1 ||
		{ echo "bench: create $name failed:" >&2; cat "$work/$name.out" >&2; exit 1; }
	t1=$(ms)
	made=$(bin/gale vm show "$name" -o json | sed -n 's/.*"made": *"\([^"]*\)".*/\1/p')
	echo "$((t1 - t0)) $made"
}

rss_kib() { # resident memory of VM $1's QEMU process
	ps -o rss= -p "$(pgrep -f "guest=$1," | head -n 1)" | tr -d ' '
}

declare -A label=([bare]="bare template" [web]="web-server snippet")
declare -A extra=([bare]="" [web]="--cloud-init cloudinit/web-server.yaml")
echo "| model | parent: boot + save (s) | cold boot to ready, median of $rounds (s) | clone to ready, median of $rounds (s) | cold / clone |"
echo "| --- | ---: | ---: | ---: | ---: |"
for m in bare web; do
	# shellcheck disable=SC2086
	read -r first made < <(create "$m-first" always ${extra[$m]})
	[ "$made" = clone ] || { echo "bench: $m-first was made by $made" >&2; exit 1; }
	bin/gale vm delete "$m-first" >/dev/null
	: >"$work/$m-cold.txt"
	: >"$work/$m-clone.txt"
	for i in $(seq 1 "$rounds"); do
		# shellcheck disable=SC2086
		read -r t made < <(create "$m-cold-$i" never ${extra[$m]})
		[ "$made" = cold-boot ] || { echo "bench: $m-cold-$i was made by $made" >&2; exit 1; }
		echo "$t" >>"$work/$m-cold.txt"
		[ "$i" = 1 ] && cold_rss=$(rss_kib "$m-cold-$i")
		bin/gale vm delete "$m-cold-$i" >/dev/null
	done
	for i in $(seq 1 "$rounds"); do
		# shellcheck disable=SC2086
		read -r t made < <(create "$m-clone-$i" auto ${extra[$m]})
		[ "$made" = clone ] || { echo "bench: $m-clone-$i was made by $made" >&2; exit 1; }
		echo "$t" >>"$work/$m-clone.txt"
		[ "$i" = 1 ] && clone_rss=$(rss_kib "$m-clone-$i")
		bin/gale vm delete "$m-clone-$i" >/dev/null
	done
	cold=$(median <"$work/$m-cold.txt")
	clone=$(median <"$work/$m-clone.txt")
	# The parent's build is the first create less one clone.
	echo "| ${label[$m]} | $(secs $((first - clone))) | $(secs "$cold") | $(secs "$clone") | $(awk -v a="$cold" -v b="$clone" 'BEGIN {printf "%.1f×", a/b}') |"
	echo "$m: cold $(tr '\n' ' ' <"$work/$m-cold.txt")ms; clones $(tr '\n' ' ' <"$work/$m-clone.txt")ms; QEMU RSS cold ${cold_rss} KiB, clone ${clone_rss} KiB" >>"$work/detail.txt"
done
echo
echo "Each time, ms, in order:"
echo
sed 's/^/    /' "$work/detail.txt"
echo
echo "What the parents take (state file pages in the page cache after the clones, by fincore):"
echo
echo "| parent | state file | disk overlay (allocated) | state file in page cache |"
echo "| --- | ---: | ---: | ---: |"
for d in "$work"/data/parents/gale-parent-*; do
	state=$d/state.sav
	cached=$(fincore -b -n -o RES "$state" 2>/dev/null | tr -d ' ' || echo "?")
	echo "| $(basename "$d") | $(du -b --apparent-size "$state" | cut -f1 | numfmt --to=iec) | $(du -B1 "$d/disk.qcow2" | cut -f1 | numfmt --to=iec) | $(numfmt --to=iec "$cached") |"
done
