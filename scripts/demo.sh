#!/usr/bin/env bash
# demo.sh: gale's main job on a fresh Debian 12 host, as root.
#
#   scripts/demo.sh            set up the host, build the default template if
#                              missing, boot VM "demo" from it in an isolated
#                              network, wait for cloud-init, print its address
#   scripts/demo.sh --delete   delete VM "demo"
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
if [ "${1:-}" = "--delete" ]; then
	exec go run ./scripts/demo -delete -name demo
fi
scripts/setup-host.sh
template=$(scripts/build-image.sh images/debian-12.yaml | tail -n 1)
go run ./scripts/demo -template "$template" -name demo -replace
