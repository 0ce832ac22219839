#!/usr/bin/env bash
# The command lines as a new user, a script and an operator meet them, between
# real processes: unknown commands and bad numbers, exit codes and JSON, the
# login tied to its server, honest purchase retries, the progress bar on a
# terminal, a large environment, inspect with the wrong certificate.
# Usage: client_test.sh BIN_DIR
BIN="$(cd "$1" && pwd)"
source "$(dirname "$0")/lib.sh"
setup_world
make_trp dev1 good
A=$SEALDROP_SERVER

# exits NAME CODE PATTERN CMD...: the command must exit with CODE and say
# PATTERN (extended regex; empty: anything) on stderr.
exits() {
  local name=$1 want=$2 pattern=$3; shift 3
  "$@" >"$work/last.out" 2>"$work/last.err"; local code=$?
  if [ "$code" -ne "$want" ]; then
    not_ok "$name (exit $code, not $want)"; sed 's/^/#   /' "$work/last.err" | tail -3
  elif [ -z "$pattern" ]; then
    ok "$name"
  elif ! grep -qE -- "$pattern" "$work/last.err"; then
    not_ok "$name (stderr did not match /$pattern/)"; sed 's/^/#   /' "$work/last.err" | tail -3
  else
    ok "$name"
  fi
}
# lacks NAME PATTERN FILE: FILE must not match PATTERN.
lacks() { if grep -qE -- "$2" "$3"; then not_ok "$1"; sed 's/^/#   /' "$3" | grep -E -- "$2" | head -3; else ok "$1"; fi; }
user_add() { printf '%s\n' "$2" | server user add "$work/data" "$1" --credit "$3"; }
pending_count() { find "$work/home-$1/pending" -type f 2>/dev/null | wc -l; }

echo "# unknown commands are called unknown, on all four executables"
for exe in sealdrop sealdropd sealdrop-trp sealdrop-ca; do
  exits "$exe frobnicate: unknown command, exit 2" 2 'unknown command "frobnicate"' "$BIN/$exe" frobnicate
done
exits "sealdropd user frobnicate names the command group" 2 'unknown command "frobnicate" for sealdropd user' \
  server user frobnicate
exits "no command at all says so" 2 'no command given' "$BIN/sealdrop"
exits "an unknown option is called unknown, not a missing command" 2 'unknown option --frob for sealdrop-ca' ca --frob
exits "an option without its value says so" 2 '^sealdrop: --trp needs a value' "$BIN/sealdrop" --trp
check "sealdrop-ca --help lists enrol" bash -c "'$BIN/sealdrop-ca' --help | grep -qE '^ +enrol'"
exits "sealdrop-ca's unknown-command sentence lists enrol" 2 'enrol' ca frobnicate

echo "# numbers out of range read as one sentence"
exits "sealdropd serve --threads 0" 2 '--threads must be a whole number from 1 to 64' \
  server serve "$work/data" --threads 0
lacks "no CLI11 range text" 'not in range|0\.000000|179769' "$work/last.err"
exits "sealdropd serve --max-connections 0" 2 '--max-connections must be a whole number from 1 to 1000000' \
  server serve "$work/data" --max-connections 0
exits "sealdropd serve --idle-timeout 0" 2 '--idle-timeout must be a whole number from 1 to 86400' \
  server serve "$work/data" --idle-timeout 0
exits "sealdropd user add --credit -5" 2 '--credit must be a whole number 0 or more' \
  bash -c "echo pw | '$BIN/sealdropd' user add '$work/data' zed --credit -5"
lacks "no CLI11 range text for --credit" 'not in range|0\.000000|179769' "$work/last.err"
exits "sealdropd user credit 0" 2 'AMOUNT must be a whole number 1 or more' server user credit "$work/data" alice 0
exits "sealdropd program add --price -1" 2 '--price must be a whole number 0 or more' \
  server program add "$work/data" "$work/hello" --name x --version 1 --price -1
exits "sealdrop-trp serve --idle-timeout 0" 2 '--idle-timeout must be a whole number from 1 to 86400' \
  trp serve "$work/dev1" --socket "$work/x.sock" --idle-timeout 0
exits "sealdrop-ca init --days 0" 2 '--days must be a whole number from 1 to' ca init "$work/ca-x" --name x --days 0

echo "# errors a script can branch on: exit codes and --json"
login alice alice-password >/dev/null
exits "a missing receipt exits 4" 4 'no receipt for "nosuch"' as alice dev1 get nosuch
exits "with --json the error is JSON on stderr" 4 '^\{"error":\{"code":"not_found","message":"no receipt' \
  as alice dev1 get nosuch --json
