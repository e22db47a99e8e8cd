#!/usr/bin/env bash
# e2e-cli.sh: end-to-end test of galed and the gale CLI on real VMs.
# Runs inside scripts/testenv.sh (scripts/e2e.sh arranges it); needs
# bin/gale and bin/galed built and GALE_E2E_TEMPLATE (a built debian-12).
#
# Scenario: create a VM with the web-server snippet and read its page, list,
# show, exec, ssh, stop/start (page comes back), refuse bad input without
# leaving anything, kill galed with SIGKILL mid-create and show that reconcile
# leaves no leak, delete, and check that nothing is left.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
: "${GALE_TESTENV_DIR:?run me through scripts/testenv.sh}"
: "${GALE_E2E_TEMPLATE:?set GALE_E2E_TEMPLATE to a built debian-12 image}"

D=$GALE_TESTENV_DIR/cli
mkdir -p "$D"
chmod 0755 "$D"
export GALE_SOCKET=$D/gale.sock
gale() { "$repo/bin/gale" "$@"; }
# wait_page WHAT TRIES: fetch web's page (its address may change), retrying
# every 2 s, and check it names the VM.
wait_page() {
	local page="" ip
	for _ in $(seq 1 "$2"); do
		ip=$(gale vm ip web 2>/dev/null) && page=$(curl -sS --max-time 5 "http://$ip/" 2>/dev/null) && break
		sleep 2
	done
	[[ "$page" == *"Hello from web"* ]] && ok "page is back $1" || bad "page $1 = '$page'"
}
. scripts/lib/check.sh

