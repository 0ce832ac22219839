# Shared setup for the integration tests: real processes over real sockets.
# Source it, then call setup_world. Requires BIN (the built executables).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work=$(mktemp -d "${TMPDIR:-/tmp}/sealdrop-it.XXXXXX")
pids=()
passed=0
failed=0

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$failed" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "# kept $work"; fi
}
trap cleanup EXIT

ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
# check NAME CMD...: the command must succeed.
check() { local name=$1; shift; if "$@" >"$work/last.out" 2>"$work/last.err"; then ok "$name"; else not_ok "$name"; sed 's/^/#   /' "$work/last.err" | tail -5; fi; }
# refuses NAME PATTERN CMD...: the command must fail (non-zero) and say PATTERN on stderr.
refuses() {
  local name=$1 pattern=$2; shift 2
  if "$@" >"$work/last.out" 2>"$work/last.err"; then
    not_ok "$name (it succeeded)"
  elif grep -qiE "$pattern" "$work/last.err"; then
    ok "$name"
  else
    not_ok "$name (stderr did not match /$pattern/)"; sed 's/^/#   /' "$work/last.err" | tail -5
  fi
}
# same NAME A B: two values must be equal.
same() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (\"$2\" != \"$3\")"; fi; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

ca() { "$BIN/sealdrop-ca" "$@"; }
trp() { "$BIN/sealdrop-trp" "$@"; }
server() { "$BIN/sealdropd" "$@"; }

wait_for() {  # wait_for FILE: until it exists (socket or non-empty file)
  for _ in $(seq 200); do { [ -S "$1" ] || [ -s "$1" ]; } && return 0; sleep 0.05; done
  echo "# $1 did not appear"; return 1
}

# A restarted server keeps its port, as a real server keeps its URL: the
# client's logins belong to a server URL.
start_server() {
  local port=0
  [ -s "$work/port" ] && port=$(cat "$work/port")
  rm -f "$work/port" "$work/metrics-port"
  # shellcheck disable=SC2086 # SERVE_FLAGS holds several words on purpose
  "$BIN/sealdropd" serve "$work/data" --listen "127.0.0.1:$port" --port-file "$work/port" \
    --metrics-listen 127.0.0.1:0 --metrics-port-file "$work/metrics-port" ${SERVE_FLAGS:-} 2>>"$work/server.log" &
  server_pid=$!
  pids+=("$server_pid")
  wait_for "$work/port"
  wait_for "$work/metrics-port"
  export SEALDROP_SERVER="https://127.0.0.1:$(cat "$work/port")"
  METRICS="http://127.0.0.1:$(cat "$work/metrics-port")"
}

stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; }

# make_trp NAME [good|other-ca|expired|not-yet-valid|self-signed]: provisions a
# processor and serves it on $work/NAME.sock.
make_trp() {
  local name=$1 mode=${2:-good} st="$work/$1"
  trp init "$st" >"$work/$name.serial" 2>/dev/null
  case "$mode" in
    good)
      ca issue "$work/mfr" --csr "$st/identity.csr" --profile device --out "$work/$name-id.pem" >/dev/null
      ca issue "$work/mfr" --csr "$st/keywrap.csr" --profile device --out "$work/$name-kw.pem" >/dev/null ;;
    other-ca)
      ca issue "$work/other" --csr "$st/identity.csr" --profile device --out "$work/$name-id.pem" >/dev/null
      ca issue "$work/other" --csr "$st/keywrap.csr" --profile device --out "$work/$name-kw.pem" >/dev/null ;;
    expired|not-yet-valid)
      local start=-40 days=10
      [ "$mode" = not-yet-valid ] && start=5 && days=30
      python3 "$here/forge.py" issue "$work/mfr" "$st/identity.csr" identity "$work/$name-id.pem" --start-days $start --days $days
      python3 "$here/forge.py" issue "$work/mfr" "$st/keywrap.csr" keywrap "$work/$name-kw.pem" --start-days $start --days $days ;;
    self-signed)
      local serial; serial=$(cat "$work/$name.serial")
      python3 "$here/forge.py" unseal "$st" identity "$work/$name-id.key"
      python3 "$here/forge.py" unseal "$st" keywrap "$work/$name-kw.key"
      python3 "$here/forge.py" selfsign "$work/$name-id.key" "$serial" identity "$work/$name-id.pem"
      python3 "$here/forge.py" selfsign "$work/$name-kw.key" "$serial" keywrap "$work/$name-kw.pem" ;;
  esac
  trp install "$st" --cert "$work/$name-id.pem" --cert "$work/$name-kw.pem" --trust "$work/vendor/ca.pem"
  # shellcheck disable=SC2086
  "$BIN/sealdrop-trp" serve "$st" --socket "$work/$name.sock" ${TRP_SERVE_FLAGS:-} 2>>"$work/$name.log" &
  pids+=($!)
  wait_for "$work/$name.sock"
}

# as USER TRP CMD...: runs the client as USER with processor TRP.
as() {
  local user=$1 t=$2; shift 2
  SEALDROP_HOME="$work/home-$user" SEALDROP_TRP="$work/$t.sock" SEALDROP_CA="$work/vendor/ca.pem" \
    "$BIN/sealdrop" "$@"
}

login() {  # login USER PASSWORD
  printf '%s\n' "$2" | as "$1" none login "$1"
}

balance() { as "$1" none balance; }

setup_world() {
  cd "$work"
  ca init mfr --name "Test Manufacturer CA" >/dev/null
  ca init other --name "Unknown Manufacturer CA" >/dev/null
  ca init vendor --name "Test Vendor CA" >/dev/null
  server init data --name "sealdrop test vendor" 2>/dev/null
  ca issue vendor --csr data/server.csr --profile server --out server.pem >/dev/null
  server install data --cert server.pem --trust mfr/ca.pem --crl mfr/crl.pem
  printf 'alice-password\n' | server user add data alice --credit 1000
  printf 'bob-password\n' | server user add data bob --credit 1000
  cc -O2 -o hello "$here/programs/hello.c"
  cc -O2 -o upper "$here/programs/upper.c"
  cc -O2 -o readfile "$here/programs/readfile.c"
  cc -O2 -o sleeper "$here/programs/sleeper.c"
  server program add data hello --name hello --version 1.0 --price 250 >/dev/null
  server program add data upper --name upper --version 2.1 --price 100 >/dev/null
  server program add data readfile --name readfile --version 1 --price 0 >/dev/null
  server program add data sleeper --name sleeper --version 1 --price 0 >/dev/null
  start_server
}
