#!/usr/bin/env bash
# bench/run.sh: time "create a VM from a template" three ways in one run, on
# the same template, inside the test environment (its own libvirtd, isolated
# network):
#   gale     gale's engine: qcow2 overlay + NoCloud seed (in-process) + define + start
#   gale CLI `gale vm create --no-wait` through galed, until the domain runs
#   virsh    qemu-img create + genisoimage + virsh define + virsh start (the floor)
#   v-inst   cloud-localds + virt-install --import
# Each round creates and starts a VM, then destroys and removes it. Prints a
# Markdown table of medians (create, delete, total) for docs/benchmarks.md.
#
# Then `gale vm list` with 200 VMs against `virsh list --all` (list.sh), and
# boot-to-ready times of the template with 1 and 2 vCPUs (boot/).
#
#   scripts/bench/run.sh [ROUNDS]    (default 7)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-7}

if [ "${GALE_BENCH_INNER:-}" != 1 ]; then
	scripts/setup-host.sh --no-daemons --uses run,build,image,e2e,bench >/dev/null
	template=$(scripts/build-image.sh images/debian-12.yaml | tail -n 1)
	mkdir -p bin
	go build -o bin/bench-engine ./scripts/bench/engine
	go build -o bin/bench-boot ./scripts/bench/boot
	make --no-print-directory build >/dev/null
	GALE_BENCH_INNER=1 GALE_BENCH_TEMPLATE=$template exec scripts/testenv.sh "$0" "$rounds"
fi

template=$GALE_BENCH_TEMPLATE
work=$GALE_TESTENV_DIR/bench
mkdir -p "$work"
net=bench
cat >"$work/net.xml" <<XML
<network><name>$net</name><bridge name="galebench0"/>
<ip address="192.168.240.1" netmask="255.255.255.0"><dhcp><range start="192.168.240.10" end="192.168.240.250"/></dhcp></ip></network>
XML
virsh -q net-define "$work/net.xml" >/dev/null && virsh -q net-start "$net" >/dev/null

ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

printf '#cloud-config\n{}\n' >"$work/user-data"

# Warm-up: first define after libvirtd start probes QEMU capabilities.
bin/bench-engine -template "$template" -dir "$work/gale" -network "$net" -n 1 >/dev/null

bin/bench-engine -template "$template" -dir "$work/gale" -network "$net" -n "$rounds" >"$work/gale.txt"

for i in $(seq 1 "$rounds"); do
	d=$work/virsh-$i
	mkdir -p "$d"
	n=bench-virsh-$i
	mac=52:54:00:ee:00:$(printf %02x "$i")
	printf 'instance-id: %s\nlocal-hostname: %s\n' "$n" "$n" >"$d/meta-data"
	cp "$work/user-data" "$d/user-data"
	cat >"$d/dom.xml" <<XML
<domain type="qemu"><name>$n</name><memory unit="MiB">1024</memory><vcpu>1</vcpu>
<os><type arch="x86_64" machine="pc">hvm</type></os>
<devices>
<disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="$d/disk.qcow2"/><target dev="vda" bus="virtio"/></disk>
<disk type="file" device="cdrom"><driver name="qemu" type="raw"/><source file="$d/seed.iso"/><target dev="sda" bus="sata"/><readonly/></disk>
<interface type="network"><source network="$net"/><mac address="$mac"/><model type="virtio"/></interface>
<serial type="pty"/><console type="pty"/>
<channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel>
</devices></domain>
XML
	t0=$(ms)
	qemu-img create -q -f qcow2 -F qcow2 -b "$template" "$d/disk.qcow2"
	genisoimage -quiet -output "$d/seed.iso" -volid cidata -joliet -rock "$d/user-data" "$d/meta-data" 2>/dev/null
	virsh -q define "$d/dom.xml" >/dev/null
	virsh -q start "$n" >/dev/null
	t1=$(ms)
	[ "$(virsh domstate "$n")" = running ] || { echo "bench: $n is not running" >&2; exit 1; }
	virsh -q destroy "$n" >/dev/null
	virsh -q undefine "$n" >/dev/null
	rm -rf "$d"
	t2=$(ms)
	echo "$((t1 - t0)) $((t2 - t1))" >>"$work/virsh.txt"
done

for i in $(seq 1 "$rounds"); do
	d=$work/vi-$i
	mkdir -p "$d"
	n=bench-vi-$i
	printf 'instance-id: %s\nlocal-hostname: %s\n' "$n" "$n" >"$d/meta-data"
	t0=$(ms)
	qemu-img create -q -f qcow2 -F qcow2 -b "$template" "$d/disk.qcow2"
	cloud-localds "$d/seed.iso" "$work/user-data" "$d/meta-data"
	virt-install -q --import --name "$n" --virt-type qemu --memory 1024 --vcpus 1 \
		--disk "path=$d/disk.qcow2,format=qcow2,bus=virtio" --disk "path=$d/seed.iso,device=cdrom" \
		--network "network=$net,model=virtio" --osinfo detect=on,require=off --graphics none \
		--noautoconsole >/dev/null
	t1=$(ms)
	[ "$(virsh domstate "$n")" = running ] || { echo "bench: virt-install left $n $(virsh domstate "$n")" >&2; exit 1; }
	virsh -q destroy "$n" >/dev/null
	virsh -q undefine "$n" >/dev/null
	rm -rf "$d"
	t2=$(ms)
	echo "$((t1 - t0)) $((t2 - t1))" >>"$work/vi.txt"
done

scripts/bench/cli-create.sh "$rounds" >"$work/cli.txt"

echo "| method | create+start (median ms) | destroy+remove (median ms) | total (median ms) | rounds |"
echo "| --- | ---: | ---: | ---: | ---: |"
for m in gale virsh vi; do
	f=$work/$m.txt
	c=$(awk '{print $1}' "$f" | median)
	x=$(awk '{print $2}' "$f" | median)
	t=$(awk '{print $1+$2}' "$f" | median)
	label=$m
	[ "$m" = gale ] && label="gale engine"
	[ "$m" = virsh ] && label="qemu-img + genisoimage + virsh define/start"
	[ "$m" = vi ] && label="cloud-localds + virt-install --import"
	echo "| $label | $c | $x | $t | $(wc -l <"$f") |"
done
echo "| gale vm create --no-wait (CLI → galed → engine, until running) | $(median <"$work/cli.txt") | | | $(wc -l <"$work/cli.txt") |"

echo
scripts/bench/list.sh 200

echo
echo "Boot to ready under the host's accelerator (1 GiB, isolated network):"
bin/bench-boot -template "$template" -dir "$work/boot" -cpus 1 -n 2
bin/bench-boot -template "$template" -dir "$work/boot" -cpus 2 -n 2
