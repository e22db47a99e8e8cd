#!/bin/sh
# Build a gale VM template if the image cache lacks it.
# Usage: scripts/build-image.sh [images/debian-12.yaml]
# Prints the qcow2 path as the last line of stdout; progress goes to stderr.
# Needs root. GALE_IMAGE_CACHE overrides the cache directory
# (default /var/lib/gale/images); GALE_IMAGE_MIRROR overrides the Debian mirror.
set -eu
cd "$(dirname "$0")/.."
template=${1:-images/debian-12.yaml}
exec go run ./pkg/image/cmd/build-image -cache "${GALE_IMAGE_CACHE:-/var/lib/gale/images}" "$template"
