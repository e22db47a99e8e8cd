#!/usr/bin/env bash
# e2e-images.sh: end-to-end test of gale's image verbs on real images and VMs.
# Runs inside scripts/testenv.sh (scripts/e2e.sh arranges it); needs bin/gale
# and bin/galed built and GALE_E2E_TEMPLATE (a built debian-12).
#
# Scenario: the catalog (shipped entries, a user entry, a broken user file);
# pull from a loopback HTTP server (verified, cached, shared; a wrong
# checksum, a decompression bomb and an unreachable server refused); build
# (cache hit); import the template converted to raw, qcow2, vmdk, vhd, vhdx
# and vdi, and from a stream; hostile inputs refused with nothing written;
# a VM from an on-demand pull made ready by a TCP port; a VM from an
# imported vmdk without cloud-init made ready by its guest agent; delete
# refused while in use; prune.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
: "${GALE_TESTENV_DIR:?run me through scripts/testenv.sh}"
: "${GALE_E2E_TEMPLATE:?set GALE_E2E_TEMPLATE to a built debian-12 image}"

D=$GALE_TESTENV_DIR/images
mkdir -p "$D"/{images,catalog,import,www,work}
chmod 0755 "$D" "$D/images"
gale() { "$repo/bin/gale" "$@"; }
. scripts/lib/check.sh
. scripts/lib/galed.sh

# A private image directory holding a copy of the template, so nothing this
# scenario pulls or imports lands in the host's cache.
tmpl=$D/images/$(basename "$GALE_E2E_TEMPLATE")
cp --sparse=always "$GALE_E2E_TEMPLATE" "$tmpl"
galed_config "$D" 192.168.170.1/24 "$tmpl" debug
cat >>"$D/galed.yaml" <<YAML
user_catalog_dir: $D/catalog
import_dir: $D/import
max_image_size: 4G
YAML

# The loopback web server: the template (gzip'd qcow2, and zstd'd raw) with
# checksum files, plus a decompression bomb.
W=$D/www
gzip -1 -c "$tmpl" >"$W/debian.qcow2.gz"
qemu-img convert -f qcow2 -O raw "$tmpl" "$D/work/debian.raw"
zstd -q -1 -T0 -c "$D/work/debian.raw" >"$W/debian.raw.zst"
(cd "$W" && sha256sum debian.qcow2.gz debian.raw.zst >SHA256SUMS)
echo "0000000000000000000000000000000000000000000000000000000000000000  debian.qcow2.gz" >"$W/WRONGSUMS"
head -c 5G /dev/zero | zstd -q -1 -T0 >"$W/bomb.raw.zst"
(cd "$W" && sha256sum bomb.raw.zst >BOMBSUMS)
port=18080
python3 -m http.server --bind 127.0.0.1 --directory "$W" "$port" >"$D/http.log" 2>&1 &
http_pid=$!
# A second server cuts the first download of each file half-way.
cutport=18090
python3 scripts/lib/cutserver.py "$W" "$cutport" >"$D/cut.log" 2>&1 &
cut_pid=$!
entry() { # entry NAME FILE FORMAT SUMS
	cat >"$D/catalog/$1.yaml" <<YAML
name: $1
os: debian
description: test entry served from loopback
defaults: {cpus: 1, memory_mib: 1024, disk_gib: 4}
boot: bios
user: gale
source:
  url: http://127.0.0.1:$port/$2
  format: $3
  checksum: {url: "http://127.0.0.1:$port/$4", algorithm: sha256}
YAML
}
entry loop-qcow2 debian.qcow2.gz qcow2 SHA256SUMS
entry loop-raw debian.raw.zst raw SHA256SUMS
entry loop-wrongsum debian.qcow2.gz qcow2 WRONGSUMS
entry loop-bomb bomb.raw.zst raw BOMBSUMS
sed "s#127.0.0.1:$port#127.0.0.1:1#" "$D/catalog/loop-qcow2.yaml" | sed 's/name: loop-qcow2/name: loop-offline/' >"$D/catalog/loop-offline.yaml"
sed "s#127.0.0.1:$port/debian#127.0.0.1:$cutport/debian#" "$D/catalog/loop-qcow2.yaml" | sed 's/name: loop-qcow2/name: loop-cut/' >"$D/catalog/loop-cut.yaml"
printf 'name: broken\nos: debian\nboot: floppy\n' >"$D/catalog/broken.yaml"

