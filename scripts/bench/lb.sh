#!/usr/bin/env bash
# bench/lb.sh: gale's kernel load balancer (pkg/lb, nftables DNAT) against
# going straight to one backend and against HAProxy (tcp mode, roundrobin),
# side by side in one run. Everything happens inside network namespaces
# this script makes and removes on exit; no packet leaves them:
#
#   client (10.80.0.2) ── veth ── host (10.80.0.1; bridge 10.79.0.1/24) ── b1 b2 b3 (10.79.0.11-13:8080)
#
# The backends are tiny Go HTTP servers (scripts/bench/lbload serve). The
# client runs wrk (2 threads, 50 connections, DURATION seconds per case,
# after a 1 s warm-up) against:
#   direct   http://10.79.0.11:8080/  routed through the host, no NAT
#   gale     http://10.80.0.1:8080/   the set's table: DNAT roundrobin
#   haproxy  http://10.80.0.1:8081/   HAProxy in the host namespace
# each with keep-alive connections, with one connection per request
# (Connection: close), and with a single keep-alive connection (light load:
# the latency the path adds, without queueing), and prints a Markdown table: requests/s, p50, p99,
# p99 added over direct, and wrk's errors.
#
#   scripts/bench/lb.sh [DURATION]    (seconds, default 10; root)
#
# Needs wrk, haproxy (scripts/packages.txt group bench), iproute2 and Go.
# All the processes share the machine's cores: the numbers compare the
# three paths on one host, they are no capacity figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
duration=${1:-10}
[ "$(id -u)" -eq 0 ] || { echo "lb.sh: must run as root (network namespaces)" >&2; exit 1; }
for tool in ip wrk haproxy go; do
	command -v "$tool" >/dev/null || { echo "lb.sh: $tool missing (scripts/setup-host.sh --uses build,bench)" >&2; exit 1; }
done

ns=gale-lbbench-$$
host=$ns-host
client=$ns-client
work=$(mktemp -d /tmp/gale-lbbench.XXXXXX)
pids=()
namespaces=()
cleanup() {
	local p n
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
nsx() { local n=$1; shift; ip netns exec "$n" "$@"; }
sysctl_in() { nsx "$1" sh -c "echo $3 > /proc/sys/$2"; }
newns() { ip netns add "$1"; namespaces+=("$1"); ip -n "$1" link set lo up; }

go build -o "$work/lbload" ./scripts/bench/lbload

# The host: a bridge for the backends, a link to the client, forwarding.
newns "$host"
ip -n "$host" link add br0 type bridge
ip -n "$host" addr add 10.79.0.1/24 dev br0
ip -n "$host" link set br0 up
sysctl_in "$host" net/ipv4/ip_forward 1
# Keep conntrack's table small across the connection-per-request runs.
sysctl_in "$host" net/netfilter/nf_conntrack_tcp_timeout_time_wait 2 2>/dev/null || true

newns "$client"
ip -n "$host" link add vclient type veth peer name eth0 netns "$client"
ip -n "$host" addr add 10.80.0.1/24 dev vclient
ip -n "$host" link set vclient up
ip -n "$client" addr add 10.80.0.2/24 dev eth0
ip -n "$client" link set eth0 up
ip -n "$client" route add default via 10.80.0.1
sysctl_in "$client" net/ipv4/ip_local_port_range "1024 65535"

backends=
for i in 1 2 3; do
	b=$ns-b$i
	addr=10.79.0.1$i
	newns "$b"
	ip -n "$host" link add vb$i type veth peer name eth0 netns "$b"
	ip -n "$host" link set vb$i master br0 up
	ip -n "$b" addr add $addr/24 dev eth0
	ip -n "$b" link set eth0 up
	ip -n "$b" route add default via 10.79.0.1
	ip netns exec "$b" "$work/lbload" serve -name b$i -listen :8080 &
	pids+=($!)
	backends+=${backends:+,}b$i=$addr
done

# gale: the set's table in the host namespace.
"$work/lbload" apply -netns "/run/netns/$host" -set bench -front 10.80.0.1:8080 -backport 8080 \
	-mode roundrobin -backends "$backends" -network 10.79.0.1/24 -bridge br0

# HAProxy: tcp mode, roundrobin, over the same backends.
cat >"$work/haproxy.cfg" <<EOF
global
	maxconn 4096
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend fe
	bind 10.80.0.1:8081
	default_backend be
backend be
	balance roundrobin
	server b1 10.79.0.11:8080
	server b2 10.79.0.12:8080
	server b3 10.79.0.13:8080
EOF
ip netns exec "$host" haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)

