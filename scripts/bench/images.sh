#!/usr/bin/env bash
# bench/images.sh: image import and pull throughput, side by side with the
# plain tools in the same run, inside the test environment:
#   import  `gale image import FILE` (path read in place, --no-preflight and
#           with pre-flight) against `qemu-img convert -O qcow2` of the same
#           file, for a raw and a vmdk source;
#   pull    `gale image pull URL --sha256` from a loopback HTTP server
#           against `curl -o` of the same URL (+ sha256sum, which gale does
#           while downloading).
# Prints Markdown tables (hyperfine) for docs/benchmarks.md.
#
#   scripts/bench/images.sh [RUNS]     (default 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
runs=${1:-5}

if [ "${GALE_BENCH_INNER:-}" != 1 ]; then
	scripts/setup-host.sh --no-daemons --uses run,build,image,e2e,bench >/dev/null
	template=$(scripts/build-image.sh images/debian-12.yaml | tail -n 1)
	make --no-print-directory build >/dev/null
	GALE_BENCH_INNER=1 GALE_BENCH_TEMPLATE=$template exec scripts/testenv.sh "$0" "$runs"
fi

work=$GALE_TESTENV_DIR/bench-images
mkdir -p "$work/images" "$work/www"
chmod 0755 "$work" "$work/images"
. scripts/lib/galed.sh
tmpl=$work/images/$(basename "$GALE_BENCH_TEMPLATE")
cp --sparse=always "$GALE_BENCH_TEMPLATE" "$tmpl"
galed_config "$work" 192.168.152.1/24 "$tmpl" warn
GALED_PID=
http_pid=
trap 'kill $GALED_PID $http_pid 2>/dev/null' EXIT
galed_start "$work"

# The source: the template as a 4 GiB raw disk, plus 1 GiB of incompressible
# data after the file system (a server disk is not all zeros).
src=$work/server.raw
qemu-img convert -f qcow2 -O raw "$tmpl" "$src"
truncate -s 4G "$src"
dd if=/dev/urandom of="$src" bs=1M seek=2560 count=1024 conv=notrunc status=none
qemu-img convert -f raw -O vmdk "$src" "$work/server.vmdk"
sync
echo "source: 4 GiB virtual, $(du -m "$src" | cut -f1) MiB allocated (raw), $(du -m "$work/server.vmdk" | cut -f1) MiB (vmdk)"

# sync: the previous run's output must not be written back during the next.
reset_import="bin/gale image delete bench >/dev/null 2>&1 || true; rm -f $work/plain.qcow2; sync"
for fmt in raw vmdk; do
	f=$work/server.$fmt
	hyperfine --runs "$runs" --warmup 1 --export-markdown "$work/import-$fmt.md" --prepare "$reset_import" \
		-n "qemu-img convert -O qcow2 ($fmt)" "qemu-img convert -f $fmt -O qcow2 $f $work/plain.qcow2" \
		-n "gale image import --no-preflight --no-checksum ($fmt)" "bin/gale image import $f --name bench --format $fmt --no-preflight --no-checksum" \
		-n "gale image import --no-preflight ($fmt, sha256)" "bin/gale image import $f --name bench --format $fmt --no-preflight" \
		-n "gale image import ($fmt, sha256 and pre-flight)" "bin/gale image import $f --name bench --format $fmt" >/dev/null
	cat "$work/import-$fmt.md"
	echo
done

# Pull: a 1 GiB image served from loopback.
qemu-img convert -f raw -O qcow2 "$src" "$work/www/server.qcow2"
sum=$(sha256sum "$work/www/server.qcow2" | cut -d' ' -f1)
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" 18081 >/dev/null 2>&1 &
http_pid=$!
for _ in $(seq 1 50); do curl -sf -o /dev/null -r 0-0 http://127.0.0.1:18081/server.qcow2 && break; sleep 0.1; done
size=$(du -m "$work/www/server.qcow2" | cut -f1)
reset_pull="bin/gale image delete pulled >/dev/null 2>&1 || true; rm -rf $work/images/.downloads $work/curl.qcow2; sync"
hyperfine --runs "$runs" --warmup 1 --export-markdown "$work/pull.md" --prepare "$reset_pull" \
	-n "curl -o ($size MiB)" "curl -sS -o $work/curl.qcow2 http://127.0.0.1:18081/server.qcow2" \
	-n "curl -o + sha256sum ($size MiB)" "curl -sS -o $work/curl.qcow2 http://127.0.0.1:18081/server.qcow2 && sha256sum $work/curl.qcow2" \
	-n "gale image pull URL --sha256 ($size MiB)" "bin/gale image pull http://127.0.0.1:18081/server.qcow2 --name pulled --sha256 $sum" >/dev/null
cat "$work/pull.md"
