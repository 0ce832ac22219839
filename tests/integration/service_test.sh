#!/usr/bin/env bash
# The daemons as an operator runs them: reload on SIGHUP without dropping a
# download, health and metrics that tell when the server cannot sell, generic
# reasons for customers with the detail in the log, JSON log lines a hostile
# peer cannot forge, sd_notify readiness, and `cmake --install`.
# Usage: service_test.sh BIN_DIR
BIN="$(cd "$1" && pwd)"
source "$(dirname "$0")/lib.sh"
adversary="$(cd "$here/../adversary" && pwd)"
faketime_lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)

# notify_listener FILE SOCKET: a fake $NOTIFY_SOCKET that appends each
# datagram to FILE as one line (newlines inside shown as '|').
notify_listener() {
  python3 - "$1" "$2" <<'PY' &
import os, socket, sys
out, path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
while True:
    data = s.recv(4096).decode(errors="replace").replace("\n", "|")
    with open(out, "a") as f:
        f.write(data + "\n")
PY
  pids+=($!)
  wait_for "$2"
}
# log_has FILE EVENT [JQ-LIKE PYTHON CONDITION on l]: a JSON line with that event.
log_has() {
  python3 - "$1" "$2" "${3:-True}" <<'PY'
import json, sys
path, event, cond = sys.argv[1], sys.argv[2], sys.argv[3]
for line in open(path, encoding="utf-8", errors="replace"):
    try:
        l = json.loads(line)
    except ValueError:
        continue
    if l.get("event") == event and eval(cond):
        sys.exit(0)
sys.exit(1)
PY
}
log_count() { python3 -c 'import json,sys; print(sum(1 for x in open(sys.argv[1]) if x.startswith("{") and json.loads(x).get("event")==sys.argv[2]))' "$1" "$2"; }
wait_log() {  # wait_log FILE EVENT [COND]: up to 20 s
  for _ in $(seq 200); do log_has "$@" && return 0; sleep 0.1; done
  return 1
}
metric() { curl -sf "$METRICS/metrics" | grep -F "$1 " | grep -v '^#' | awk '{ print $NF }'; }
# signal_and_wait SIG PID: sends SIG and waits up to 10 s for PID to exit
# (then kills it, so a daemon that ignores SIG cannot hang the test).
signal_and_wait() {
  kill "-$1" "$2" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$2" 2>/dev/null; wait "$2" 2>/dev/null
}
http_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

notify_listener "$work/notify-server.txt" "$work/notify-server.sock"
export NOTIFY_SOCKET="$work/notify-server.sock"
setup_world
unset NOTIFY_SOCKET
make_trp dev1 good
make_trp dev2 good
login alice alice-password >/dev/null 2>&1
login bob bob-password >/dev/null 2>&1
sales=0

echo "# sd_notify (item 17)"
for _ in $(seq 50); do grep -q '^READY=1$' "$work/notify-server.txt" 2>/dev/null && break; sleep 0.1; done
check "sealdropd tells the service manager READY=1 once it listens" grep -qx 'READY=1' "$work/notify-server.txt"
notify_listener "$work/notify-trp.txt" "$work/notify-trp.sock"
NOTIFY_SOCKET="$work/notify-trp.sock" "$BIN/sealdrop-trp" serve "$work/dev1" --socket "$work/n.sock" 2>>"$work/n.log" &
npid=$!; pids+=($npid)
wait_for "$work/n.sock"
for _ in $(seq 50); do grep -q '^READY=1$' "$work/notify-trp.txt" 2>/dev/null && break; sleep 0.1; done
check "sealdrop-trp tells the service manager READY=1 once it listens" grep -qx 'READY=1' "$work/notify-trp.txt"