GALED_PID=
finish() {
	[ -n "$GALED_PID" ] && kill "$GALED_PID" 2>/dev/null
	kill "$http_pid" "$cut_pid" 2>/dev/null
	echo
	if [ "$failed" -ne 0 ]; then
		echo "----- galed log (last 80 lines) -----"
		tail -n 80 "$D/galed.log"
	fi
	echo "e2e-images: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
trap 'finish; exit $?' EXIT
galed_start "$D" || exit 1
for _ in $(seq 1 50); do curl -s "http://127.0.0.1:$port/SHA256SUMS" >/dev/null && break; sleep 0.1; done

# nothing_left NAME: no image, record, download or work file named after NAME.
nothing_left() {
	local left
	left=$(find "$D/images" -name "*$1*" 2>/dev/null; find "$D/images/.tmp" -mindepth 1 2>/dev/null)
	[ -z "$left" ] && ok "nothing left behind for $1" || bad "left behind for $1: $left"
}

# --- catalog
expect "image list -o json" 0 gale image list -o json
names=$(json "' '.join(sorted(i['name'] for i in d))" <<<"$LAST_OUT")
for n in debian-12 debian-12-cloud debian-13-cloud ubuntu-22.04 ubuntu-24.04 fedora-42 almalinux-9 rocky-9 alpine-3.21 loop-qcow2; do
	[[ " $names " == *" $n "* ]] && ok "catalog lists $n" || bad "catalog misses $n: $names"
done
[ "$(json "[i['kind'] for i in d if i['name']=='broken'][0]" <<<"$LAST_OUT")" = invalid ] &&
	json "[i['error'] for i in d if i['name']=='broken'][0]" <<<"$LAST_OUT" | grep -q "broken.yaml: defaults.cpus" &&
	ok "a broken user catalog file is listed with its file and field" || bad "broken entry: $LAST_OUT"
[ "$(json "[i['present'] for i in d if i['name']=='debian-12'][0]" <<<"$LAST_OUT")" = True ] && ok "debian-12 is present" || bad "debian-12 not present"
expect "image show ubuntu-24.04" 0 gale image show ubuntu-24.04
grep -q "SHA256SUMS" <<<"$LAST_OUT" && grep -q "User: *ubuntu" <<<"$LAST_OUT" && ok "show names the checksum file and default user" || bad "show: $LAST_OUT"
expect "image show of an unknown name" 3 gale image show nope
expect "image show ../etc is refused" 2 gale image show ../etc

# --- build (the recipe's image is already in the cache)
expect "image build debian-12 reuses the cached build" 0 gale image build debian-12
grep -q present <<<"$LAST_OUT" && ok "build says the image is present" || bad "build: $LAST_OUT"
expect "image build of a published image is refused" 2 gale image build ubuntu-24.04

# --- pull
t0=$(date +%s.%N)
expect "image pull loop-qcow2" 0 gale image pull loop-qcow2
echo "    (pull took $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s)"
for stage in checksum download inspect; do grep -qw "$stage" <<<"$LAST_OUT" && ok "pull showed stage $stage" || bad "pull did not show $stage"; done
expect "image show loop-qcow2 -o json" 0 gale image show loop-qcow2 -o json
[ "$(json "d['record']['verified']" <<<"$LAST_OUT")" = "sha256:$(sha256sum <"$W/debian.qcow2.gz" | cut -d' ' -f1)" ] &&
	ok "the pulled image records the verified digest" || bad "record: $LAST_OUT"
pulled=$(json "d['path']" <<<"$LAST_OUT")
qemu-img compare -q -f qcow2 -F qcow2 "$tmpl" "$pulled" && ok "pulled image equals the served one" || bad "pulled image differs"
expect "pulling it again is immediate" 0 gale image pull loop-qcow2
grep -qw present <<<"$LAST_OUT" && ok "second pull found it present" || bad "second pull: $LAST_OUT"
expect "a pull whose connection is cut half-way" 0 gale image pull loop-cut
[ "$(grep -c '"GET /debian.qcow2.gz' "$D/cut.log")" = 2 ] && ok "it resumed with a second request" || bad "cut server log: $(cat "$D/cut.log")"
path=$(gale image show loop-cut -o json | json "d['path']")
qemu-img compare -q -f qcow2 -F qcow2 "$tmpl" "$path" && ok "the resumed image is whole and verified" || bad "resumed image differs"
expect "a wrong checksum fails the pull" 1 gale image pull loop-wrongsum
grep -q "checksum" <<<"$LAST_OUT" && ok "the failure names the checksum" || bad "wrong checksum output: $LAST_OUT"
nothing_left loop-wrongsum
expect "a decompression bomb is stopped at the size cap" 1 gale image pull loop-bomb
grep -qi "larger\|too large\|limit" <<<"$LAST_OUT" && ok "the failure names the size limit" || bad "bomb output: $LAST_OUT"
nothing_left loop-bomb
expect "an unreachable server fails the pull" 1 gale image pull loop-offline
grep -q "offline" <<<"$LAST_OUT" && ok "the failure says the host seems offline" || bad "offline output: $LAST_OUT"
nothing_left loop-offline
expect "pull of a URL without a checksum is refused" 2 gale image pull "http://127.0.0.1:$port/debian.qcow2.gz" --name byurl
sum=$(sha256sum <"$W/debian.qcow2.gz" | cut -d' ' -f1)
expect "pull of a URL with --sha256" 0 gale image pull "http://127.0.0.1:$port/debian.qcow2.gz" --name byurl --sha256 "$sum"
# Two pulls of one image at once share one download.
gale image pull loop-raw --no-wait >"$D/op1" 2>&1
gale image pull loop-raw --no-wait >"$D/op2" 2>&1
[ "$(cat "$D/op1")" = "$(cat "$D/op2")" ] && ok "a second pull joins the running one ($(cat "$D/op1"))" || bad "pulls: $(cat "$D/op1") vs $(cat "$D/op2")"
expect "delete loop-raw while its pull runs is refused" 4 gale image delete loop-raw
for _ in $(seq 1 120); do [ "$(gale image show loop-raw -o json 2>/dev/null | json "d['present']")" = True ] && break; sleep 1; done
[ "$(gale image show loop-raw -o json | json "d['present']")" = True ] && ok "the shared pull finished" || bad "loop-raw never arrived"
expect "delete loop-raw (not in use)" 0 gale image delete loop-raw
requests=$(grep -c "GET /debian.raw.zst" "$D/http.log")
[ "$requests" = 1 ] && ok "one download served the two pulls" || bad "debian.raw.zst was fetched $requests times"

# --- import every format the template can be converted to
for fmt in raw qcow2 vmdk vpc vhdx vdi; do
	qemu-img convert -f qcow2 -O "$fmt" "$tmpl" "$D/work/disk.$fmt"
done
for fmt in raw qcow2 vmdk vpc vhdx vdi; do
	args=(--name "imp-$fmt")
	[ "$fmt" = raw ] && args+=(--format raw)
	expect "import a $fmt disk" 0 gale image import "$D/work/disk.$fmt" "${args[@]}"
	grep -q "Debian GNU/Linux 12" <<<"$LAST_OUT" && ok "pre-flight of the $fmt import found Debian 12" || bad "pre-flight ($fmt): $LAST_OUT"
	path=$(gale image show "imp-$fmt" -o json | json "d['path']")
	qemu-img compare -q -f qcow2 -F qcow2 "$tmpl" "$path" && ok "imported $fmt has the template's content" || bad "imported $fmt differs"
done
loop=$(losetup -f --show -r "$D/work/disk.raw" 2>/dev/null)
if [ -n "$loop" ]; then
	expect "import a block device" 0 gale image import "$loop" --name imp-blockdev --format raw --no-preflight
	losetup -d "$loop"
	path=$(gale image show imp-blockdev -o json | json "d['path']")
	qemu-img compare -q -f qcow2 -F qcow2 "$tmpl" "$path" && ok "the block device import has the template's content" || bad "block device import differs"
else
	bad "no loop device to test a block device import"
fi
expect "import of a raw file without --format is refused" 2 gale image import "$D/work/disk.raw" --name guessme
expect "import from a stream" 0 bash -c "cat '$D/work/disk.raw' | '$repo/bin/gale' image import - --name imp-stream --format raw --no-preflight"
[ "$(gale image show imp-stream -o json | json "d['record']['source']")" = stdin ] && ok "the stream import records its source" || bad "stream record"
expect "a stream without --format is refused" 2 bash -c "echo x | '$repo/bin/gale' image import - --name nofmt"
expect "import onto a catalog name is refused" 4 gale image import "$D/work/disk.qcow2" --name debian-12
expect "import onto an imported name is refused" 4 gale image import "$D/work/disk.qcow2" --name imp-qcow2

# --- hostile inputs: each refused, nothing written, no host file read
before=$(find "$D/images" | sort | md5sum)
H=$D/work/hostile
mkdir -p "$H"
qemu-img create -q -f qcow2 -b /etc/shadow -F raw "$H/backing.qcow2" 1G
expect "qcow2 whose backing file is a host file" 2 gale image import "$H/backing.qcow2" --name evil1
grep -q "backing" <<<"$LAST_OUT" && ok "the refusal names the backing file" || bad "backing refusal: $LAST_OUT"
qemu-img create -q -f qcow2 -o data_file="$H/data.raw" "$H/datafile.qcow2" 64M
expect "qcow2 with an external data file" 2 gale image import "$H/datafile.qcow2" --name evil2
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "/etc/shadow" 0\nddb.virtualHWVersion = "4"\n' >"$H/desc.vmdk"
expect "VMDK descriptor whose extent is a host file" 2 gale image import "$H/desc.vmdk" --name evil3 --format vmdk
grep -q "/etc/shadow" <<<"$LAST_OUT" && ok "the refusal names the extent" || bad "vmdk refusal: $LAST_OUT"
qemu-img create -q -f qcow2 "$H/huge.qcow2" 100T
expect "a 100 TiB virtual size" 2 gale image import "$H/huge.qcow2" --name evil4
grep -qi "size" <<<"$LAST_OUT" && ok "the refusal names the size" || bad "huge refusal: $LAST_OUT"
head -c $(( $(stat -c %s "$D/work/disk.qcow2") / 2 )) "$D/work/disk.qcow2" >"$H/truncated.qcow2"
expect "a truncated qcow2" 2 gale image import "$H/truncated.qcow2" --name evil5
ln -sf /etc/shadow "$H/link.raw"
expect "a symlink to a host file" 2 gale image import "$H/link.raw" --name evil6 --format raw
mkfifo "$H/fifo"
expect "a FIFO (no hang)" 2 timeout 20 "$repo/bin/gale" image import "$H/fifo" --name evil7 --format raw
expect "a name with a path separator" 2 gale image import "$D/work/disk.qcow2" --name ../x
expect "a name with a slash" 2 gale image import "$D/work/disk.qcow2" --name a/b
after=$(find "$D/images" | sort | md5sum)
[ "$before" = "$after" ] && ok "hostile imports wrote nothing in the image directory" || bad "the image directory changed"
# A raw disk that starts with a qcow2 header, imported as raw, stays raw.
expect "a raw import of a file with a qcow2 header" 0 gale image import "$H/backing.qcow2" --name rawhdr --format raw --no-preflight
path=$(gale image show rawhdr -o json | json "d['path']")
qemu-img compare -q -f raw -F qcow2 "$H/backing.qcow2" "$path" && ok "it holds the file's own bytes, header not interpreted" || bad "rawhdr content differs"
# qemu rounds a raw image's size up to whole 512-byte sectors.
[ "$(gale image show rawhdr -o json | json "d['virtual_size']")" = "$(( ($(stat -c %s "$H/backing.qcow2") + 511) / 512 * 512 ))" ] &&
	ok "its size is the file's, not the 1 GiB its header claims" || bad "rawhdr size: $(gale image show rawhdr -o json)"
# Callers other than root only reach files through the import area.
gid=$(getent group gale | cut -d: -f3)
if [ -n "$gid" ]; then
	out=$(setpriv --reuid=65534 --regid="$gid" --clear-groups curl -sS --unix-socket "$GALE_SOCKET" -H 'Content-Type: application/json' \
		-d "{\"name\":\"evil8\",\"path\":\"$D/work/disk.raw\",\"format\":\"raw\"}" http://gale/v1/images/import)
	grep -q "only root" <<<"$out" && ok "a non-root caller cannot import a host path" || bad "non-root path import: $out"
	ln -sf /etc/shadow "$D/import/escape.raw"
	out=$(setpriv --reuid=65534 --regid="$gid" --clear-groups curl -sS --unix-socket "$GALE_SOCKET" -H 'Content-Type: application/json' \
		-d "{\"name\":\"evil9\",\"path\":\"$D/import/escape.raw\",\"format\":\"raw\"}" http://gale/v1/images/import)
	grep -q "out of the import area" <<<"$out" && ok "a symlink out of the import area is refused" || bad "import area escape: $out"
fi
for n in evil1 evil2 evil3 evil4 evil5 evil6 evil7 evil8 evil9 guessme nofmt; do
	[ -e "$D/images/imported/$n.qcow2" ] && bad "$n was imported"
done

# --- a VM from an image pulled on demand, ready when its port 80 answers
expect "vm create from a catalog image not pulled yet (pull on demand, ready by TCP port)" 0 \
	gale vm create web --image loop-raw --cloud-init cloudinit/web-server.yaml --ready-port 80
grep -qw pull <<<"$LAST_OUT" && ok "create showed the pull stage" || bad "create stages: $LAST_OUT"
ip=$(gale vm ip web)
page=$(curl -sS --max-time 10 "http://$ip/")
[[ "$page" == *"Hello from web"* ]] && ok "the port-ready VM serves its page" || bad "page = '$page'"

expect "vm delete web" 0 gale vm delete web

# --- a VM from an imported VMDK without cloud-init: readiness by the agent
cp --sparse=always "$D/work/disk.raw" "$D/work/nocloud.raw"
off=$(( $(sfdisk -J "$D/work/nocloud.raw" | json "d['partitiontable']['partitions'][0]['start']") * 512 ))
debugfs -w -R "rm /usr/bin/cloud-init" "$D/work/nocloud.raw?offset=$off" >/dev/null 2>&1
# ...and an fstab that names the disk the way a physical server's would.
debugfs -R "cat /etc/fstab" "$D/work/nocloud.raw?offset=$off" 2>/dev/null | sed -E 's#^(UUID|LABEL)=[^[:space:]]+([[:space:]]+/[[:space:]])#/dev/sda1\2#' >"$D/work/fstab"
grep -q "^/dev/sda1" "$D/work/fstab" || echo "/dev/sda1 / ext4 defaults 0 1" >"$D/work/fstab"
debugfs -w -R "rm /etc/fstab" "$D/work/nocloud.raw?offset=$off" >/dev/null 2>&1
debugfs -w -R "write $D/work/fstab /etc/fstab" "$D/work/nocloud.raw?offset=$off" >/dev/null 2>&1
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$D/work/nocloud.raw" "$D/work/legacy.vmdk"
vmdk_sum=$(md5sum <"$D/work/legacy.vmdk")
expect "pre-flight of a VMDK whose fstab names /dev/sda1 (no --prepare)" 0 gale image import "$D/work/legacy.vmdk" --name legacy-asis
grep -q "warn *device-names" <<<"$LAST_OUT" && ok "pre-flight warns about the device name" || bad "pre-flight: $LAST_OUT"
expect "import a VMDK without cloud-init, with --prepare" 0 gale image import "$D/work/legacy.vmdk" --name legacy --prepare
grep -q "changed *device-names" <<<"$LAST_OUT" && ok "--prepare reports the device-name change" || bad "prepare: $LAST_OUT"
qemu-img convert -f qcow2 -O raw "$(gale image show legacy -o json | json "d['path']")" "$D/work/prepared.raw"
debugfs -R "cat /etc/fstab" "$D/work/prepared.raw?offset=$off" 2>/dev/null | grep -q "^/dev/vda1" &&
	ok "the prepared image's fstab names /dev/vda1" || bad "prepared fstab: $(debugfs -R 'cat /etc/fstab' "$D/work/prepared.raw?offset=$off" 2>&1)"
rm -f "$D/work/prepared.raw"
[ "$(md5sum <"$D/work/legacy.vmdk")" = "$vmdk_sum" ] && ok "--prepare left the source VMDK unmodified" || bad "the source VMDK changed"
expect "image show legacy" 0 gale image show legacy -o json
[ "$(json "d['readiness']" <<<"$LAST_OUT")" = agent ] && ok "pre-flight chose the guest agent for readiness" || bad "readiness: $LAST_OUT"
t0=$(date +%s)
expect "vm create from the imported VMDK" 0 gale vm create legacy1 --image legacy
echo "    (create to ready: $(($(date +%s) - t0)) s)"
[ "$(gale vm show legacy1 -o json | json "d['cloud_init']")" = none ] && ok "the VM is ready without cloud-init" || bad "legacy1 cloud_init"
expect "exec in the imported VM" 0 gale vm exec legacy1 -- cat /etc/debian_version

# --- delete and prune
expect "delete an image a VM uses is refused" 4 gale image delete legacy
grep -q legacy1 <<<"$LAST_OUT" && ok "the refusal names the VM" || bad "in-use refusal: $LAST_OUT"
expect "vm delete legacy1" 0 gale vm delete legacy1
expect "delete legacy" 0 gale image delete legacy
[ -e "$D/images/imported/legacy.qcow2" ] && bad "legacy still on disk" || ok "legacy is gone"
stale=$D/images/debian-12-000000000000.qcow2
cp --sparse=always "$tmpl" "$stale"
expect "prune --dry-run" 0 gale image prune --dry-run -o json
grep -q "$stale" <<<"$LAST_OUT" && [ -e "$stale" ] && ok "dry run lists the stale build and keeps it" || bad "dry run: $LAST_OUT"
expect "prune" 0 gale image prune
[ -e "$stale" ] && bad "stale build survived prune" || ok "prune removed the stale build"
[ -e "$tmpl" ] && ok "prune kept the current template" || bad "prune removed the current template"
expect "prune --all" 0 gale image prune --all
[ -e "$D/images/imported/imp-vmdk.qcow2" ] && bad "prune --all kept an unused import" || ok "prune --all removed unused images"
