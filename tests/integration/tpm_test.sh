#!/usr/bin/env bash
# The TPM 2.0 backend end to end (docs/tpm.md): processors whose keys live in
# software TPMs (swtpm, started by scripts/swtpm with EK certificates from a
# local CA that plays the TPM maker), enrolled by credential activation, next
# to a soft processor on one server. Usage: tpm_test.sh BIN_DIR
BIN="$(cd "$1" && pwd)"
source "$(dirname "$0")/lib.sh"
swtpm() { "$here/../../scripts/swtpm" "$@"; }
stop_tpms() { for t in "$work"/tpm-*; do [ -d "$t" ] && swtpm stop "$t"; done; }
trap 'stop_tpms; cleanup' EXIT

setup_world
make_trp soft1 good

echo "# software TPMs with EK certificates from two makers"
tcti_a=$(swtpm start "$work/tpm-a" --maker "$work/maker") || { not_ok "swtpm A starts"; finish; exit 1; }
tcti_b=$(swtpm start "$work/tpm-b" --maker "$work/maker") || { not_ok "swtpm B starts"; finish; exit 1; }
tcti_c=$(swtpm start "$work/tpm-c" --maker "$work/maker") || { not_ok "swtpm C starts"; finish; exit 1; }
tcti_r=$(swtpm start "$work/tpm-rogue" --maker "$work/rogue-maker") || { not_ok "swtpm R starts"; finish; exit 1; }
tcti_n=$(swtpm start "$work/tpm-noek") || { not_ok "swtpm N starts"; finish; exit 1; }
ok "five software TPMs run"
cat "$work/maker/swtpm-localca-rootca-cert.pem" "$work/maker/issuercert.pem" >"$work/tpm-makers.pem"

# enrol_tpm NAME TCTI: init, enrolment request, challenge, activation, issue, install, serve.
enrol_tpm() {
  local name=$1 tcti=$2 st="$work/$1"
  check "$name: init --backend tpm makes the keys in the TPM" \
    bash -c "'$BIN/sealdrop-trp' init '$st' --backend tpm --tcti '$tcti' >'$work/$name.serial'"
  check "$name: the manufacturer CA checks the EK certificate and challenges" \
    ca enrol "$work/mfr" --request "$st/enrol-request.json" --tpm-roots "$work/tpm-makers.pem" --out "$work/$name.challenge"
  check "$name: the TPM answers by credential activation" \
    trp activate "$st" --challenge "$work/$name.challenge" --out "$work/$name.response"
  mkdir -p "$work/$name-certs"
  check "$name: the CA issues both certificates" \
    ca enrol "$work/mfr" --response "$work/$name.response" --out-dir "$work/$name-certs"
  check "$name: install" trp install "$st" --cert "$work/$name-certs/identity.pem" \
    --cert "$work/$name-certs/keywrap.pem" --trust "$work/vendor/ca.pem"
}
serve_trp() {  # serve_trp NAME
  "$BIN/sealdrop-trp" serve "$work/$1" --socket "$work/$1.sock" 2>>"$work/$1.log" &
  echo $! >"$work/$1.pid"; pids+=($!)
  wait_for "$work/$1.sock"
}
stop_trp() { kill "$(cat "$work/$1.pid")" 2>/dev/null; wait "$(cat "$work/$1.pid")" 2>/dev/null; rm -f "$work/$1.sock"; }

echo "# enrolment rooted in the EK certificate"
enrol_tpm tpm1 "$tcti_a"
check "info says the keys are in the TPM" bash -c "'$BIN/sealdrop-trp' info '$work/tpm1' | grep -q 'backend: *tpm (swtpm:'"
check "the state holds no private key in the clear" bash -c "! grep -rlq 'PRIVATE KEY-----' '$work/tpm1' --include='*.pem' --exclude='*.tss2.pem' && ! test -e '$work/tpm1/root.key'"
check "the identity certificate carries the TPM binding (the EK certificate's hash)" \
  bash -c "openssl x509 -in '$work/tpm1-certs/identity.pem' -noout -text | grep -q '2.25.65878691943607277190943474957079852736'"
refuses "the challenge is answered once" "no open enrolment" \
  ca enrol "$work/mfr" --response "$work/tpm1.response" --out-dir "$work/tpm1-certs"
refuses "a challenge for one processor is not answered by another's state" "is for processor|refused|not" \
  bash -c "'$BIN/sealdrop-trp' init '$work/tpm1b' --backend tpm --tcti '$tcti_c' >/dev/null 2>&1; '$BIN/sealdrop-trp' activate '$work/tpm1b' --challenge '$work/tpm1.challenge' --out '$work/x.response'"
rm -rf "$work/tpm1b"

check "a TPM from an untrusted maker initialises" bash -c "'$BIN/sealdrop-trp' init '$work/rogue' --backend tpm --tcti '$tcti_r' >/dev/null"
refuses "but its EK certificate is refused by the manufacturer CA" "not from a trusted TPM maker" \
  ca enrol "$work/mfr" --request "$work/rogue/enrol-request.json" --tpm-roots "$work/tpm-makers.pem" --out "$work/rogue.challenge"
