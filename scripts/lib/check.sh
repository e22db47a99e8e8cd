# check.sh: pass/fail bookkeeping for the bash end-to-end scenarios. Source
# it; it defines:
#   ok DESC / bad DESC        count a passed / failed check and print it
#   expect DESC CODE CMD...   run CMD, check its exit code, keep its output
#                             (stdout and stderr) in LAST_OUT
#   json EXPR                 evaluate a Python expression over d, the JSON
#                             document on stdin, and print it
passed=0
failed=0
ok() { echo "--- PASS: $*"; passed=$((passed + 1)); }
bad() { echo "--- FAIL: $*"; failed=$((failed + 1)); }
expect() {
	local desc=$1 want=$2
	shift 2
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" = "$want" ]; then ok "$desc (exit $rc)"; else bad "$desc: exit $rc, want $want; output:"; echo "$out" | tail -n 20; fi
	LAST_OUT=$out
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
