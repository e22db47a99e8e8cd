#!/usr/bin/env bash
# bench/list.sh: time `gale vm list` with 200 defined VMs against `virsh list
# --all` in the same run. Runs inside scripts/testenv.sh (run.sh calls it):
# defines 200 stopped domains that carry gale's metadata, starts galed, which
# adopts them at reconcile, then times both listings with hyperfine.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${GALE_TESTENV_DIR:?run me through scripts/bench/run.sh}"
count=${1:-200}
work=$GALE_TESTENV_DIR/list
mkdir -p "$work"
template=$GALE_BENCH_TEMPLATE

for i in $(seq 1 "$count"); do
	n=$(printf 'list-%03d' "$i")
	cat >"$work/dom.xml" <<XML
<domain type="qemu"><name>$n</name><memory unit="MiB">512</memory><vcpu>1</vcpu>
<metadata><vm xmlns="https://gale.dev/xmlns/domain/1"><id>i-$i</id><image>debian-12</image></vm></metadata>
<os><type arch="x86_64" machine="q35">hvm</type></os>
<devices><disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="$template"/><target dev="vda" bus="virtio"/><readonly/></disk></devices>
</domain>
XML
	virsh -q define "$work/dom.xml" >/dev/null
done

. scripts/lib/galed.sh
galed_config "$work" 192.168.151.1/24 "$template" warn
GALED_PID=
trap 'kill $GALED_PID 2>/dev/null' EXIT
galed_start "$work"
listed=$(bin/gale vm list -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
if [ "$listed" != "$count" ]; then
	echo "bench/list: gale vm list shows $listed VMs, want $count" >&2
	exit 1
fi
hyperfine -N --warmup 3 --runs 30 --export-markdown "$work/list.md" \
	-n "gale vm list ($count VMs)" "bin/gale vm list -o json" \
	-n "virsh list --all ($count domains)" "virsh -c qemu:///system list --all" >/dev/null
cat "$work/list.md"
