#!/usr/bin/env bash
# setup-host.sh: prepare this host to build and run gale. Idempotent.
#
#   - installs the Debian packages gale needs (build, run, image build, tests)
#   - starts virtlogd and libvirtd (systemctl when systemd runs, by hand when not)
#   - fixes /dev/kvm's group and mode (udev would, where it runs)
#   - says plainly whether guests will run with KVM or under TCG
#
# Options:
#   --no-daemons   install and fix permissions only; start no libvirtd on the
#                  host (the test environment starts its own inside a namespace)
#   --uses GROUPS  which groups of scripts/packages.txt to install, comma
#                  separated (default run,build,image; the tests add unit,e2e,lint)
#
# Every change it makes is printed as "changed: ..."; a second run prints none.
set -euo pipefail

start_daemons=1
uses=run,build,image
while [ "$#" -gt 0 ]; do
	arg=$1
	shift
	case "$arg" in
	--no-daemons) start_daemons=0 ;;
	--uses)
		[ "$#" -gt 0 ] || { echo "setup-host: --uses needs a list of groups (see scripts/packages.txt)" >&2; exit 2; }
		uses=$1
		shift
		;;
	--uses=*) uses=${arg#--uses=} ;;
	-h | --help)
		sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "setup-host: unknown option $arg (try --help)" >&2
		exit 2
		;;
	esac
done

say() { echo "setup-host: $*"; }
changed() { echo "setup-host: changed: $*"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "setup-host: must run as root (try: sudo $0)" >&2
	exit 1
fi

# Packages: the groups asked for from the one list, scripts/packages.txt.
wanted=$("$(dirname "$0")/packages.sh" "$uses") || exit 2
mapfile -t packages <<<"$wanted"
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	changed "installed ${#missing[@]} packages"
else
	say "packages: all present"
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	say "note: go is at /usr/local/go/bin; add it to PATH"
fi

# /dev/kvm: group kvm, mode 0660. Without this libvirt cannot open it as the
# qemu user, believes its capability cache is stale on every call, and each
# define takes tens of seconds.
if [ -e /dev/kvm ]; then
	if [ "$(stat -c %G /dev/kvm)" != kvm ] && getent group kvm >/dev/null; then
		chgrp kvm /dev/kvm
		changed "/dev/kvm group -> kvm"
	fi
	if [ "$(stat -c %a /dev/kvm)" != 660 ]; then
		chmod 0660 /dev/kvm
		changed "/dev/kvm mode -> 0660"
	fi
fi

# KVM, for real: ordinary guests need kvm_intel or kvm_amd. A host whose KVM
# is kvm_pvm runs only PVM guests, which counts as no KVM.
# Built-in and loadable modules both show under /sys/module.
kvm_mods=$(ls /sys/module 2>/dev/null | grep -E '^kvm(_intel|_amd|_pvm)?$' | tr '\n' ' ' || true)
if [ -e /dev/kvm ] && echo "$kvm_mods" | grep -Eq 'kvm_(intel|amd)'; then
	say "accelerator: KVM (modules: ${kvm_mods:-none})"
elif echo "$kvm_mods" | grep -q kvm_pvm; then
	say "accelerator: TCG. /dev/kvm is PVM-only (kvm_pvm, no kvm_intel/kvm_amd): ordinary guests cannot use it, so they run under QEMU's software emulation, several times slower"
else
	say "accelerator: TCG. No usable KVM (/dev/kvm $([ -e /dev/kvm ] && echo present || echo missing), modules: ${kvm_mods:-none}): guests run under QEMU's software emulation"
fi

# gale's group owns the API socket.
if ! getent group gale >/dev/null; then
	groupadd --system gale
	changed "created group gale"
fi
if [ ! -d /var/lib/gale ]; then
	install -d -m 0755 /var/lib/gale /var/lib/gale/images
	changed "created /var/lib/gale"
fi

[ "$start_daemons" -eq 1 ] || exit 0

if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
	for unit in virtlogd.socket libvirtd.service; do
		if ! systemctl is-active --quiet "$unit"; then
			systemctl enable --now "$unit"
			changed "started $unit"
		fi
	done
else
	mkdir -p /run/libvirt
	if ! pgrep -x virtlogd >/dev/null; then
		virtlogd -d
		changed "started virtlogd"
	fi
	if ! pgrep -x libvirtd >/dev/null; then
		libvirtd -d
		changed "started libvirtd"
	fi
fi
for _ in $(seq 1 50); do
	virsh -c qemu:///system version >/dev/null 2>&1 && break
	sleep 0.2
done
if virsh -c qemu:///system version >/dev/null 2>&1; then
	say "libvirtd: reachable at qemu:///system"
else
	echo "setup-host: libvirtd does not answer at qemu:///system; see /var/log/libvirt/libvirtd.log" >&2
	exit 1
fi