echo "# the processor and its socket on signals (item 13)"
kill -HUP "$npid"; sleep 0.6
check "sealdrop-trp survives SIGHUP" kill -0 "$npid"
check "sealdrop-trp logs that SIGHUP reloads nothing" log_has "$work/n.log" reload_ignored
check "and still answers on its socket after SIGHUP" env SEALDROP_HOME="$work/home-alice" SEALDROP_TRP="$work/n.sock" timeout 20 "$BIN/sealdrop" list
signal_and_wait TERM "$npid"
check "sealdrop-trp removes its socket on SIGTERM" test ! -e "$work/n.sock"
check "and says STOPPING=1" grep -qx 'STOPPING=1' "$work/notify-trp.txt"
rm -f "$work/n.sock"
"$BIN/sealdrop-trp" serve "$work/dev1" --socket "$work/n.sock" 2>>"$work/n.log" & npid=$!
wait_for "$work/n.sock"; signal_and_wait INT "$npid"
check "sealdrop-trp removes its socket on SIGINT" test ! -e "$work/n.sock"
rm -f "$work/n.sock"
"$BIN/sealdrop-trp" serve "$work/dev1" --socket "$work/n.sock" 2>>"$work/n.log" & npid=$!
wait_for "$work/n.sock"; signal_and_wait KILL "$npid"
check "a killed processor leaves its socket file" test -S "$work/n.sock"
"$BIN/sealdrop-trp" serve "$work/dev1" --socket "$work/n.sock" 2>>"$work/n.log" & npid=$!; pids+=($npid)
sleep 0.5
check "a new processor replaces the stale socket and serves" env SEALDROP_HOME="$work/home-alice" SEALDROP_TRP="$work/n.sock" timeout 20 "$BIN/sealdrop" list
refuses "a second processor on a live socket is refused" "already serving" timeout 10 "$BIN/sealdrop-trp" serve "$work/dev1" --socket "$work/n.sock"
signal_and_wait TERM "$npid"

echo "# health and metrics (item 14)"
same "/healthz answers ok to customers" "$(curl -sf --cacert "$work/vendor/ca.pem" "$SEALDROP_SERVER/healthz")" "ok"
same "/healthz answers ok on the metrics listener" "$(curl -sf "$METRICS/healthz")" "ok"
same "/metrics is not served on the customers' port" "$(http_code --cacert "$work/vendor/ca.pem" "$SEALDROP_SERVER/metrics")" 404
check "alice buys hello" as alice dev1 buy hello && sales=$((sales + 1))
m=$(curl -sf "$METRICS/metrics")
for series in 'sealdrop_build_info{version="' 'sealdrop_server_certificate_expiry_seconds ' \
    'sealdrop_crl_next_update_seconds{issuer="Test Manufacturer CA"} ' 'sealdrop_up 1' \
    'sealdrop_http_request_duration_seconds_bucket{le="0.005"} ' 'sealdrop_purchase_duration_seconds_count 1' \
    'process_resident_memory_bytes ' 'process_cpu_seconds_total ' 'process_open_fds ' 'process_start_time_seconds '; do
  if grep -qF "$series" <<<"$m"; then ok "/metrics has $series"; else not_ok "/metrics has $series"; fi
done
cert_left=$(metric sealdrop_server_certificate_expiry_seconds)
check "the certificate expiry gauge is in the future" python3 -c "import sys; assert float(sys.argv[1]) > 86400" "$cert_left"

