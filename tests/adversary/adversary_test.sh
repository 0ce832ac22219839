#!/usr/bin/env bash
# The attack catalogue (docs/threat-model.md, section 9): a hostile host
# (evil_host.py) between a real sealdropd and real sealdrop-trp processes.
# Usage: adversary_test.sh BIN_DIR [ATTACK_ID...]
BIN="$(cd "$1" && pwd)"; shift
source "$(dirname "$0")/../integration/lib.sh"
adversary="$(cd "$(dirname "$0")" && pwd)"
setup_world
make_trp dev1 good
make_trp dev2 good
head -c $((3 << 20)) /dev/urandom > "$work/bigdata.bin"
server program add "$work/data" "$work/bigdata.bin" --name bigdata --version 1 --price 100 >/dev/null
server user credit "$work/data" alice 100000
server user credit "$work/data" bob 100000
printf 'carol-password\n' | server user add "$work/data" carol --credit 0

SERVER="$SEALDROP_SERVER" CA="$work/vendor/ca.pem" TRP1="$work/dev1.sock" TRP2="$work/dev2.sock" \
  WORK="$work" PROGRAM="$work/hello" HELLO_PRICE=250 python3 "$adversary/attacks.py" "$@"
code=$?
[ "$code" -eq 0 ] || failed=$((failed + 1))
check "the audit chain verifies after every attack" server audit verify "$work/data"
finish
