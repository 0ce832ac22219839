#!/usr/bin/env bash
# The attack catalogue (docs/threat-model.md, section 9): a hostile host
# (evil_host.py) between a real sealdropd and real sealdrop-trp processes.
# Usage: adversary_test.sh BIN_DIR [ATTACK_ID...]
BIN="$(cd "$1" && pwd)"; shift
source "$(dirname "$0")/../integration/lib.sh"
# Short idle limits, so the resource attacks finish quickly.
export SERVE_FLAGS="--idle-timeout 5 --max-connections 300 --max-connections-per-address 100"
export TRP_SERVE_FLAGS="--idle-timeout 5"
adversary="$(cd "$(dirname "$0")" && pwd)"
setup_world
make_trp dev1 good
make_trp dev2 good
make_trp dev3 good
make_trp dev4 good
make_trp revoked good
make_trp expired expired
make_trp notyet not-yet-valid
make_trp otherca other-ca
make_trp selfsigned self-signed
# A processor whose host turned the clock back 400 days (libfaketime).
TRP_SERVE_FLAGS="--idle-timeout 5" make_trp clocky good
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null; rm -f "$work/clocky.sock"
# libfaketime preloaded directly: the faketime wrapper would fork, and the
# cleanup would kill the wrapper and leave the processor running. Under ASan
# the preload comes before ASan's runtime, which ASan would refuse.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 FAKETIME='-400d' \
  "$BIN/sealdrop-trp" serve "$work/clocky" --socket "$work/clocky.sock" --idle-timeout 5 2>>"$work/clocky.log" &
pids+=($!)
wait_for "$work/clocky.sock"
cp "$work/hello" "$work/tool-1"; cp "$work/upper" "$work/tool-2"
server program add "$work/data" "$work/tool-1" --name tool --version 1 --price 200 >/dev/null
server program add "$work/data" "$work/tool-2" --name tool --version 2 --price 300 >/dev/null
head -c $((3 << 20)) /dev/urandom > "$work/bigdata.bin"
server program add "$work/data" "$work/bigdata.bin" --name bigdata --version 1 --price 100 >/dev/null
server user credit "$work/data" alice 100000
server user credit "$work/data" bob 100000
printf 'carol-password\n' | server user add "$work/data" carol --credit 0
printf 'dave-password\n' | server user add "$work/data" dave --credit 100000
printf 'erin-password\n' | server user add "$work/data" erin --credit 0

TRP_THIRD="$work/dev3.sock" TRP_FOURTH="$work/dev4.sock" TRP_REVOKED="$work/revoked.sock" TRP_REVOKED_SERIAL="$(cat "$work/revoked.serial")" \
TRP_EXPIRED="$work/expired.sock" TRP_NOTYET="$work/notyet.sock" TRP_OTHERCA="$work/otherca.sock" \
TRP_SELFSIGNED="$work/selfsigned.sock" TRP_CLOCKY="$work/clocky.sock" REVOKE_CMD="$BIN/sealdropd device revoke $work/data" \
SERVER_PID="$server_pid" SERVER="$SEALDROP_SERVER" CA="$work/vendor/ca.pem" TRP1="$work/dev1.sock" TRP2="$work/dev2.sock" \
  WORK="$work" PROGRAM="$work/hello" HELLO_PRICE=250 python3 "$adversary/attacks.py" "$@"
code=$?
[ "$code" -eq 0 ] || failed=$((failed + 1))
check "the audit chain verifies after every attack" server audit verify "$work/data"
finish