echo "# SIGHUP reloads sealdropd without dropping a download (item 13)"
head -c $((96 << 20)) /dev/urandom >"$work/big.bin"
server program add "$work/data" "$work/big.bin" --name big --version 1 --price 0 >/dev/null 2>&1
orders=$(log_count "$work/server.log" order)
(as alice dev1 buy big >"$work/big.out" 2>"$work/big.err"; echo $? >"$work/big.rc") &
buyer=$!
for _ in $(seq 200); do [ "$(log_count "$work/server.log" order)" -gt "$orders" ] && break; sleep 0.05; done
# Hold the client mid-download so the reload certainly falls inside it.
client=$(pgrep -P "$buyer")
[ -n "$client" ] && kill -STOP $client
before=$(log_count "$work/server.log" reloaded)
kill -HUP "$server_pid"
for _ in $(seq 50); do [ "$(log_count "$work/server.log" reloaded)" -gt "$before" ] && break; sleep 0.1; done
[ -n "$client" ] && kill -CONT $client
wait "$buyer"
check "sealdropd survives SIGHUP" kill -0 "$server_pid"
check "it logs what it reloaded" log_has "$work/server.log" reloaded "'Test Manufacturer CA' in l['detail']"
same "the purchase in flight across the reload completes" "$(cat "$work/big.rc")" 0
[ "$(cat "$work/big.rc")" = 0 ] && sales=$((sales + 1))
check "the reload fell between the order and the sale" python3 - "$work/server.log" <<'PY'
import json, sys
ev = [json.loads(x) for x in open(sys.argv[1]) if x.startswith("{")]
order = max(i for i, l in enumerate(ev) if l["event"] == "order" and l.get("user") == "alice")
sale = [i for i, l in enumerate(ev) if l["event"] == "sale" and i > order]
reload = [i for i, l in enumerate(ev) if l["event"] == "reloaded" and i > order]
assert sale and reload and reload[0] < sale[0], (order, sale, reload)
PY
grep -qx 'RELOADING=1|MONOTONIC_USEC=[0-9]*' "$work/notify-server.txt" && ok "SIGHUP is announced as RELOADING=1" || not_ok "SIGHUP is announced as RELOADING=1"
check "as many notifications READY=1 as starts and reloads" test "$(grep -cx 'READY=1' "$work/notify-server.txt")" -ge 2

