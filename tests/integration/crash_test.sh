#!/usr/bin/env bash
# Kill each process at every step of a purchase (SEALDROP_CRASH_AT, see
# src/base/crash_point.h): the server after the order, after sealing and after
# the charge committed; the processor when it holds the package, when the
# release verified and when the licence is saved; the client when the charge
# arrives, after it saved the receipt and when the package is released. Each
# killed process is restarted and the client retries its purchase. Then:
#   - before the retry, the balance is debited exactly when the server holds
#     a receipt, and no half-stored package runs;
#   - after it, exactly one debit in all, one receipt, the program runs, the
#     receipt re-downloads at no charge, and the audit chain verifies.
# Usage: crash_test.sh BIN_DIR
BIN="$(cd "$1" && pwd)"
source "$(dirname "$0")/lib.sh"
setup_world
make_trp dev1 good
price=250

serve_trp() {  # serve_trp NAME [CRASH_POINT]: (re)starts a provisioned processor
  SEALDROP_CRASH_AT="${2:-}" "$BIN/sealdrop-trp" serve "$work/$1" --socket "$work/$1.sock" 2>>"$work/$1.log" &
  trp_pid=$!
  pids+=("$trp_pid")
  wait_for "$work/$1.sock"
}
restart_server() {  # restart_server [CRASH_POINT]
  kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null
  SEALDROP_CRASH_AT="${1:-}" start_server
}
receipts_on_server() {  # how many receipts the server holds for USER
  as "$1" none receipts --from-server --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# A processor of its own, so it can be restarted with a crash point.
trp init "$work/crashy" >"$work/crashy.serial" 2>/dev/null
ca issue "$work/mfr" --csr "$work/crashy/identity.csr" --profile device --out "$work/crashy-id.pem" >/dev/null
ca issue "$work/mfr" --csr "$work/crashy/keywrap.csr" --profile device --out "$work/crashy-kw.pem" >/dev/null
trp install "$work/crashy" --cert "$work/crashy-id.pem" --cert "$work/crashy-kw.pem" --trust "$work/vendor/ca.pem"
serve_trp crashy

points=(server.order server.sealed server.charged
        trp.held trp.release_verified trp.licence_saved
        client.charged client.receipt_saved client.released)
for point in "${points[@]}"; do
  user="u-${point//./-}"
  echo "# killed at $point"
  printf 'pw-%s\n' "$user" | server user add "$work/data" "$user" --credit 1000
  login "$user" "pw-$user" >/dev/null
  case "$point" in
    server.*) restart_server "$point" ;;
    trp.*) kill "$trp_pid"; wait "$trp_pid" 2>/dev/null; serve_trp crashy "$point" ;;
  esac
  if [ "${point%%.*}" = client ]; then
    SEALDROP_CRASH_AT="$point" as "$user" crashy buy hello >/dev/null 2>&1; code=$?
  else
    as "$user" crashy buy hello >/dev/null 2>&1; code=$?
  fi
  if [ "$code" -ne 0 ]; then ok "$point: the purchase was interrupted (exit $code)"; else not_ok "$point: the purchase was not interrupted"; fi
  # Restart whatever died.
  case "$point" in
    server.*)
      for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.05; done
      check "$point: the server died at its crash point" bash -c "! kill -0 $server_pid 2>/dev/null"
      restart_server ;;
    trp.*)
      for _ in $(seq 100); do kill -0 "$trp_pid" 2>/dev/null || break; sleep 0.05; done
      check "$point: the processor died at its crash point" bash -c "! kill -0 $trp_pid 2>/dev/null"
      rm -f "$work/crashy.sock"; serve_trp crashy ;;
  esac
  # Invariants before the retry.
  n=$(receipts_on_server "$user"); b=$(balance "$user")
  same "$point: debited exactly when the server holds a receipt" "$b" "$((1000 - price * n))"
  refuses "$point: no half-stored package runs" "not installed|damaged" as "$user" crashy run hello
  # The retry: the same command again, as a user would.
  check "$point: the retried purchase completes" as "$user" crashy buy hello
  same "$point: one debit in all" "$(balance "$user")" "$((1000 - price))"
  same "$point: one receipt on the server" "$(receipts_on_server "$user")" 1
  out=$(as "$user" crashy run hello -- x 2>&1)
  same "$point: the program runs" "$(grep -c 'arg 1: x' <<<"$out")" 1
  check "$point: the receipt re-downloads" as "$user" crashy get hello
  same "$point: the re-download is free" "$(balance "$user")" "$((1000 - price))"
done
check "the audit chain verifies after every crash" server audit verify "$work/data"
finish