# galed for this run: its own data dir and socket, the repository's catalog,
# the shared template cache, an isolated default network.
. scripts/lib/galed.sh
galed_config "$D" 192.168.150.1/24 "$GALE_E2E_TEMPLATE" debug
GALED_PID=
start_galed() { galed_start "$D"; }
repo_pid=
finish() {
	[ -n "$repo_pid" ] && kill "$repo_pid" 2>/dev/null
	[ -n "$GALED_PID" ] && kill "$GALED_PID" 2>/dev/null
	echo
	if [ "$failed" -ne 0 ]; then
		echo "----- galed log (last 60 lines) -----"
		tail -n 60 "$D/galed.log"
	fi
	echo "e2e-cli: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
trap 'finish; exit $?' EXIT

start_galed || exit 1
expect "gale version reaches galed" 0 gale version
expect "a second galed refuses the locked data dir" 1 "$repo/bin/galed" --config "$D/galed.yaml" --socket "$D/other.sock"
grep -q "locked" <<<"$LAST_OUT" && ok "second galed says the data dir is locked" || bad "second galed message: $LAST_OUT"

# --- host checks, images, networks (no VM needed).
expect "gale doctor passes in the test environment" 0 gale doctor
expect "gale image list -o json" 0 gale image list -o json
[ "$(json "[i['name'] for i in d if i['present']]" <<<"$LAST_OUT")" = "['debian-12']" ] && ok "image list shows debian-12 built" || bad "image list: $LAST_OUT"
expect "network create lab (isolated)" 0 gale network create lab --mode isolated --cidr 192.168.160.1/24
expect "network list -o yaml" 0 gale network list -o yaml
grep -q "name: lab" <<<"$LAST_OUT" && ok "network list shows lab" || bad "network list: $LAST_OUT"
virsh net-dumpxml lab | grep -q "<forward" && bad "isolated network lab has a <forward>" || ok "lab has no <forward>: no route out"
expect "network create lab again is a conflict" 4 gale network create lab --mode isolated --cidr 192.168.161.1/24
expect "network create with a bad CIDR is refused" 2 gale network create lab2 --mode isolated --cidr 300.1.1.1/24
expect "network delete lab" 0 gale network delete lab
virsh net-info lab >/dev/null 2>&1 && bad "lab still defined in libvirt" || ok "lab is gone from libvirt"

# --- create with the web-server snippet; flags after the name on purpose.
t0=$(date +%s)
expect "vm create web with the web-server snippet" 0 gale vm create web --image debian-12 --cloud-init cloudinit/web-server.yaml --memory 1G --disk 4G
echo "$LAST_OUT" | sed 's/^/    /'
echo "    (create to ready: $(($(date +%s) - t0)) s)"
for stage in disk seed define boot agent ready; do
	grep -qw "$stage" <<<"$LAST_OUT" && ok "create showed stage $stage" || bad "create did not show stage $stage"
done
ip=$(gale vm ip web)
[[ "$ip" == 192.168.150.* ]] && ok "vm ip web = $ip" || bad "vm ip web = '$ip'"
# The snippet's last runcmd waits until the page answers, so ready means serving.
page=$(curl -sS --max-time 10 "http://$ip/")
[[ "$page" == *"Hello from web"* ]] && ok "page served by the snippet's unit" || bad "page = '$page'"

expect "vm list -o json" 0 gale vm list -o json
[ "$(json "[v['name'] for v in d if v['state']=='running' and v['cloud_init']=='done']" <<<"$LAST_OUT")" = "['web']" ] &&
	ok "list shows web running, cloud-init done" || bad "list: $LAST_OUT"
expect "vm show -o yaml" 0 gale vm show web -o yaml
grep -q "image: debian-12" <<<"$LAST_OUT" && ok "show names the image" || bad "show: $LAST_OUT"

expect "vm exec returns the guest's exit code" 7 gale vm exec web -- sh -c 'echo out; echo err >&2; exit 7'
grep -q out <<<"$LAST_OUT" && grep -q err <<<"$LAST_OUT" && ok "exec passes stdout and stderr" || bad "exec output: $LAST_OUT"
out=$(gale vm ssh web -- cat /etc/hostname 2>&1)
[ "$out" = web ] && ok "vm ssh runs a command as the login user" || bad "vm ssh: $out"
expect "vm logs" 0 gale vm logs web
grep -q "Cloud-init" <<<"$LAST_OUT" && ok "logs show cloud-init output" || bad "logs: $(tail -n 3 <<<"$LAST_OUT")"

# --- stop and start: the unit brings the page back.
expect "vm stop web" 0 gale vm stop web
[ "$(gale vm show web -o json | json "d['state']")" = stopped ] && ok "web is stopped" || bad "state after stop"
expect "vm start web" 0 gale vm start web
expect "vm wait web" 0 gale vm wait web --timeout 5m
wait_page "after stop/start" 30

# --- libvirtd restarts under galed: it reconnects and keeps serving.
ours=$(readlink /proc/self/ns/net)
lvpid=
for p in $(pgrep -x libvirtd); do
	[ "$(readlink /proc/$p/ns/net)" = "$ours" ] && lvpid=$p
done
if [ -n "$lvpid" ]; then
	kill -TERM "$lvpid"
	for _ in $(seq 1 50); do kill -0 "$lvpid" 2>/dev/null || break; sleep 0.1; done
	expect "galed answers 503-style while libvirtd is down" 7 gale vm list
	LIBVIRT_LOG_OUTPUTS="3:file:$GALE_TESTENV_DIR/libvirtd.log" libvirtd -d -p "$GALE_TESTENV_DIR/libvirtd.pid"
	for _ in $(seq 1 60); do gale vm exec web -- true >/dev/null 2>&1 && break; sleep 1; done
	expect "exec works after libvirtd restarted" 0 gale vm exec web -- true
	expect "list works after libvirtd restarted" 0 gale vm list -o json
	[ "$(json "[v['state'] for v in d]" <<<"$LAST_OUT")" = "['running']" ] && ok "web still running after the restart" || bad "list after restart: $LAST_OUT"
else
	bad "could not find this namespace's libvirtd"
fi

# --- a VM recorded as running comes back: power it off while galed is down.
kill -TERM "$GALED_PID"
wait "$GALED_PID" 2>/dev/null
GALED_PID=
virsh -q destroy web >/dev/null
start_galed || exit 1
state=""
for _ in $(seq 1 30); do
	state=$(virsh domstate web 2>/dev/null)
	[ "$state" = running ] && break
	sleep 1
done
[ "$state" = running ] && ok "galed restarted web, which was recorded as running" || bad "web after galed restart: $state"
expect "vm wait web after galed restarted it" 0 gale vm wait web --timeout 5m
wait_page "after galed restarted web" 60

# --- bad input: refused, non-zero, nothing created.
snapshot() { (virsh list --all --name | sort; ls "$D/data/vms" 2>/dev/null) | tr '\n' ' '; }
before=$(snapshot)
printf '#cloud-config\nruncmd: [\n' >"$D/broken.yaml"
head -c 70000 /dev/zero | tr '\0' 'a' | sed '1s/^/#!\/bin\/sh\n/' >"$D/huge.sh"
expect "name ../x refused" 2 gale vm create ../x --image debian-12
expect "name a/b refused" 2 gale vm create a/b --image debian-12
expect "name -x refused" 2 gale vm create --image debian-12 -- -x
expect "64-character name refused" 2 gale vm create "$(printf 'a%.0s' $(seq 1 64))" --image debian-12
expect "XML metacharacters refused" 2 gale vm create '<a&b>' --image debian-12
expect "unknown image refused" 2 gale vm create x1 --image no-such-image
expect "unknown network refused" 2 gale vm create x1 --image debian-12 --network no-such-net
expect "invalid cloud-config refused" 2 gale vm create x1 --image debian-12 --cloud-init "$D/broken.yaml"
grep -q "line" <<<"$LAST_OUT" && ok "cloud-config error names the line" || bad "cloud-config error: $LAST_OUT"
expect "user-data over the limit refused" 2 gale vm create x1 --image debian-12 --cloud-init "$D/huge.sh"
expect "memory beyond the host refused" 6 gale vm create x1 --image debian-12 --memory 100T
expect "disk beyond the host refused" 6 gale vm create x1 --image debian-12 --disk 100T
expect "duplicate name refused" 4 gale vm create web --image debian-12
[ "$(snapshot)" = "$before" ] && ok "bad input left nothing behind" || bad "bad input changed state: '$before' -> '$(snapshot)'"

# --- a second operation on a busy VM gets 409 at once; delete mid-create is refused.
expect "create busy --no-wait" 0 gale vm create busy --image debian-12 --no-wait
expect "deleting a VM mid-create is refused" 4 gale vm delete busy
# --- kill galed with SIGKILL mid-create; reconcile must leave no leak.
sleep 3
kill -9 "$GALED_PID"
wait "$GALED_PID" 2>/dev/null
GALED_PID=
start_galed || exit 1
sleep 1
if gale vm show busy >/dev/null 2>&1; then
	# Killed after the boot began: reconcile resumes the create, which finishes.
	expect "the create cut by SIGKILL finishes after the restart" 0 gale vm wait busy --timeout 5m
	[ "$(gale vm show busy -o json | json "d['state'] + '/' + d['cloud_init']")" = running/done ] &&
		ok "busy is running, cloud-init done" || bad "busy after the resumed create: $(gale vm show busy 2>&1)"
	expect "delete the VM caught mid-create" 0 gale vm delete busy
fi
virsh list --all --name | grep -qx busy && bad "domain busy leaked" || ok "no domain leaked after SIGKILL"
[ -e "$D/data/vms/busy" ] && bad "files of busy leaked" || ok "no files leaked after SIGKILL"
expect "the name is reusable after the crash" 0 gale vm create busy --image debian-12 --no-wait
# --- stop galed gracefully mid-create: the next start rolls the create back or adopts it.
sleep 2
kill -TERM "$GALED_PID"
wait "$GALED_PID" 2>/dev/null
GALED_PID=
start_galed || exit 1
if gale vm show busy >/dev/null 2>&1; then
	expect "the create cut by a graceful stop finishes after the restart" 0 gale vm wait busy --timeout 5m
	expect "delete the VM caught by a graceful stop" 0 gale vm delete busy
fi
virsh list --all --name | grep -qx busy && bad "domain busy leaked after a graceful stop" || ok "no domain leaked after a graceful stop"
[ -e "$D/data/vms/busy" ] && bad "files of busy leaked after a graceful stop" || ok "no files leaked after a graceful stop"

# --- delete: nothing left.
mac=$(gale vm show web -o json | json "d.get('mac','')")
expect "vm stop web (the guest releases its lease)" 0 gale vm stop web
expect "vm delete web" 0 gale vm delete web
expect "vm show web after delete" 3 gale vm show web
[ -z "$(virsh list --all --name | grep -v '^$')" ] && ok "no domains left" || bad "domains left: $(virsh list --all --name)"
[ -z "$(ls -A "$D/data/vms" 2>/dev/null)" ] && ok "no VM files left" || bad "files left: $(ls -A "$D/data/vms")"
[ "$(gale vm list -o json | json "len(d)")" = 0 ] && ok "vm list is empty" || bad "vm list not empty"
virsh net-dhcp-leases gale-default | grep -qi "$mac" && bad "lease of web left" || ok "no lease left for web ($mac)"

# --- the developer-toolbox snippet. It installs packages; the guests have no
# route out, so a local repository (scripts/e2e-repo.sh, made before the
# namespace) stands in for the Debian mirror, served on the bridge's address.
if [ -n "${GALE_E2E_REPO:-}" ]; then
	python3 -m http.server 8765 --bind 192.168.150.1 --directory "$GALE_E2E_REPO" >"$D/repo.log" 2>&1 &
	repo_pid=$!
	{
		cat cloudinit/dev-toolbox.yaml
		printf 'apt:\n  preserve_sources_list: false\n  sources_list: |\n    deb [trusted=yes] http://192.168.150.1:8765/ ./\n'
	} >"$D/toolbox.yaml"
	expect "vm create with the dev-toolbox snippet" 0 gale vm create tools --image debian-12 --cloud-init "$D/toolbox.yaml"
	echo "$LAST_OUT" | tail -n 4 | sed 's/^/    /'
	expect "toolbox: git runs" 0 gale vm exec tools -- git --version
	expect "toolbox: jq runs" 0 gale vm exec tools -- sh -c 'echo "{\"a\": 41}" | jq ".a + 1"'
	[ "$LAST_OUT" = 42 ] && ok "toolbox: jq computes" || bad "jq printed '$LAST_OUT'"
	expect "toolbox: git defaults" 0 gale vm exec tools -- git config --system init.defaultBranch
	[ "$LAST_OUT" = main ] && ok "toolbox: default branch main" || bad "init.defaultBranch = '$LAST_OUT'"
	expect "toolbox: shell conveniences for logins" 0 gale vm exec tools -- bash -lc 'alias ll'
	expect "delete tools" 0 gale vm delete tools
	kill "$repo_pid" 2>/dev/null
	repo_pid=
else
	bad "GALE_E2E_REPO is not set: the dev-toolbox snippet was not checked (scripts/e2e.sh sets it)"
fi