python3 - "$work/tpm1/enrol-request.json" "$work/swapped.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["identity_public"], r["keywrap_public"] = r["keywrap_public"], r["identity_public"]
json.dump(r, open(sys.argv[2], "w"))
PY
refuses "keys whose TPM attributes do not fit their role are refused" "attributes" \
  ca enrol "$work/mfr" --request "$work/swapped.json" --tpm-roots "$work/tpm-makers.pem" --out "$work/swapped.challenge"
refuses "enrol needs the TPM makers' roots" "tpm-roots" \
  ca enrol "$work/mfr" --request "$work/tpm1/enrol-request.json" --out "$work/x.challenge"
refuses "init --backend tpm without a reachable TPM fails clearly" "TPM|tcti|connect" \
  trp init "$work/nowhere" --backend tpm --tcti "swtpm:host=127.0.0.1,port=1"
check "and leaves no state behind" test ! -e "$work/nowhere"
refuses "a TPM without an EK certificate cannot become a processor" "no EK certificate" \
  trp init "$work/noek" --backend tpm --tcti "$tcti_n"
refuses "an unknown backend is a usage error" "backend" trp init "$work/x" --backend hsm

echo "# the whole flow with the TPM processor, next to a soft one"
serve_trp tpm1
check "alice logs in" login alice alice-password
check "bob logs in" login bob bob-password
check "alice buys hello with the TPM processor" as alice tpm1 buy hello
same "alice was charged once" "$(balance alice)" 750
expected=$("$work/hello" a "b c"; echo "exit=$?")
same "the program runs in the TPM processor" "$(as alice tpm1 run hello -- a "b c"; echo "exit=$?")" "$expected"
rm -f "$work"/home-alice/packages/hello.*
check "alice re-downloads hello with her receipt" as alice tpm1 get hello
same "no charge for the re-download" "$(balance alice)" 750
same "the re-downloaded program runs" "$(as alice tpm1 run hello -- a "b c"; echo "exit=$?")" "$expected"
check "alice gets readfile (free) for the TPM processor" as alice tpm1 buy readfile
leaked=""
for fd in 3 4 5 6 7 8 9 10 11 12; do
  as alice tpm1 run readfile -- "/proc/self/fd/$fd" >/dev/null 2>&1 && leaked="$leaked $fd"
done
same "a program inherits no descriptor of the processor (its TPM connection among them)" "${leaked:-none}" none
check "bob buys upper with the soft processor on the same server" as bob soft1 buy upper
same "and runs it" "$(printf 'x\n' | as bob soft1 run upper 2>/dev/null)" "X"

echo "# packages do not move between processors"
enrol_tpm tpm2 "$tcti_b"
serve_trp tpm2
refuses "TPM B holds no licence for TPM A's package" "no licence" as alice tpm2 run hello
# A host that also copies the licences (they are not secret) gets to the
# key unwrap itself, which needs the private key-wrap key of the right TPM.
cp "$work"/tpm1/licences/*.json "$work/tpm2/licences/"
refuses "a package sealed for TPM A does not open on TPM B, even with A's licence" "another processor" as alice tpm2 run hello
cp "$work"/tpm1/licences/*.json "$work/soft1/licences/"
refuses "nor on a soft processor" "another processor" as alice soft1 run hello
cp "$work"/soft1/licences/*.json "$work/tpm1/licences/"
refuses "a soft processor's package does not open on a TPM processor" "another processor" as bob tpm1 run upper
same "the TPM processor still runs its own package" "$(as alice tpm1 run hello -- a "b c"; echo "exit=$?")" "$expected"

echo "# the state directory copied next to another TPM"
stop_trp tpm2
cp -a "$work/tpm1" "$work/tpm1-copy"
python3 - "$work/tpm1-copy/device.json" "$tcti_c" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["tcti"] = sys.argv[2]; json.dump(d, open(sys.argv[1], "w"))
PY
refuses "a copy of the state next to TPM C loads no key" "cannot load this processor's keys" \
  trp serve "$work/tpm1-copy" --socket "$work/tpm1-copy.sock"

echo "# clearing the TPM"
stop_trp tpm1
check "tpm2_clear on TPM A" tpm2_clear -T "$tcti_a"
refuses "after tpm2_clear the processor cannot load its keys" "cannot load this processor's keys" \
  trp serve "$work/tpm1" --socket "$work/tpm1.sock"
swtpm restart "$work/tpm-a"
refuses "nor after a power cycle" "cannot load this processor's keys" \
  trp serve "$work/tpm1" --socket "$work/tpm1.sock"
refuses "so the package it held no longer opens anywhere" "cannot reach the processor" as alice tpm1 run hello
check "the package file itself is still there" test -s "$work/home-alice/packages/hello.sdpkg"

finish
