#!/usr/bin/env bash
# testenv.sh: run a command inside gale's test environment.
#
#   scripts/testenv.sh [--] CMD [ARGS...]
#
# It creates a network namespace with only loopback, and inside it (in a
# private mount namespace) starts virtlogd and libvirtd with their own, empty
# state: /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /etc/libvirt/qemu
# are fresh directories, so the host's domains and networks are neither seen
# nor touched, and every libvirt network the tests create (bridge, dnsmasq)
# lives only in the namespace. Guests get no route out: the namespace has no
# uplink. CMD runs inside with LIBVIRT_DEFAULT_URI=qemu:///system and
# GALE_TESTENV_DIR set to a directory the qemu user can read (for disks, seeds
# and console logs).
#
# On exit (success, failure or interrupt) everything in the namespace is
# killed and the namespace deleted. When CMD fails, the libvirtd log, QEMU
# logs and guest serial consoles are printed.
#
# Environment:
#   GALE_TESTENV_KEEP=1   keep the state directory after exit (for debugging)
set -euo pipefail

if [ "${1:-}" = "--inner" ]; then
	shift
	# Running inside the namespaces; $GALE_TESTENV_DIR is the state dir.
	state=$GALE_TESTENV_DIR
	for d in run lib log etc-qemu; do mkdir -p "$state/libvirt/$d"; done
	mount --bind "$state/libvirt/run" /run/libvirt 2>/dev/null || {
		mkdir -p /run/libvirt
		mount --bind "$state/libvirt/run" /run/libvirt
	}
	mount --bind "$state/libvirt/lib" /var/lib/libvirt
	mount --bind "$state/libvirt/log" /var/log/libvirt
	mount --bind "$state/libvirt/etc-qemu" /etc/libvirt/qemu
	mkdir -p /var/lib/libvirt/qemu /var/lib/libvirt/dnsmasq /var/log/libvirt/qemu
	ip link set lo up
	# Own pid files: the host's daemons, if any, hold /run/*.pid.
	virtlogd -d -p "$state/virtlogd.pid"
	LIBVIRT_LOG_OUTPUTS="3:file:$state/libvirtd.log" libvirtd -d -p "$state/libvirtd.pid"
	for _ in $(seq 1 100); do
		virsh -c qemu:///system version >/dev/null 2>&1 && break
		sleep 0.1
	done
	if ! virsh -c qemu:///system version >/dev/null 2>&1; then
		echo "testenv: libvirtd did not start in the namespace" >&2
		cat "$state/libvirtd.log" >&2 || true
		exit 1
	fi
	export LIBVIRT_DEFAULT_URI=qemu:///system
	rc=0
	"$@" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "===== testenv: command failed (exit $rc); logs follow =====" >&2
		for f in /var/log/libvirt/qemu/*.log $(find "$state" -name console.log 2>/dev/null); do
			[ -f "$f" ] || continue
			echo "----- $f (last 80 lines) -----" >&2
			tail -n 80 "$f" >&2
		done
		echo "----- libvirtd log (errors, last 60) -----" >&2
		grep -E " error ?: " "$state/libvirtd.log" | grep -v -e "agent is not connected" -e dmidecode -e udevGetDMIData -e virGDBusGetSystemBus 2>/dev/null | tail -n 60 >&2 || true
	fi
	exit "$rc"
fi

[ "${1:-}" = "--" ] && shift
if [ "$#" -eq 0 ]; then
	sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "testenv: must run as root (namespaces, libvirtd)" >&2
	exit 1
fi

ns="gale-test-$$"
# A directory the qemu user can traverse: not under a 0700 tmp dir.
install -d -m 0755 /var/lib/gale-test
state=$(mktemp -d /var/lib/gale-test/run.XXXXXX)
chmod 0755 "$state"

cleanup() {
	rc=$?
	if ip netns list 2>/dev/null | grep -qw "$ns"; then
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		if [ -n "$pids" ]; then
			kill $pids 2>/dev/null || true
			sleep 1
			pids=$(ip netns pids "$ns" 2>/dev/null || true)
			[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
		fi
		ip netns delete "$ns" 2>/dev/null || true
	fi
	if [ "${GALE_TESTENV_KEEP:-0}" = 1 ]; then
		echo "testenv: state kept in $state" >&2
	else
		rm -rf "$state"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns"
GALE_TESTENV_DIR=$state GALE_TESTENV_NS=$ns \
	ip netns exec "$ns" unshare --mount --propagation private -- "$0" --inner "$@"
