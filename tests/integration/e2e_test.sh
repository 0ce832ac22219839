#!/usr/bin/env bash
# The distribution flow end to end between real processes over real sockets:
# sealdropd on loopback TLS, sealdrop-trp on a Unix socket, the sealdrop
# client relaying between them. Usage: e2e_test.sh BIN_DIR
BIN="$(cd "$1" && pwd)"
source "$(dirname "$0")/lib.sh"
setup_world
make_trp dev1 good

echo "# login"
refuses "wrong password is refused" "wrong password" login alice not-the-password
check "alice logs in" login alice alice-password
check "bob logs in" login bob bob-password
check "the catalogue lists hello" bash -c "$(declare -f as); work=$work BIN=$BIN; as alice none catalog | grep -q '^hello'"

echo "# plain HTTPS endpoints"
https() { curl -sf --cacert "$work/vendor/ca.pem" "$SEALDROP_SERVER$1"; }
same "/healthz answers ok" "$(https /healthz)" "ok"
check "/v1/catalog lists the programs as JSON" bash -c "curl -sf --cacert $work/vendor/ca.pem $SEALDROP_SERVER/v1/catalog | python3 -c 'import json,sys; p=json.load(sys.stdin)[\"programs\"]; assert {x[\"name\"] for x in p} >= {\"hello\",\"upper\"}'"
check "/metrics is Prometheus text with the login counters" bash -c "curl -sf $METRICS/metrics | grep -q '^sealdrop_logins_total [1-9]'"
check "/metrics is not served to customers" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --cacert $work/vendor/ca.pem $SEALDROP_SERVER/metrics)\" = 404 ]"
check "the server's certificate fails for a client without the vendor root" bash -c "! curl -sf $SEALDROP_SERVER/healthz"

echo "# purchase (steps 1001-1012)"
export SEALDROP_RELAY_TRACE="$work/relay.trace"
check "alice buys hello" as alice dev1 buy hello
unset SEALDROP_RELAY_TRACE
same "alice was charged 250 once" "$(balance alice)" 750
check "the package is stored" test -s "$work/home-alice/packages/hello.sdpkg"
check "the receipt is stored" bash -c "ls $work/home-alice/receipts/*.jws"

echo "# run through the processor"
expected=$("$work/hello" a "b c" d; echo "exit=$?")
actual=$(as alice dev1 run hello -- a "b c" d; echo "exit=$?")
same "run output and exit code match the plain program" "$actual" "$expected"
expected=$("$work/hello"; echo "exit=$?")
actual=$(as alice dev1 run hello; echo "exit=$?")
same "run without arguments matches too" "$actual" "$expected"

check "alice buys upper" as alice dev1 buy upper
out=$(printf 'some text\nmore\n' | as alice dev1 run upper 2>"$work/upper.err")
same "stdin and stdout pass through" "$out" "$(printf 'SOME TEXT\nMORE')"
same "stderr passes through" "$(cat "$work/upper.err")" "upper: 15 bytes"
same "balance after two purchases" "$(balance alice)" 650

echo "# a licensed program cannot read the processor's own files"
check "alice gets readfile (free)" as alice dev1 buy readfile
printf 'visible\n' > "$work/ordinary.txt"
same "the program reads an ordinary file the caller names" "$(as alice dev1 run readfile -- "$work/ordinary.txt")" "visible"
for f in root.key identity.key.sealed device.json; do
  out=$(as alice dev1 run readfile -- "$work/dev1/$f" 2>/dev/null); code=$?
  if [ "$code" -ne 0 ] && [ -z "$out" ]; then ok "the processor's $f is hidden from the program"; else not_ok "the program read the processor's $f"; fi
done
out=$(cd "$work/dev1" && as alice dev1 run readfile -- root.key 2>/dev/null); code=$?
if [ "$code" -ne 0 ] && [ -z "$out" ]; then ok "a working directory inside the processor's state gives nothing"; else not_ok "the state was readable through the working directory"; fi
same "free programs cost nothing" "$(balance alice)" 650

