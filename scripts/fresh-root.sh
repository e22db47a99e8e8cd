#!/usr/bin/env bash
# fresh-root.sh: prove that scripts/packages.txt is complete. In a bare
# Debian 12 root (mmdebstrap, minbase), with a clean clone of this
# repository's HEAD, it runs the host set-up (only the packages the list
# names) and the unit tests with GALE_REQUIRE_TOOLS=1, so a test whose tool
# is missing from the list fails instead of skipping.
#
#   scripts/fresh-root.sh [--without PACKAGE]...
#
#   --without PACKAGE  drop PACKAGE from the clone's list first: the check
#                      must then fail (this is how the check itself is tested)
#
# Root only. The bare root is cached under /var/cache/gale/fresh-root (about
# 170 MB; rebuilt weekly) with the downloaded .debs; everything else is made
# anew and removed on exit.
# Go comes from the host (/usr/local/go, read-only), and so do the module
# and build caches, so no Go module is fetched inside (GOPROXY=off): what is
# checked here is the host packages. It prints its own duration.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PATH=$PATH:/usr/local/go/bin
start=$(date +%s)

without=()
while [ "$#" -gt 0 ]; do
	case "$1" in
	--without)
		[ "$#" -ge 2 ] || { echo "fresh-root: --without needs a package name" >&2; exit 2; }
		without+=("$2")
		shift 2
		;;
	-h | --help)
		sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "fresh-root: unknown argument $1 (try --help)" >&2
		exit 2
		;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh-root: must run as root (chroot, mounts)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "fresh-root: mmdebstrap missing: run scripts/setup-host.sh first" >&2; exit 1; }
say() { echo "fresh-root: $*"; }

# The mirror: the host's first Debian source for bookworm, as the image
# builder picks it.
mirror=$(awk '/^URIs:/{u=$2} /^Suites:/ && /bookworm( |$)/{print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $3=="bookworm"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

cache=/var/cache/gale/fresh-root
base=$cache/bookworm-minbase-$(date +%G-%V).tar
mkdir -p "$cache"
if [ ! -s "$base" ]; then
	rm -f "$cache"/bookworm-minbase-*.tar
	say "building a bare Debian 12 root from $mirror (cached weekly in $cache)"
	mmdebstrap --quiet --variant=minbase --format=tar bookworm "$base.part" "$mirror" >/dev/null
	mv "$base.part" "$base"
fi

work=$(mktemp -d /var/tmp/gale-fresh-root.XXXXXX)
root=$work/root
mounts=()
cleanup() {
	local i
	# Network namespaces the tests made inside (ip netns bind-mounts them
	# under /run/netns) go first.
	for m in "$root"/run/netns/* "$root/run/netns"; do
		umount -l "$m" 2>/dev/null || true
	done
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount -l "${mounts[$i]}" 2>/dev/null || true
	done
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
bind() { # bind SRC DST [ro]
	mkdir -p "$2"
	mount --bind "$1" "$2"
	mounts+=("$2")
	if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

mkdir -p "$root"
tar -C "$root" -xf "$base"
git clone -q --no-local "$repo" "$root/src/gale"
for p in "${without[@]}"; do
	grep -q "^$p " "$root/src/gale/scripts/packages.txt" || { echo "fresh-root: $p is not in scripts/packages.txt" >&2; exit 2; }
	sed -i "/^$p /d" "$root/src/gale/scripts/packages.txt"
	say "dropped $p from the list: the check must fail"
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
# No daemon starts inside the chroot (there is no init to own it).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

# The root is a mount point of its own, as / is on a real system: ip(8)
# remounts / when it enters a network namespace (the load balancer's tests
# make some), which fails on a plain directory.
bind "$root" "$root"
gomodcache=$(go env GOMODCACHE)
gocache=$(go env GOCACHE)
(cd "$repo" && go mod download)
bind /proc "$root/proc"
bind /sys "$root/sys"
bind /dev "$root/dev"
bind /usr/local/go "$root/usr/local/go" ro
bind "$gomodcache" "$root/root/go/pkg/mod"
bind "$gocache" "$root/root/.cache/go-build"
# Downloaded .debs are kept between runs on this machine (the install still
# happens each time: that is what is checked).
mkdir -p "$cache/debs/partial"
bind "$cache/debs" "$root/var/cache/apt/archives"

say "host set-up and unit tests in the bare root"
rc=0
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin \
	GOPROXY=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local GALE_REQUIRE_TOOLS=1 \
	/bin/bash -c 'set -euo pipefail
		cd /src/gale
		scripts/setup-host.sh --no-daemons --uses run,build,image,unit
		go test -count=1 ./...' || rc=$?
say "done in $(($(date +%s) - start)) s: $([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)")"
exit "$rc"
