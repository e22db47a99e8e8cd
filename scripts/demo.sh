#!/usr/bin/env bash
# demo.sh: gale's main job on a fresh Debian 12 host, as root.
#
#   scripts/demo.sh            set up the host, build and install gale, build
#                              the default template if missing, start galed,
#                              create VM "demo" with the web-server snippet and
#                              print its address and its page
#   scripts/demo.sh --delete   delete VM "demo"
#
# The VM joins galed's default network, gale-default: isolated (no route out
# of the host), 192.168.150.0/24.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/local/bin

if [ "${1:-}" = "--delete" ]; then
	exec gale vm delete demo
fi

scripts/setup-host.sh
make --no-print-directory install
scripts/build-image.sh images/debian-12.yaml >/dev/null

if ! gale version >/dev/null 2>&1; then
	mkdir -p /var/log/gale
	echo "demo: starting galed (log: /var/log/gale/galed.log)"
	nohup galed >>/var/log/gale/galed.log 2>&1 &
	for _ in $(seq 1 100); do
		gale version >/dev/null 2>&1 && break
		sleep 0.2
	done
fi
gale version

if gale vm show demo >/dev/null 2>&1; then
	echo "demo: replacing the existing VM demo"
	gale vm delete demo
fi
gale vm create demo --image debian-12 --cloud-init cloudinit/web-server.yaml
ip=$(gale vm ip demo)
echo
echo "demo: VM demo is at $ip; its page:"
curl -sS --max-time 10 "http://$ip/"
echo
echo "demo: try  gale vm list | gale vm ssh demo | gale vm exec demo -- uptime | gale vm delete demo"