check "and stdout stays empty" test ! -s "$work/last.out"
exits "sealdrop-ca's failures carry their class (missing CSR: exit 1, with the file named)" 1 'no-such.csr' \
  ca issue "$work/mfr" --csr "$work/no-such.csr" --profile device --out "$work/x.pem"
exits "sealdrop-ca errors are JSON with --json" 4 '^\{"error":\{"code":"not_found"' ca list "$work/no-such-ca" --json
exits "a usage error with --json is JSON too" 2 '^\{"error":\{"code":"usage"' "$BIN/sealdrop" frobnicate --json
check "login --json prints JSON" bash -c "printf 'alice-password\n' | SEALDROP_HOME='$work/home-alice' SEALDROP_CA='$work/vendor/ca.pem' \
  '$BIN/sealdrop' login alice --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j[\"user\"]==\"alice\" and j[\"balance\"]==1000'"

echo "# a failed purchase that never reached the charge leaves nothing pending"
exits "buy with an unreachable processor fails, exit 7" 7 'cannot reach the processor' \
  as alice dev1 --trp "$work/nonexistent.sock" buy hello
same "nothing is pending after it" "$(pending_count alice)" 0
lacks "it does not claim a charge" 'charged' "$work/last.err"
exits "the next buy succeeds" 0 '' as alice dev1 buy hello
lacks "and does not pretend to resume" 'resum' "$work/last.err"
same "alice was charged once" "$(balance alice)" 750
user_add poor poor-password 100
login poor poor-password >/dev/null
exits "a purchase beyond the balance exits 5" 5 'insufficient|balance' as poor dev1 buy hello
same "a refused charge leaves nothing pending" "$(pending_count poor)" 0
exits "a retry is refused again, without 'resuming'" 5 'insufficient|balance' as poor dev1 buy hello
lacks "no 'resuming' after a refused charge" 'resum' "$work/last.err"
user_add carol carol-password 1000
login carol carol-password >/dev/null
SEALDROP_CRASH_AT=client.charged as carol dev1 buy upper >/dev/null 2>&1
same "a client killed after the charge keeps its key" "$(pending_count carol)" 1
exits "the retry resumes and says what may have happened" 0 \
  'resuming an earlier purchase of upper that may have been charged; it will not be charged twice' as carol dev1 buy upper
same "carol was charged once" "$(balance carol)" 900
same "nothing pending once stored" "$(pending_count carol)" 0
SEALDROP_CRASH_AT=client.charged as carol dev1 buy readfile >/dev/null 2>&1
exits "with --json a resumed purchase succeeds" 0 '' as carol dev1 buy readfile --json
cp "$work/last.out" "$work/resumed.json"; cp "$work/last.err" "$work/resumed.err"
check "it says so in the result (resumed: true)" python3 -c "import json; assert json.load(open('$work/resumed.json'))['resumed'] is True"
check "and not on stderr" test ! -s "$work/resumed.err"
same "carol was charged once for readfile too (its price is 0; one receipt)" \
  "$(ls "$work/home-carol/receipts" | wc -l)" 2

echo "# buying a version you already own"
# The flag on the wire is checked by protocol_test (HostSession.PurchaseCarriesAgainOnlyWhenAsked);
# the refusal of a plain second purchase is the server's.
exits "a second purchase of hello is refused, exit 8, pointing to 'sealdrop get'" 8 "sealdrop get hello.*--again" \
  as alice dev1 buy hello
same "and costs nothing" "$(balance alice)" 750
exits "buy --again buys a second licence" 0 '' as alice dev1 buy --again hello
same "charged a second time" "$(balance alice)" 500

echo "# the run environment: only what the processor passes on"
big=$(head -c 100000 /dev/zero | tr '\0' x)
envs=()
for i in $(seq 16); do envs+=("BIG$i=$big"); done
out=$(env "${envs[@]}" TZ=UTC SEALDROP_HOME="$work/home-alice" SEALDROP_TRP="$work/dev1.sock" \
  "$BIN/sealdrop" run hello -- a 2>"$work/run.err"); code=$?
same "run with 1.6 MB of environment works" "$code:$(head -1 <<<"$out")" "4:hello from a sealed program: 1 argument(s)"
exits "arguments beyond the processor's limit are refused with a sentence, exit 125" 125 'arguments are too long' \
  as alice dev1 run hello -- "$big" "$big" "$big"
exits "a program that is not stored exits 127" 127 'not installed' as alice dev1 run nosuch
exits "an unreachable processor exits 125" 125 'cannot reach the processor' as alice nowhere run hello

echo "# inspect with the wrong certificate fails"
check "inspect with the server's certificate passes" as alice none inspect hello --cert "$work/server.pem"
exits "inspect with another certificate exits 6 and says why" 6 'signature does not verify against the server certificate' \
  as alice none inspect hello --cert "$work/vendor/ca.pem"
