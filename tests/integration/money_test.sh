#!/usr/bin/env bash
# Money and the operator's commands between real processes: a purchase of
# what the user already owns, refusals before any sealing, a retried
# purchase after a newer release, a damaged program file, the server's
# configuration, device revocation and listing, key file permissions, and a
# data directory the user may not read. Usage: money_test.sh BIN_DIR
BIN="$(cd "$1" && pwd)"
source "$(dirname "$0")/lib.sh"
setup_world
make_trp dev1 good

https() { curl -sf --cacert "$work/vendor/ca.pem" "$SEALDROP_SERVER$1"; }
bytes_sent() { https /metrics | awk '/^sealdrop_bytes_sent_total / {print $2}'; }
receipts_on_server() {  # receipts_on_server USER
  as "$1" none receipts --from-server --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
new_user() {  # new_user NAME CREDIT: adds and logs in NAME
  printf 'pw-%s\n' "$1" | server user add "$work/data" "$1" --credit "$2"
  login "$1" "pw-$1" >/dev/null
}
# less_than NAME A B: A < B (numbers).
less_than() { if [ "$2" -lt "$3" ]; then ok "$1"; else not_ok "$1 ($2 >= $3)"; fi; }

echo "# buying what you already own"
login alice alice-password >/dev/null
check "alice buys hello" as alice dev1 buy hello
as alice dev1 buy hello >"$work/again.out" 2>"$work/again.err"; code=$?
same "a second 'buy hello' exits 8 (already owned)" "$code" 8
check "it tells the user to use 'sealdrop get'" grep -q "sealdrop get hello" "$work/again.err"
same "alice was charged once" "$(balance alice)" 750
same "alice holds one receipt on the server" "$(receipts_on_server alice)" 1
check "'sealdrop get hello' still downloads it for free" as alice dev1 get hello
same "and charges nothing" "$(balance alice)" 750

echo "# refusals before any sealing"
head -c $((200 << 20)) /dev/zero > "$work/huge.bin"
server program add "$work/data" "$work/huge.bin" --name huge --version 1 --price 10 >/dev/null
new_user poor 5
before=$(bytes_sent); start=$(date +%s%N)
refuses "a user with 5 cannot buy a program priced 10" "balance of 5.*add credit" as poor dev1 buy huge
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 )); after=$(bytes_sent)
echo "# insufficient funds refused in ${elapsed_ms} ms; the server sent $((after - before)) bytes for it"
less_than "the server sent under 64 KiB for a 200 MiB program (nothing sealed)" $((after - before)) 65536
same "nothing was charged" "$(balance poor)" 5
same "no receipt" "$(receipts_on_server poor)" 0
check "the processor stores nothing" test ! -e "$work/home-poor/packages/huge.sdpkg"

make_trp dev2 good
check "the vendor revokes dev2" server device revoke "$work/data" "$(cat "$work/dev2.serial")"
new_user rich 1000
before=$(bytes_sent)
refuses "a revoked processor is refused" "revoked" as rich dev2 buy huge
after=$(bytes_sent)
less_than "the server sent under 64 KiB to a revoked processor" $((after - before)) 65536
same "the revoked processor cost nothing" "$(balance rich)" 1000

# A device limit of 1, by hand in config.json: hello was delivered to dev1,
# so dev3 must be refused before the server seals anything.
head -c $((20 << 20)) /dev/urandom > "$work/medium.bin"
server program add "$work/data" "$work/medium.bin" --name medium --version 1 --price 1 >/dev/null
check "rich buys medium on dev1" as rich dev1 buy medium
python3 - "$work/data/config.json" 1 <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["device_limit"] = int(sys.argv[2]); json.dump(c, open(sys.argv[1], "w"))
PY
stop_server; start_server
make_trp dev3 good
before=$(bytes_sent)
refuses "a re-download past the device limit is refused" "limit" as rich dev3 get medium
after=$(bytes_sent)
less_than "the server sent under 64 KiB past the device limit (20 MiB program not sealed)" $((after - before)) 65536
same "the refusal cost nothing" "$(balance rich)" 999