echo "# interrupting a running program"
check "alice gets sleeper (free)" as alice dev1 buy sleeper
SEALDROP_HOME="$work/home-alice" SEALDROP_TRP="$work/dev1.sock" SEALDROP_CA="$work/vendor/ca.pem" \
  "$BIN/sealdrop" run sleeper -- 60 & runner=$!
# An image run from a memfd has no file name: find it by its arguments.
for _ in $(seq 100); do pgrep -f '^sleeper 60$' >/dev/null && break; sleep 0.05; done
check "the program runs inside the processor" pgrep -f '^sleeper 60$'
kill -INT "$runner"; wait "$runner" 2>/dev/null
for _ in $(seq 100); do pgrep -f '^sleeper 60$' >/dev/null || break; sleep 0.05; done
check "when the client is interrupted, the processor ends the program" bash -c "! pgrep -f '^sleeper 60$'"
same "a program that finishes reports its exit code" "$(as alice dev1 run sleeper -- 0; echo $?)" 0

check "inspect by name finds the stored program, not the unsealed file of that name here" \
  bash -c "cd '$work' && test -f hello && $(declare -f as); work=$work BIN=$BIN; as alice none inspect hello | grep -q 'hello.sdpkg'"

echo "# the host never holds plaintext"
# The stored protected ELF keeps its headers and import tables plaintext by
# design: its code and data sections are checked (elfcheck.py); the relayed
# frames and the logs must hold no run of the program at all.
check "no 32-byte run of the program's code or data in the stored package" \
  python3 "$here/elfcheck.py" leaks "$work/hello" "$work/home-alice/packages/hello.sdpkg"
python3 - "$work/hello" "$work/relay.trace" "$work/server.log" \
  "$work/dev1.log" <<'PY' >"$work/plain.out" 2>&1 && ok "no 32-byte run of the program in relayed frames or logs" || { not_ok "plaintext leaked"; cat "$work/plain.out"; }
import sys
plain = open(sys.argv[1], "rb").read()
hay = [open(p, "rb").read() for p in sys.argv[2:]]
assert len(hay[0]) > 0, "the relay trace is empty"
# Every 32-byte window of the program that is not trivially repetitive.
for off in range(0, len(plain) - 32, 16):
    w = plain[off:off + 32]
    if len(set(w)) < 8:
        continue
    for name, h in zip(sys.argv[2:], hay):
        if w in h:
            sys.exit(f"offset {off} found in {name}")
PY