# Wait until every path answers. (Background processes are started with
# ip netns exec directly, which execs them: $! is theirs, for the cleanup.)
ready() { nsx "$client" wrk -t1 -c1 -d1s "$1" 2>/dev/null | grep -q '^Requests/sec'; }
for url in http://10.79.0.11:8080/ http://10.79.0.12:8080/ http://10.79.0.13:8080/ http://10.80.0.1:8080/ http://10.80.0.1:8081/; do
	for _ in $(seq 50); do
		ready "$url" && break
		sleep 0.2
	done
	ready "$url" || { echo "lb.sh: $url does not answer" >&2; cat "$work/haproxy.log" >&2; exit 1; }
done

# run NAME URL CONNMODE: one wrk case; appends "name conn rps p50 p99 errors"
# (latencies in ms) to $work/results.
run() {
	local name=$1 url=$2 conn=$3 hdr=() load=(-t2 -c50)
	[ "$conn" = close ] && hdr=(-H "Connection: close")
	# light: one keep-alive connection, one request at a time: the added
	# latency of the path itself, without queueing on the shared cores.
	[ "$conn" = light ] && load=(-t1 -c1)
	nsx "$client" wrk "${load[@]}" -d1s "${hdr[@]}" "$url" >/dev/null 2>&1 || true
	nsx "$client" wrk "${load[@]}" -d"${duration}s" --latency "${hdr[@]}" "$url" >"$work/$name-$conn.txt"
	awk -v name="$name" -v conn="$conn" '
		function ms(v) {
			if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
			if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
			if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
			return v
		}
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		/^Requests\/sec:/ { rps = $2 }
		/Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
		/Non-2xx/ { err += $NF }
		END { printf "%s %s %s %s %s %d\n", name, conn, rps, p50, p99, err }
	' "$work/$name-$conn.txt" >>"$work/results"
}

for conn in keepalive close light; do
	run direct http://10.79.0.11:8080/ "$conn"
	run gale http://10.80.0.1:8080/ "$conn"
	run haproxy http://10.80.0.1:8081/ "$conn"
done

echo "Load balancer, $(nproc) cores, Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "wrk -t2 -c50 -d${duration}s (light: -t1 -c1); $(haproxy -v | head -n 1 | awk '{print "HAProxy", $3}'); backends: 3 Go HTTP servers (scripts/bench/lbload)"
echo
echo "| path | connections | requests/s | p50 (ms) | p99 (ms) | p99 added vs direct (ms) | errors |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
awk '
	{ name[NR] = $1; conn[NR] = $2; rps[NR] = $3; p50[NR] = $4; p99[NR] = $5; err[NR] = $6
	  if ($1 == "direct") base[$2] = $5 }
	END {
		for (i = 1; i <= NR; i++) {
			c = conn[i] == "close" ? "one per request" : conn[i] == "light" ? "1 keep-alive connection" : "50 keep-alive"
			added = name[i] == "direct" ? "-" : sprintf("%+.2f", p99[i] - base[conn[i]])
			printf "| %s | %s | %.0f | %.2f | %.2f | %s | %d |\n", name[i], c, rps[i], p50[i], p99[i], added, err[i]
		}
	}' "$work/results"
