# galed.sh: shell helpers for scripts that run a private galed inside the
# test environment (end-to-end tests, benchmarks). Source it from the
# repository root; it expects bin/gale and bin/galed to be built.

# galed_config DIR CIDR TEMPLATE LOG_LEVEL: write DIR/galed.yaml for a galed
# with its socket and data in DIR, the repository's catalog, TEMPLATE's cache
# directory, and an isolated default network on CIDR (host address/prefix).
galed_config() {
	local dir=$1 cidr=$2 template=$3 level=$4
	mkdir -p "$dir"
	cat >"$dir/galed.yaml" <<YAML
socket: $dir/gale.sock
data_dir: $dir/data
image_dir: $(dirname "$template")
catalog_dir: $PWD/images
libvirt_uri: qemu:///system
accel: auto
log_level: $level
default_network:
  name: gale-default
  mode: isolated
  cidr: $cidr
YAML
}

# galed_start DIR: start bin/galed with DIR/galed.yaml (log appended to
# DIR/galed.log), export GALE_SOCKET, set GALED_PID, and wait until it
# answers. Returns non-zero, with the log's tail, if it does not come up.
galed_start() {
	local dir=$1
	bin/galed --config "$dir/galed.yaml" >>"$dir/galed.log" 2>&1 &
	GALED_PID=$!
	export GALE_SOCKET=$dir/gale.sock
	for _ in $(seq 1 100); do
		bin/gale version >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "galed did not come up; its log:" >&2
	tail -n 50 "$dir/galed.log" >&2
	return 1
}