echo "# receipts are standard JWS ES256"
receipt=$(ls "$work"/home-alice/receipts/*.jws | head -1)
check "python3-cryptography verifies a receipt with the server's key" python3 "$here/forge.py" verify-jws "$receipt" "$work/server.pem"
check "the receipt names alice" bash -c "python3 $here/forge.py verify-jws $receipt $work/server.pem | grep -q '\"user\":\"alice\"'"
# Alter a signed character (in the payload); a change confined to the last
# signature character could sit in base64 padding bits that lenient decoders
# ignore.
sed 's/\(.\{120\}\)./\1A/' "$receipt" > "$work/altered.jws"
cmp -s "$receipt" "$work/altered.jws" && sed 's/\(.\{120\}\)./\1B/' "$receipt" > "$work/altered.jws"
refuses "python3-cryptography rejects an altered receipt" "" python3 "$here/forge.py" verify-jws "$work/altered.jws" "$work/server.pem"

echo "# re-download without charge"
rm -f "$work"/home-alice/packages/hello.*
check "alice downloads hello again with her receipt" as alice dev1 get hello
same "no charge for the re-download" "$(balance alice)" 650
expected=$("$work/hello" x; echo "exit=$?")
same "the re-downloaded program runs" "$(as alice dev1 run hello -- x; echo "exit=$?")" "$expected"
held=$(ls "$work"/home-alice/receipts | wc -l)
rm -f "$work"/home-alice/receipts/*
check "receipts listed from the server after the client lost its copies" bash -c "$(declare -f as); work=$work BIN=$BIN; as alice none receipts --from-server | grep -c . | grep -qx '$held'"
check "the restored receipt re-downloads" as alice dev1 get upper
same "still no second charge" "$(balance alice)" 650

echo "# receipts of others, altered receipts"
hello_receipt=$(grep -l '' "$work"/home-alice/receipts/*.jws | head -1)
refuses "bob cannot download with alice's receipt" "belong|not found|refused" as bob dev1 get hello --receipt "$hello_receipt"
sed 's/\(.\{40\}\)./\1A/' "$hello_receipt" > "$work/tampered.jws"
cmp -s "$hello_receipt" "$work/tampered.jws" && sed 's/\(.\{40\}\)./\1B/' "$hello_receipt" > "$work/tampered.jws"
refuses "an altered receipt is refused" "receipt" as alice dev1 get hello --receipt "$work/tampered.jws"
same "bob was not charged" "$(balance bob)" 1000

echo "# a host that tampers with the relayed inner frames (real processes)"
start_proxy() {  # start_proxy NAME MODE [FILE]: a hostile relay in front of dev1
  python3 "$here/tamper_proxy.py" "$work/$1.sock" "$work/dev1.sock" "${@:2}" 2>>"$work/proxy.log" &
  pids+=($!)
  wait_for "$work/$1.sock"
}
# Carol's own account keeps the other sections' balances simple; "medium"
# spans several relayed messages, so there are package frames to tamper with.
printf 'carol-password\n' | server user add "$work/data" carol --credit 1000
login carol carol-password >/dev/null
head -c 3000000 /dev/urandom > "$work/medium.bin"
server program add "$work/data" "$work/medium.bin" --name medium --version 1 --price 5 >/dev/null
before=$(balance carol)
for mode in flip drop duplicate reorder; do
  start_proxy "tamper-$mode" "$mode"
  timeout 60 env SEALDROP_HOME="$work/home-carol" SEALDROP_TRP="$work/tamper-$mode.sock" \
    SEALDROP_CA="$work/vendor/ca.pem" "$BIN/sealdrop" buy medium >/dev/null 2>"$work/tamper.err"
  code=$?
  if [ "$code" -ne 0 ] && [ "$code" -ne 124 ] && [ -s "$work/tamper.err" ]; then
    ok "a relay that does '$mode' to package frames ends the order with an error"
  else
    not_ok "a relay that does '$mode' to package frames (exit $code)"; sed 's/^/#   /' "$work/tamper.err"
  fi
  same "'$mode': no charge" "$(balance carol)" "$before"
  check "'$mode': nothing stored" test ! -e "$work/home-carol/packages/medium.sdpkg"
done
echo "# a release signature from another session (real processes)"
start_proxy record record-release "$work/release.saved"
check "carol buys upper through a relay that records the release" \
  env SEALDROP_HOME="$work/home-carol" SEALDROP_TRP="$work/record.sock" SEALDROP_CA="$work/vendor/ca.pem" "$BIN/sealdrop" buy upper
check "the release was recorded" test -s "$work/release.saved"
start_proxy replay replay-release "$work/release.saved"
refuses "the processor refuses a release recorded in another session" "another (package|session|order)|not valid" \
  env SEALDROP_HOME="$work/home-carol" SEALDROP_TRP="$work/replay.sock" SEALDROP_CA="$work/vendor/ca.pem" "$BIN/sealdrop" buy hello
check "the refused package was not handed over" test ! -e "$work/home-carol/packages/hello.sdpkg"
same "the purchase itself was charged once (upper 100 + hello 250)" "$(balance carol)" $((before - 350))
check "its receipt re-downloads hello at no charge" as carol dev1 get hello
same "and nothing more is charged" "$(balance carol)" $((before - 350))

echo "# processors the server must refuse, without charge"
for mode in other-ca expired not-yet-valid self-signed; do
  make_trp "bad-$mode" "$mode"
  refuses "a processor whose certificate is $mode is refused" "not issued by a trusted|expired|not yet valid|certificate|untrusted" as bob "bad-$mode" buy hello
done
same "bob was never charged" "$(balance bob)" 1000

echo "# revocation"
make_trp dev2 good
check "bob buys with processor dev2" as bob dev2 buy hello
same "bob charged once" "$(balance bob)" 750
check "the vendor revokes dev2" server device revoke "$work/data" "$(cat "$work/dev2.serial")"
refuses "a processor on the server's revocation list is refused" "revoked" as bob dev2 get hello
make_trp dev3 good
ca revoke "$work/mfr" --serial "$(openssl x509 -in "$work/dev3-id.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)" >/dev/null
check "the server installs the new manufacturer CRL" server install "$work/data" --crl "$work/mfr/crl.pem"
stop_server; start_server
refuses "a processor revoked by the manufacturer's CRL is refused" "revoked" as bob dev3 buy upper
same "no charge for refused processors" "$(balance bob)" 750

echo "# crash of the client after the charge"
head -c 150000000 /dev/urandom > "$work/big.bin"
server program add "$work/data" "$work/big.bin" --name big --version 1 --price 10 >/dev/null
make_trp dev4 good
receipts_before=$(ls "$work"/home-bob/receipts | wc -l)
SEALDROP_HOME="$work/home-bob" SEALDROP_TRP="$work/dev4.sock" SEALDROP_CA="$work/vendor/ca.pem" \
  "$BIN/sealdrop" buy big >/dev/null 2>"$work/crash.err" & client=$!
# The client stores the receipt before it asks for the release: kill it the
# moment the receipt appears, while the package is still on its way.
for _ in $(seq 3000); do
  [ "$(ls "$work"/home-bob/receipts | wc -l)" -gt "$receipts_before" ] && break
  sleep 0.005
done
kill -KILL "$client" 2>/dev/null; wait "$client" 2>/dev/null
same "the charge happened exactly once" "$(balance bob)" 740
check "after the crash, bob gets the program with the receipt" as bob dev4 get big
same "and is not charged again" "$(balance bob)" 740
# On a terminal the client draws a progress bar; in a pipe it stays quiet.
rm -f "$work"/home-bob/packages/big.*
SEALDROP_HOME="$work/home-bob" SEALDROP_TRP="$work/dev4.sock" SEALDROP_CA="$work/vendor/ca.pem" \
  script -qec "$BIN/sealdrop get big" /dev/null > "$work/tty.out" 2>&1
check "a download on a terminal shows a progress bar" grep -q '\[#*  *\] *[0-9]*%\|\[#*\] 100%' "$work/tty.out"
check "a download in a pipe shows none" bash -c "! grep -q '%' $work/crash.err"
check "the stored package is complete" test "$(stat -c %s "$work/home-bob/packages/big.sdpkg")" -gt 150000000

echo "# bad input"
refuses "run of a program not installed" "not installed" as alice dev1 run nothing
refuses "buy of an unknown program" "no program|not found|unknown" as alice dev1 buy nothing
refuses "a processor socket that does not exist" "cannot reach the processor" as alice nowhere buy hello
refuses "trp init into a non-empty directory" "not empty" trp init "$work/dev1"
refuses "server init into a non-empty directory" "not empty" server init "$work/data" --name x
refuses "program add of a missing file" "exist|cannot open" server program add "$work/data" /nonexistent --name x --version 1 --price 1
refuses "a server URL without a scheme host" "server URL|https" as alice dev1 --server ftp://x balance
for tool in sealdrop sealdropd sealdrop-trp sealdrop-ca; do
  same "$tool: a usage error exits with 2" "$("$BIN/$tool" --no-such-flag >/dev/null 2>&1; echo $?)" 2
  same "$tool: --help exits with 0" "$("$BIN/$tool" --help >/dev/null 2>&1; echo $?)" 0
done
same "alice's balance is unchanged by errors" "$(balance alice)" 650

echo "# failed logins are limited across sessions"
printf 'dave-password\n' | server user add "$work/data" dave --credit 10
for i in $(seq 10); do login dave not-dave >/dev/null 2>&1; done
refuses "after 10 failed logins even the right password waits" "too many failed logins" login dave dave-password
check "other users still log in" login alice alice-password
check "/metrics counts the refused logins" bash -c "curl -sf $METRICS/metrics | grep -q '^sealdrop_logins_limited_total [1-9]'"

echo "# the ledger"
stop_server
check "the audit chain verifies" server audit verify "$work/data"
finish