echo "# a retried purchase after a newer release"
new_user carl 1000
SEALDROP_CRASH_AT=client.charged as carl dev1 buy hello >/dev/null 2>&1; code=$?
if [ "$code" -ne 0 ]; then ok "the client died after the charge (exit $code)"; else not_ok "the client did not die"; fi
same "carl was charged" "$(balance carl)" 750
server program add "$work/data" "$work/hello" --name hello --version 2.0 --price 250 >/dev/null
check "the retried 'buy hello' completes" as carl dev1 buy hello
same "carl was charged once in all" "$(balance carl)" 750
same "carl holds one receipt" "$(receipts_on_server carl)" 1
check "the receipt is for version 1.0, the one paid for" bash -c \
  "$(declare -f as); work=$work BIN=$BIN; as carl none receipts --from-server --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert len(r)==1 and r[0][\"version\"]==\"1.0\", r'"
check "the program runs" bash -c "$(declare -f as); work=$work BIN=$BIN; as carl dev1 run hello -- x | grep -q 'arg 1: x'"
check "a newer version is a new purchase" as alice dev1 buy hello
same "alice paid for 2.0" "$(balance alice)" 500

echo "# a program file that is not the one recorded"
head -c 1000000 /dev/urandom > "$work/victim.bin"
server program add "$work/data" "$work/victim.bin" --name victim --version 1 --price 7 >/dev/null
stored=$(grep -l '' "$work"/data/programs/*.bin | while read -r f; do cmp -s "$f" "$work/victim.bin" && echo "$f"; done)
check "the stored copy of victim is found" test -n "$stored"
new_user dora 100
trp_files_before=$(find "$work/dev1" -type f | sort | md5sum)
head -c 1000000 /dev/urandom > "$stored"
refuses "a same-size replaced file is not sold" "could not complete|try again later" as dora dev1 buy victim
same "nothing was charged" "$(balance dora)" 100
check "nothing was stored" test ! -e "$work/home-dora/packages/victim.sdpkg"
same "the processor stores nothing" "$(find "$work/dev1" -type f | sort | md5sum)" "$trp_files_before"
check "the server log names the program and the digest" grep -q "victim 1 .*SHA-256" "$work/server.log"
head -c 999999 "$work/victim.bin" > "$stored"
refuses "a truncated file is not sold" "could not complete|try again later" as dora dev1 buy victim
same "nothing was charged" "$(balance dora)" 100
same "the processor stores nothing" "$(find "$work/dev1" -type f | sort | md5sum)" "$trp_files_before"
check "the server log names the program and both sizes" grep -q "victim 1 .*999999 bytes but was recorded as 1000000" "$work/server.log"
cp "$work/victim.bin" "$stored"
check "with the file restored, dora buys victim" as dora dev1 buy victim
same "and pays once" "$(balance dora)" 93

echo "# the server's configuration"
refuses "init refuses a device limit of -5" "device limit -5 is outside the allowed range 1 to 100" server init "$work/c1" --name x --device-limit -5
refuses "init refuses a device limit of 0" "device limit 0 is outside the allowed range 1 to 100" server init "$work/c2" --name x --device-limit 0
refuses "init refuses a device limit of 101" "outside the allowed range 1 to 100" server init "$work/c3" --name x --device-limit 101
refuses "init refuses an empty name" "server name must be 1 to 64" server init "$work/c4" --name ""
refuses "init refuses a host that is no host name" "neither a DNS name nor an IP address" server init "$work/c5" --name x --host "not a host"
check "init accepts a device limit of 100" server init "$work/c6" --name x --device-limit 100
cp "$work/data/config.json" "$work/config.saved"
for bad in 0 -5 1000 '"3"' 2.5; do
  python3 - "$work/data/config.json" "$bad" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["device_limit"] = json.loads(sys.argv[2]); json.dump(c, open(sys.argv[1], "w"))
PY
  refuses "serve refuses a hand-edited device_limit of $bad" "config.json.*device.limit" \
    timeout 10 "$BIN/sealdropd" serve "$work/data" --listen 127.0.0.1:0 --metrics-listen none
done
cp "$work/config.saved" "$work/data/config.json"
python3 - "$work/data/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["hosts"] = []; json.dump(c, open(sys.argv[1], "w"))
PY
refuses "serve refuses a config.json without hosts" "config.json.*host" timeout 10 "$BIN/sealdropd" serve "$work/data" --listen 127.0.0.1:0 --metrics-listen none
cp "$work/config.saved" "$work/data/config.json"

echo "# device revoke and list"
server device revoke "$work/data" never-seen-0001 --reason "reported cloned" >"$work/revoke.out" 2>&1; code=$?
same "revoking a serial never seen succeeds" "$code" 0
check "and says it was never seen and is revoked anyway" grep -q "no processor with serial never-seen-0001 has been seen by this store; it is revoked anyway and will be refused if it connects" "$work/revoke.out"
server device revoke "$work/data" never-seen-0001 >"$work/revoke2.out" 2>&1; code=$?
same "revoking twice succeeds" "$code" 0
check "and says it was already revoked, and when" grep -qE "already revoked on [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z \(reported cloned\)" "$work/revoke2.out"
refuses "a malformed serial is refused" "device serial.*sealdrop-trp init" server device revoke "$work/data" "not a serial"
check "device list --json lists the devices" bash -c "'$BIN/sealdropd' device list '$work/data' --json > '$work/devices.json'"
python3 - "$work/devices.json" "$(cat "$work/dev1.serial")" "$(cat "$work/dev2.serial")" <<'PY' >"$work/devices.check" 2>&1 \
  && ok "the list holds dev1's counts, dev2's and the unseen serial's revocations, in RFC 3339 UTC" \
  || { not_ok "device list --json"; sed 's/^/#   /' "$work/devices.check"; }
import json, re, sys
devices = {d["serial"]: d for d in json.load(open(sys.argv[1]))}
rfc = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
dev1 = devices[sys.argv[2]]
assert dev1["receipts"] >= 5 and dev1["deliveries"] >= 6 and not dev1["revoked"], dev1
assert rfc.match(dev1["first_seen"]) and rfc.match(dev1["last_seen"]) and dev1["first_seen"] <= dev1["last_seen"], dev1
dev2 = devices[sys.argv[3]]
assert dev2["revoked"] and dev2["deliveries"] == 0 and dev2["first_seen"] is None and rfc.match(dev2["revoked_at"]), dev2
unseen = devices["never-seen-0001"]
assert unseen["revoked"] and unseen["revoke_reason"] == "reported cloned", unseen
PY
check "device list without --json prints one line per device" bash -c "'$BIN/sealdropd' device list '$work/data' | grep -q '^never-seen-0001.*revoked'"

echo "# key files others can read"
chmod 640 "$work/data/server.key"
refuses "serve refuses a server.key readable by its group" "server.key.*chmod 600" timeout 10 "$BIN/sealdropd" serve "$work/data" --listen 127.0.0.1:0 --metrics-listen none
chmod 600 "$work/data/server.key"
chmod 604 "$work/dev1/root.key"
refuses "the processor refuses a root.key readable by others" "root.key.*chmod 600" timeout 10 "$BIN/sealdrop-trp" serve "$work/dev1" --socket "$work/other.sock"
chmod 600 "$work/dev1/root.key"
check "with the modes restored, the server starts" bash -c "timeout 3 '$BIN/sealdropd' serve '$work/data' --listen 127.0.0.1:0 --metrics-listen none; [ \$? -eq 124 ]"

echo "# a data directory the user may not read"
open_dir=$(mktemp -d "${TMPDIR:-/tmp}/sealdrop-perm.XXXXXX")
chmod 755 "$open_dir"
server init "$open_dir/data" --name perm 2>/dev/null
if [ "$(id -u)" -eq 0 ]; then
  # Root reads anything: drop to nobody for the one check.
  as_other() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
else
  chmod 000 "$open_dir/data"
  as_other() { "$@"; }
fi
refuses "an unreadable data directory is called a permission problem" "permission denied.*config.json" as_other "$BIN/sealdropd" program list "$open_dir/data"
refuses "a missing one is still called missing" "not a sealdropd data directory" as_other "$BIN/sealdropd" program list "$open_dir/missing"
chmod 700 "$open_dir/data"; rm -rf "$open_dir"

check "the audit chain verifies" server audit verify "$work/data"
finish
