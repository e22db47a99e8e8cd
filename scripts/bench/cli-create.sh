#!/usr/bin/env bash
# bench/cli-create.sh ROUNDS: time `gale vm create --no-wait` through galed,
# from the command's start until libvirt reports the domain running. Runs
# inside scripts/testenv.sh (run.sh calls it) and prints one line per round:
# "create_ms". Each VM is then forced off behind galed's back, which ends its
# create operation, and deleted, so the next round starts on a quiet host.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${GALE_TESTENV_DIR:?run me through scripts/bench/run.sh}"
rounds=${1:-7}
work=$GALE_TESTENV_DIR/cli
mkdir -p "$work"
template=$GALE_BENCH_TEMPLATE
. scripts/lib/galed.sh
galed_config "$work" 192.168.152.1/24 "$template" warn
GALED_PID=
trap 'kill $GALED_PID 2>/dev/null' EXIT
galed_start "$work"

ms() { date +%s%3N; }
for i in $(seq 0 "$rounds"); do
	n=bench-cli-$i
	t0=$(ms)
	bin/gale vm create "$n" --image debian-12 --cpus 1 --memory 1G --no-wait >/dev/null
	until [ "$(virsh domstate "$n" 2>/dev/null)" = running ]; do sleep 0.01; done
	t1=$(ms)
	virsh -q destroy "$n" >/dev/null
	for _ in $(seq 1 100); do
		bin/gale vm delete "$n" >/dev/null 2>&1 && break
		sleep 0.1
	done
	# Round 0 warms galed's connection and caches up.
	[ "$i" -gt 0 ] && echo "$((t1 - t0))"
done