cp "$work/last.out" "$work/inspect.out"
check "the report is still printed, with the status" grep -q 'unknown-key' "$work/inspect.out"

echo "# a login belongs to its server"
server init "$work/data2" --name "second store" 2>/dev/null
ca issue "$work/vendor" --csr "$work/data2/server.csr" --profile server --out "$work/server2.pem" >/dev/null
server install "$work/data2" --cert "$work/server2.pem" --trust "$work/mfr/ca.pem" --crl "$work/mfr/crl.pem"
printf 'alice-at-b\n' | server user add "$work/data2" alice --credit 42
"$BIN/sealdropd" serve "$work/data2" --listen 127.0.0.1:0 --port-file "$work/port2" --metrics-listen none 2>>"$work/server2.log" &
pids+=($!)
wait_for "$work/port2"
B="https://127.0.0.1:$(cat "$work/port2")"
exits "store A's token is not sent to store B" 3 "not logged in at $B; run 'sealdrop login USER'" \
  env SEALDROP_SERVER="$B" bash -c "$(declare -f as); work=$work BIN=$BIN; as alice none balance"
lacks "store B saw no login" 'login|auth' "$work/server2.log"
check "alice logs in at store B" bash -c "printf 'alice-at-b\n' | SEALDROP_SERVER='$B' SEALDROP_HOME='$work/home-alice' SEALDROP_CA='$work/vendor/ca.pem' '$BIN/sealdrop' login alice"
same "store B's balance with store B's login" "$(SEALDROP_SERVER="$B" balance alice)" 42
same "store A's login still works at A" "$(SEALDROP_SERVER="$A" balance alice)" 500
same "the vendor root remembered at login is used without --ca" \
  "$(env -u SEALDROP_CA SEALDROP_SERVER="$A" SEALDROP_HOME="$work/home-alice" "$BIN/sealdrop" balance 2>&1)" 500
exits "inspect with store B's certificate (another key) fails" 6 'it names another key' \
  as alice none inspect hello --cert "$work/server2.pem"
# The password prompt on a terminal: shown, and the password not echoed.
cat >"$work/login_prompt.py" <<'PY'
import os, pty, select, sys, time
exe, home, server = sys.argv[1:4]
env = {k: v for k, v in os.environ.items() if k != "SEALDROP_PASSWORD"}
env.update(SEALDROP_HOME=home, SEALDROP_SERVER=server)
pid, fd = pty.fork()
if pid == 0:
    os.execve(exe, [exe, "login", "alice"], env)
out = b""
def read_until(pred, limit=20):
    global out
    end = time.time() + limit
    while not pred() and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
read_until(lambda: b"password: " in out)
assert b"password: " in out, out
os.write(fd, b"alice-password\n")
read_until(lambda: False, 10)
# A client that never ends (a password lost at the prompt) fails the check
# instead of hanging the test.
for _ in range(100):
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.1)
else:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    raise SystemExit(f"the client did not finish after the password was typed: {out!r}")
print(out)
assert os.WEXITSTATUS(status) == 0, status
assert b"logged in as alice" in out, out
assert b"alice-password" not in out, "the password was echoed"
PY
# A session of its own: the terminal's hang-up at the end concerns only it.
if setsid -w python3 "$work/login_prompt.py" "$BIN/sealdrop" "$work/home-alice" "$A" >"$work/pty.out" 2>&1; then
  ok "login prompts on a terminal without echo"
else
  not_ok "login prompts on a terminal without echo"; sed 's/^/#   /' "$work/pty.out"
fi

echo "# the server's certificate: expired, and a missing --ca"
python3 - "$work" <<'PY' || not_ok "expired, not-yet-valid and wrong-host server certificates are made"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
import ipaddress
w = sys.argv[1]
ca_cert = x509.load_pem_x509_certificate(open(f"{w}/vendor/ca.pem", "rb").read())
ca_key = serialization.load_pem_private_key(open(f"{w}/vendor/ca.key", "rb").read(), None)
now = datetime.datetime.now(datetime.timezone.utc)
day = datetime.timedelta(days=1)
# name: (not before, not after, the address the certificate is for)
kinds = {"expired": (now - 40 * day, now - 10 * day, "127.0.0.1"),
         "notyet": (now + 10 * day, now + 40 * day, "127.0.0.1"),
         "wronghost": (now - day, now + 30 * day, "10.9.9.9")}