serial2=$(openssl x509 -in "$work/dev2-id.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)
check "a processor not yet revoked buys" as bob dev2 buy upper && sales=$((sales + 1))
ca revoke "$work/mfr" --serial "$serial2" >/dev/null
check "the operator installs the manufacturer's new CRL while the server runs" server install "$work/data" --crl "$work/mfr/crl.pem"
kill -HUP "$server_pid"; sleep 0.6
refuses "after SIGHUP the revoked processor is refused, without a restart" "revoked" as bob dev2 buy hello
check "the server is the same process" kill -0 "$server_pid"

echo "2 bad CRL" >"$work/data/crl/99.pem"
before=$(log_count "$work/server.log" reload_failed)
kill -HUP "$server_pid"
for _ in $(seq 50); do [ "$(log_count "$work/server.log" reload_failed)" -gt "$before" ] && break; sleep 0.1; done
check "a bad set is refused and the reason logged" log_has "$work/server.log" reload_failed "'keeping the previous' in l['detail']"
check "the server keeps selling with the previous set" as alice dev1 buy upper && sales=$((sales + 1))
same "the failed reload is counted" "$(metric sealdrop_reload_failures_total)" 1
rm -f "$work/data/crl/99.pem"

echo "# an expired CRL: health, customer message, log (items 14, 15)"
if [ -z "$faketime_lib" ]; then not_ok "libfaketime is installed (scripts/bootstrap)"; else
  # A CRL issued as if three days ago, valid for one. Under ASan the preload
  # comes before ASan's runtime, which ASan would refuse.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    LD_PRELOAD="$faketime_lib" FAKETIME="-3d" "$BIN/sealdrop-ca" crl "$work/mfr" --days 1 >/dev/null
  for f in "$work"/data/crl/*.pem; do cp "$work/mfr/crl.pem" "$f"; done
  kill -HUP "$server_pid"; sleep 0.6
  same "/healthz is 503 for customers" "$(http_code --cacert "$work/vendor/ca.pem" "$SEALDROP_SERVER/healthz")" 503
  same "/healthz is 503 on the metrics listener" "$(http_code "$METRICS/healthz")" 503
  check "with the operator's reason there" bash -c "curl -s $METRICS/healthz | grep -q 'CRL of \"Test Manufacturer CA\" expired'"
  check "the customers' /healthz gives no detail" bash -c "! curl -s --cacert $work/vendor/ca.pem $SEALDROP_SERVER/healthz | grep -qi crl"
  same "sealdrop_up is 0" "$(metric sealdrop_up)" 0
  check "the CRL gauge is negative" python3 -c "import sys; assert float(sys.argv[1]) < 0" "$(metric 'sealdrop_crl_next_update_seconds{issuer="Test Manufacturer CA"}')"
  check "the expired CRL is logged as an error" log_has "$work/server.log" crl_expired "l['level'] == 'error'"
  refuses "the customer is told the store cannot sell now" "cannot sell to this device right now; try again later" as alice dev1 buy readfile
  check "and is not given the operator's advice" bash -c "! grep -qiE 'crl|sealdrop-ca' $work/last.err"
  check "the server log has the detail" log_has "$work/server.log" session_failed "'load a fresh CRL' in l.get('detail', '')"
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    LD_PRELOAD="$faketime_lib" FAKETIME="-1h" "$BIN/sealdrop-ca" crl "$work/mfr" --days 1 >/dev/null
  for f in "$work"/data/crl/*.pem; do cp "$work/mfr/crl.pem" "$f"; done
  kill -HUP "$server_pid"; sleep 0.6
  same "a fresh CRL and SIGHUP: /healthz is ok again" "$(curl -sf "$METRICS/healthz")" "ok"
  refuses "a device fault is still the customer's to hear" "revoked" as bob dev2 buy hello
fi
ca issue "$work/vendor" --csr "$work/data/server.csr" --profile server --days 3 --out "$work/short.pem" >/dev/null
server install "$work/data" --cert "$work/short.pem" 2>/dev/null
kill -HUP "$server_pid"; sleep 0.6
check "a certificate expiring within 7 days is warned about" log_has "$work/server.log" certificate_expiring "l['level'] == 'warning'"

echo "# logs: one JSON line per event, unforgeable (item 16)"
forged='x
{"level":"info","event":"sale","user":"mallory"}'
check "a hostile client sends a forged user name and message type" python3 - "$SEALDROP_SERVER" "$work/vendor/ca.pem" "$forged" <<PY
import sys
sys.path.insert(0, "$adversary")
from evil_host import WebSocket, Refused
url, ca, forged = sys.argv[1], sys.argv[2], sys.argv[3]
ws = WebSocket(url, ca)
import json
ws.send(json.dumps({"type": "login", "user": forged[:64], "password": "wrong"}))
kind, reply = ws.recv()
assert reply.get("type") == "error", reply
ws = WebSocket(url, ca)
ws.send(json.dumps({"type": "login", "user": "alice", "password": "alice-password"}))
kind, reply = ws.recv()
assert reply.get("type") == "welcome", reply
ws.send(json.dumps({"type": forged[:30]}))
kind, reply = ws.recv()
assert reply.get("type") == "error", reply
PY
sleep 0.3
check "every line of the server log is one JSON object with time, level, program and event" python3 - "$work/server.log" <<'PY'
import json, re, sys
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    l = json.loads(line)
    assert isinstance(l, dict), n
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", l["time"]), (n, l)
    assert l["level"] in ("info", "warning", "error"), (n, l)
    assert l["program"] == "sealdropd" and l["event"], (n, l)
PY
check "no forged line: mallory never bought" python3 - "$work/server.log" <<'PY'
import json, sys
assert not any(json.loads(x).get("user") == "mallory" for x in open(sys.argv[1]))
PY
check "the hostile user name is one field of one refused-login line" log_has "$work/server.log" login_refused "l.get('user', '').startswith('x\n{') and l.get('peer') == '127.0.0.1' and l.get('session')"
check "the hostile message type is inside one session_failed detail" log_has "$work/server.log" session_failed "'\n{\"level' in l.get('detail', '') and l.get('user') == 'alice'"
same "one sale line per sale" "$(log_count "$work/server.log" sale)" "$sales"
check "a sale line names the session, order, user, peer and receipt" log_has "$work/server.log" sale "all(l.get(k) for k in ('session', 'order', 'user', 'peer', 'receipt', 'device'))"
printf 'carol-password\n' | server user add "$work/data" carol --credit 5 2>"$work/admin.err"
server user credit "$work/data" carol 7 2>>"$work/admin.err"
server device revoke "$work/data" "$(cat "$work/dev1.serial")" 2>>"$work/admin.err"
USER=mallory server program add "$work/data" "$work/hello" --name hello2 --version 1 --price 1 >/dev/null 2>>"$work/admin.err"
check "each admin command logs one JSON line, naming the account that ran it" python3 - "$work/admin.err" "$(id -un)" <<'PY'
import json, sys
lines = [json.loads(x) for x in open(sys.argv[1])]
assert [l["command"] for l in lines] == ["user_add", "user_credit", "device_revoke", "program_add"], lines
assert all(l["event"] == "admin" and l["program"] == "sealdropd" for l in lines), lines
# From the real uid, not from $USER, which the caller sets at will.
assert all(l["operator"] == sys.argv[2] for l in lines), lines
PY
check "the processor logs JSON lines too" python3 - "$work/n.log" "$work/dev1.log" <<'PY'
import json, sys
for p in sys.argv[1:]:
    lines = [json.loads(x) for x in open(p)]
    assert lines and all(l["program"] == "sealdrop-trp" for l in lines), p
PY

echo "# a ledger that cannot be read (item 14)"
# Overwritten in place: the server's open connection sees the same file.
for f in "$work"/data/ledger.db*; do
  size=$(stat -c %s "$f")
  head -c "$size" /dev/zero | dd of="$f" conv=notrunc status=none
done
curl -s "$METRICS/healthz" >"$work/health.txt"
check "/healthz names an unreadable ledger" grep -q 'unavailable: the ledger cannot be read' "$work/health.txt"

echo "# shutdown"
signal_and_wait TERM "$server_pid"
check "sealdropd says STOPPING=1 on SIGTERM" grep -qx 'STOPPING=1' "$work/notify-server.txt"

echo "# make install (item 17)"
build="$(cd "$BIN/../.." && pwd)"
dest="$work/dest"
if DESTDIR="$dest" cmake --install "$build" --prefix /usr/local --strip >"$work/install.log" 2>&1; then
  ok "cmake --install --strip with DESTDIR"
else
  not_ok "cmake --install --strip with DESTDIR"; tail -5 "$work/install.log" | sed 's/^/#   /'
fi
for exe in sealdropd sealdrop sealdrop-trp sealdrop-ca; do
  f="$dest/usr/local/bin/$exe"
  check "$exe is installed" test -x "$f"
  check "$exe is stripped" bash -c "readelf -S '$f' >'$work/sections' && ! grep -q '\.symtab' '$work/sections'"
  check "$exe has a man page" test -s "$dest/usr/local/share/man/man1/$exe.1"
  check "$exe has a bash completion" test -s "$dest/usr/local/share/bash-completion/completions/$exe"
done
check "the man page is the executable's own help" grep -q 'reloads the certificate' "$dest/usr/local/share/man/man1/sealdropd.1"
check "the systemd units are installed" test -s "$dest/usr/local/lib/systemd/system/sealdropd.service" -a -s "$dest/usr/local/lib/systemd/system/sealdrop-trp.service"
check "the completion completes subcommands" env PATH="$dest/usr/local/bin:$PATH" bash -c "source '$dest/usr/local/share/bash-completion/completions/sealdropd'; COMP_WORDS=(sealdropd us); COMP_CWORD=1; _sealdrop_complete sealdropd; [ \"\${COMPREPLY[*]}\" = user ]"
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$work/units"
  for u in sealdropd sealdrop-trp; do
    sed "s#/usr/local/bin/#$dest/usr/local/bin/#g" "$dest/usr/local/lib/systemd/system/$u.service" >"$work/units/$u.service"
  done
  # --man=no: the man pages are not installed on this machine's MANPATH.
  if systemd-analyze verify --man=no "$work/units/sealdropd.service" "$work/units/sealdrop-trp.service" >"$work/verify.log" 2>&1; then
    ok "systemd-analyze verify accepts the units"
  else
    not_ok "systemd-analyze verify accepts the units"; sed 's/^/#   /' "$work/verify.log" | tail -8
  fi
else
  not_ok "systemd-analyze is installed (scripts/bootstrap)"
fi
finish
