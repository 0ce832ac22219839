#!/usr/bin/env bash
# The README's session by hand, pasted into a fresh shell as a new user would:
# it must build hello, buy it, run it and stop its daemons.
# Usage: readme_test.sh BIN_DIR
set -uo pipefail
BIN="$(cd "$1" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
readme="$here/../../README.md"
work=$(mktemp -d "${TMPDIR:-/tmp}/sealdrop-readme.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The first sh block that puts the executables on PATH is the session.
python3 - "$readme" >"$work/session.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
session = [b for b in blocks if b.startswith("export PATH=")]
assert session, "the README has no session by hand that starts with export PATH="
print(session[0], end="")
PY
[ -s "$work/session.sh" ] || { echo "not ok - the README's session by hand was found"; exit 1; }
# Two substitutions only: the executables of this build instead of
# $PWD/build/src/cli, and a free port instead of 8443 (another server may
# hold it on a shared machine).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "1s|^export PATH=[^ ]*|export PATH=$BIN:\$PATH|; s/8443/$port/g" "$work/session.sh"
grep -q "^export PATH=$BIN:" "$work/session.sh" || { echo "not ok - the PATH line was not where expected"; exit 1; }

cd "$work"
HOME="$work/home-dir" timeout 180 bash "$work/session.sh" >"$work/out" 2>"$work/err"
code=$?
passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); sed 's/^/#   /' "$work/err" | tail -15; }
[ "$code" -eq 0 ] && ok "the session exits 0" || not_ok "the session exits 0 (exit $code)"
grep -qx "hello, world" "$work/out" && ok "the bought program runs and prints hello, world" || not_ok "hello, world was printed"
grep -q "bought hello 1.0 for 250" "$work/out" && ok "the purchase is charged once, 250" || not_ok "the purchase line"
grep -q "NEEDED.*libc.so.6" "$work/out" && ok "readelf shows the protected program's imports" || not_ok "readelf -d shows NEEDED"
# The daemons were stopped by the session's own last line.
sleep 0.5
if pgrep -f "sealdropd serve data --listen 127.0.0.1:$port" >/dev/null; then
  not_ok "the session stops its server"; pkill -f "sealdropd serve data --listen 127.0.0.1:$port"
else
  ok "the session stops its server"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