for name, (start, end, ip) in kinds.items():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name + " store")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(ca_key, hashes.SHA256()))
    open(f"{w}/{name}.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    open(f"{w}/{name}.key", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
PY
for kind in expired notyet wronghost; do
  python3 - "$work" "$kind" <<'PY' 2>>"$work/badcert.log" &
import os, socket, ssl, sys
w, kind = sys.argv[1], sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{w}/{kind}.pem", f"{w}/{kind}.key")
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
open(f"{w}/port-{kind}.tmp", "w").write(str(s.getsockname()[1]))
os.rename(f"{w}/port-{kind}.tmp", f"{w}/port-{kind}")
while True:
    c, _ = s.accept()
    try:
        ctx.wrap_socket(c, server_side=True).close()
    except Exception:
        c.close()
PY
  pids+=($!)
  wait_for "$work/port-$kind"
done
C="https://127.0.0.1:$(cat "$work/port-expired")"
exits "catalog: an expired server certificate is called expired (exit 6)" 6 "certificate has expired" \
  env SEALDROP_SERVER="$C" bash -c "$(declare -f as); work=$work BIN=$BIN; as nobody none catalog"
exits "login: an expired server certificate is called expired" 6 "certificate has expired" \
  env SEALDROP_SERVER="$C" SEALDROP_PASSWORD=x bash -c "$(declare -f as); work=$work BIN=$BIN; as nobody none login nobody"
exits "a server certificate not valid yet is called so (exit 6)" 6 "certificate is not valid yet" \
  env SEALDROP_SERVER="https://127.0.0.1:$(cat "$work/port-notyet")" bash -c "$(declare -f as); work=$work BIN=$BIN; as nobody none catalog"
exits "a server certificate for another host is called so (exit 6)" 6 "not for this host name" \
  env SEALDROP_SERVER="https://127.0.0.1:$(cat "$work/port-wronghost")" bash -c "$(declare -f as); work=$work BIN=$BIN; as nobody none catalog"
exits "login: a server certificate for another host is called so" 6 "not for this host name" \
  env SEALDROP_SERVER="https://127.0.0.1:$(cat "$work/port-wronghost")" SEALDROP_PASSWORD=x bash -c "$(declare -f as); work=$work BIN=$BIN; as nobody none login nobody"
exits "a missing --ca file is named (exit 4)" 4 "vendor root $work/no-such-ca.pem \(--ca or SEALDROP_CA\) does not exist" \
  as alice none --ca "$work/no-such-ca.pem" catalog

echo "# JSON output: one time format"
check "receipts --json gives issued_at in RFC 3339 UTC" bash -c "$(declare -f as); work=$work BIN=$BIN; as alice none receipts --json | python3 -c '
import json,re,sys
r=json.load(sys.stdin); assert r
for x in r: assert re.fullmatch(r\"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\", x[\"issued_at\"]), x[\"issued_at\"]'"
check "list --json gives released_at in RFC 3339 UTC" bash -c "$(declare -f as); work=$work BIN=$BIN; as alice dev1 list --json | python3 -c '
import json,re,sys
r=json.load(sys.stdin)[\"licences\"]; assert r
for x in r: assert re.fullmatch(r\"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\", str(x[\"released_at\"])), x[\"released_at\"]'"

echo "# the progress bar on a terminal"
head -c 30000000 /dev/urandom >"$work/big.bin"
server program add "$work/data" "$work/big.bin" --name big --version 1 --price 10 >/dev/null
tty_run() {  # tty_run USER CMD...: runs the client on a pseudo-terminal, output in $work/tty.out
  local user=$1; shift
  script -qec "env SEALDROP_HOME='$work/home-$user' SEALDROP_TRP='$work/dev1.sock' SEALDROP_CA='$work/vendor/ca.pem' '$BIN/sealdrop' $*" \
    /dev/null >"$work/tty.out" 2>&1 </dev/null
  tr '\r' '\n' <"$work/tty.out" >"$work/tty.lines"
}
tty_run alice buy big
check "the bar shows a rate and the time left" grep -qE 'MiB/s +ETA ' "$work/tty.lines"
python3 - "$work/tty.lines" <<'PY' && ok "the bar never shows more than the total" || not_ok "the bar never shows more than the total"
import re, sys
units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
seen = 0
for line in open(sys.argv[1], errors="replace"):
    for a, ua, b, ub in re.findall(r"([\d.]+) (B|KiB|MiB|GiB) / ([\d.]+) (B|KiB|MiB|GiB)", line):
        seen += 1
        if float(a) * units[ua] > float(b) * units[ub]:
            print("over:", line.strip()); sys.exit(1)
sys.exit(0 if seen else 1)
PY
check "the finished bar reads 100% of the total" grep -qE '100% 28\.6 MiB / 28\.6 MiB' "$work/tty.lines"
user_add pauper pauper-password 5
login pauper pauper-password >/dev/null
tty_run pauper buy big
check "an error after the bar starts on a line of its own" grep -qE '^sealdrop: .*(insufficient|balance)' "$work/tty.lines"
finish
