#!/usr/bin/env bash
# packages.sh GROUPS: print the Debian packages of scripts/packages.txt that
# belong to any of GROUPS (comma separated, e.g. run,build,unit), one a line,
# each once. An unknown group is an error, so a typo cannot install nothing.
#
#   scripts/packages.sh run,build,image
set -euo pipefail
list="$(dirname "$0")/packages.txt"
[ "$#" -eq 1 ] && [ -n "$1" ] || { echo "usage: $0 GROUP[,GROUP...]" >&2; exit 2; }
awk -v want="$1" '
	BEGIN { n = split(want, w, ","); for (i = 1; i <= n; i++) asked[w[i]] = 1 }
	{ sub(/#.*/, "") }
	NF == 0 { next }
	NF != 2 { printf "packages.txt:%d: want PACKAGE GROUPS, got: %s\n", NR, $0 > "/dev/stderr"; bad = 1; next }
	{
		m = split($2, g, ",")
		for (i = 1; i <= m; i++) {
			known[g[i]] = 1
			if ((g[i] in asked) && !($1 in seen)) { seen[$1] = 1; print $1 }
		}
	}
	END {
		for (a in asked) if (!(a in known)) { printf "packages.sh: unknown group %s (see %s)\n", a, FILENAME > "/dev/stderr"; bad = 1 }
		exit bad
	}' "$list"
