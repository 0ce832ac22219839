#!/usr/bin/env bash
# Protected ELF programs end to end: programs built here (C and C++, PIE and
# non-PIE, stripped and not, static) and programs from this machine's own
# Debian packages are sealed by sealdropd, bought through the full flow, and
# run through the processor; their output, errors and exit codes must match
# the plain programs'. The stored packages keep their imports readable by
# readelf and nothing else; any flipped byte stops them from running.
# Usage: elf_test.sh BIN_DIR
BIN="$(cd "$1" && pwd)"
source "$(dirname "$0")/lib.sh"
setup_world
make_trp dev1 good
make_trp dev2 good
login alice alice-password >/dev/null
login bob bob-password >/dev/null

elf="$work/elf"
mkdir -p "$elf" "$work/run"
cd "$work/run"

echo "# building the test programs"
p="$here/programs"
cc -O2 -fPIE -pie -o "$elf/c-pie" "$p/hello.c"
cc -O2 -no-pie -o "$elf/c-nopie" "$p/hello.c"
cc -O2 -s -o "$elf/c-stripped" "$p/upper.c"
cc -O2 -no-pie -s -o "$elf/c-nopie-stripped" "$p/upper.c"
cc -O2 -static -o "$elf/c-static" "$p/hello.c"
g++ -O2 -o "$elf/cxx-pie" "$p/wordfreq.cc"
g++ -O2 -no-pie -s -o "$elf/cxx-nopie-stripped" "$p/wordfreq.cc"
g++ -O2 -static -o "$elf/cxx-static" "$p/wordfreq.cc"
for prog in sort sqlite3 openssl file; do cp "$(command -v $prog)" "$elf/$prog"; done
programs=(c-pie c-nopie c-stripped c-nopie-stripped c-static cxx-pie cxx-nopie-stripped cxx-static sort sqlite3 openssl file)
check "the Debian programs are dynamically linked to more than libc" \
  bash -c "readelf -d $elf/sqlite3 | grep -q libsqlite3 && readelf -d $elf/openssl | grep -q libssl && readelf -d $elf/file | grep -q libmagic"

echo "# sealing and buying"
for prog in "${programs[@]}"; do
  if server program add "$work/data" "$elf/$prog" --name "$prog" --version 1 --price 0 >"$work/add.out" 2>&1 &&
     grep -q "protected program" "$work/add.out"; then
    ok "sealdropd adds $prog as a protected program"
  else
    not_ok "sealdropd adds $prog as a protected program"; sed 's/^/#   /' "$work/add.out"
  fi
  check "alice buys $prog" as alice dev1 buy "$prog"
done

echo "# the sealed programs behave exactly like the originals"
printf 'the quick brown fox\njumps over the lazy dog\nthe end\n' > words.txt
: > empty.txt
python3 -c "
import random
random.seed(7)
w = ['alpha', 'beta', 'gamma', 'delta', 'sealdrop', 'processor', 'zeta']
print('\n'.join(' '.join(random.choice(w) for _ in range(12)) for _ in range(20000)))" > big.txt
printf '10\n9\n100\n-3\n7\n' > numbers.txt
plain_env=(env -i PATH=/usr/local/bin:/usr/bin:/bin ${LANG:+LANG=$LANG} ${LC_ALL:+LC_ALL=$LC_ALL} ${TERM:+TERM=$TERM} ${TZ:+TZ=$TZ})
# compare PROG STDIN ARGS...: same stdout, stderr and exit code, plain and sealed.
compare() {
  local prog=$1 input=$2; shift 2
  "${plain_env[@]}" bash -c 'exec -a "$0" "$@"' "$prog" "$elf/$prog" "$@" <"$input" >plain.out 2>plain.err
  local plain_code=$?
  as alice dev1 run "$prog" -- "$@" <"$input" >sealed.out 2>sealed.err
  local sealed_code=$?
  local label="$prog $* <$(basename "$input")"
  if [ "$plain_code" = "$sealed_code" ] && cmp -s plain.out sealed.out && cmp -s plain.err sealed.err; then
    ok "$label: same output, errors and exit code ($plain_code)"
  else
    not_ok "$label: plain exit $plain_code, sealed exit $sealed_code"
    diff plain.out sealed.out | head -5 | sed 's/^/#   /'
    diff plain.err sealed.err | head -5 | sed 's/^/#   /'
  fi
}
for prog in c-pie c-nopie c-static; do
  compare $prog empty.txt
  compare $prog empty.txt one two
  compare $prog empty.txt "with space" x y z
done
for prog in c-stripped c-nopie-stripped; do
  compare $prog words.txt
  compare $prog empty.txt
  compare $prog big.txt
done
for prog in cxx-pie cxx-nopie-stripped cxx-static; do
  compare $prog words.txt
  compare $prog big.txt --top 3
  compare $prog empty.txt --fail
  compare $prog empty.txt --bogus
done
compare sort words.txt
compare sort numbers.txt -n -r
compare sort big.txt -u
compare sort empty.txt --no-such-option
compare sqlite3 empty.txt :memory: "select 1+2;"
compare sqlite3 empty.txt :memory: "create table t(x); insert into t values(1),(2),(39); select sum(x), count(*) from t;"
compare sqlite3 empty.txt :memory: "select no_such_function(1);"
compare openssl empty.txt dgst -sha256 words.txt
compare openssl words.txt enc -base64
compare openssl empty.txt no-such-command
compare file empty.txt -b words.txt
compare file empty.txt -b --mime-type big.txt
compare file empty.txt -b /usr/bin/true

echo "# the stored packages: imports readable, code and data not"
for prog in "${programs[@]}"; do
  pkg="$work/home-alice/packages/$prog.sdpkg"
  same "$prog: readelf -d shows the original's NEEDED entries" \
    "$(readelf -d "$pkg" 2>&1 | grep NEEDED)" "$(readelf -d "$elf/$prog" 2>&1 | grep NEEDED)"
  same "$prog: readelf --dyn-syms shows the original's symbols" \
    "$(readelf --dyn-syms -W "$pkg" 2>&1 | awk '{print $8}')" "$(readelf --dyn-syms -W "$elf/$prog" 2>&1 | awk '{print $8}')"
  check "$prog: every encrypted section differs, every plaintext part is identical" \
    python3 "$here/elfcheck.py" differs "$elf/$prog" "$pkg"
  check "$prog: no 32-byte run of its code or data is in the package" \
    python3 "$here/elfcheck.py" leaks "$elf/$prog" "$pkg"
done
# objcopy writes nothing to a pipe, so each .text goes to a file; the
# original's must be non-empty, or the comparison would prove nothing.
check "a package holds no plaintext code in any section readelf can dump" \
  bash -c "objcopy -O binary --only-section=.text $elf/cxx-pie $work/orig.text &&
    test -s $work/orig.text &&
    { objcopy -O binary --only-section=.text $work/home-alice/packages/cxx-pie.sdpkg $work/pkg.text 2>/dev/null || true; } &&
    ! cmp -s $work/orig.text $work/pkg.text"

echo "# sealdrop inspect reads a package without any key"
check "inspect names the libraries, imports and encrypted sections" bash -c "
  $(declare -f as); work=$work BIN=$BIN
  out=\$(as alice none inspect cxx-pie)
  grep -q 'libstdc++.so.6' <<<\"\$out\" && grep -qE '^  \.text +encrypted' <<<\"\$out\" &&
  grep -qE '^  \.dynsym +plaintext' <<<\"\$out\" && grep -q '^signature    valid' <<<\"\$out\" &&
  grep -q '__cxa_throw' <<<\"\$out\" && grep -q 'match the signed manifest' <<<\"\$out\""
check "inspect --json is JSON with the same facts" bash -c "
  $(declare -f as); work=$work BIN=$BIN
  as alice none inspect --json $work/home-alice/packages/sqlite3.sdpkg | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r[\"signature\"][\"status\"] == \"valid\", r[\"signature\"]
assert \"libsqlite3.so.0\" in r[\"elf\"][\"needed\"]
assert any(s[\"name\"] == \"sqlite3_open\" for s in r[\"elf\"][\"imports\"])
enc = {s[\"name\"]: s[\"encrypted\"] for s in r[\"elf\"][\"sections\"]}
assert enc[\".text\"] and enc[\".rodata\"] and not enc[\".dynstr\"] and not enc[\".interp\"], enc
'"
printf 'not a package at all\n' > "$work/garbage.sdpkg"
refuses "inspect refuses a file that is not a package" "not a sealdrop package" as alice none inspect "$work/garbage.sdpkg"
refuses "inspect refuses a name it does not know" "no package file or stored program" as alice none inspect no-such-thing

echo "# any flipped byte stops the program"
flip_test() {  # flip_test PROG TARGET
  local prog=$1 target=$2 pkg="$work/home-alice/packages/$1.sdpkg"
  cp "$pkg" "$work/pristine.sdpkg"
  python3 "$here/elfcheck.py" flip "$work/pristine.sdpkg" "$pkg" "$target"
  as alice dev1 run "$prog" -- one <"$work/run/words.txt" >flip.out 2>flip.err; local code=$?
  if [ "$code" -ne 0 ] && [ ! -s flip.out ] && grep -qiE "damaged or was altered|signature|malformed|not valid" flip.err; then
    ok "$prog: a flipped byte in $target is refused ($(head -c 70 flip.err | tr -d '\n')...)"
  else
    not_ok "$prog: a flipped byte in $target was not refused (exit $code)"; head -3 flip.out flip.err | sed 's/^/#   /'
  fi
  cp "$work/pristine.sdpkg" "$pkg"
}
for target in elf-header program-header section-header needed dynamic symbol-name relocation .text .rodata .data padding manifest; do
  flip_test cxx-pie $target
done
for target in elf-header program-header .text .rodata .data manifest; do
  flip_test c-static $target
done
python3 "$here/elfcheck.py" flip "$work/home-alice/packages/sqlite3.sdpkg" "$work/flipped.sdpkg" symbol-name
refuses "inspect reports altered plaintext tables and fails" "DO NOT match" \
  bash -c "$(declare -f as); work=$work BIN=$BIN; as alice none inspect $work/flipped.sdpkg >&2"
check "after restoring the package the program runs again" bash -c \
  "$(declare -f as); work=$work BIN=$BIN; as alice dev1 run c-static -- x | grep -q 'arg 1: x'"
head -c "$(($(stat -c %s "$work/home-alice/packages/c-pie.sdpkg") - 100))" "$work/home-alice/packages/c-pie.sdpkg" > "$work/truncated.sdpkg"
cp "$work/home-alice/packages/c-pie.sdpkg" "$work/pristine.sdpkg"
cp "$work/truncated.sdpkg" "$work/home-alice/packages/c-pie.sdpkg"
refuses "a truncated package is refused" "sealdrop package|truncated|damaged|malformed" as alice dev1 run c-pie
cp "$work/pristine.sdpkg" "$work/home-alice/packages/c-pie.sdpkg"

echo "# a package sealed for one processor does not run on another"
refuses "alice's dev1 package is refused by dev2" "licen|another processor" as alice dev2 run cxx-pie
check "bob buys cxx-pie for dev2" as bob dev2 buy cxx-pie
cp "$work/home-bob/packages/cxx-pie.sdpkg" "$work/bob-own.sdpkg"
cp "$work/home-alice/packages/cxx-pie.sdpkg" "$work/home-bob/packages/cxx-pie.sdpkg"
refuses "dev2, holding its own licence for cxx-pie, refuses dev1's package" "licen|another processor" as bob dev2 run cxx-pie
cp "$work/bob-own.sdpkg" "$work/home-bob/packages/cxx-pie.sdpkg"
check "dev2 runs its own package" bash -c "$(declare -f as); work=$work BIN=$BIN; as bob dev2 run cxx-pie -- --top 1 </dev/null | grep -q 'word frequencies'"

echo "# no page is ever writable and executable"
check "alice gets sleeper" as alice dev1 buy sleeper
as alice dev1 run sleeper -- 30 & runner=$!
for _ in $(seq 100); do pgrep -f '^sleeper 30$' >/dev/null && break; sleep 0.05; done
pid=$(pgrep -f '^sleeper 30$' | head -1)
if [ -n "$pid" ] && [ -r "/proc/$pid/maps" ] && ! awk '{print $2}' "/proc/$pid/maps" | grep -q 'wx'; then
  ok "the running program has no writable and executable mapping"
else
  not_ok "the running program has a writable and executable mapping (or could not be found)"
fi
check "the program image is a sealed memory file, not a file on disk" bash -c "readlink /proc/$pid/exe | grep -q '^/memfd:'"
kill -INT "$runner"; wait "$runner" 2>/dev/null

echo "# data packages: opened through the processor, exported only when the licence says so"
cp "$work/run/big.txt" "$work/corpus.txt"
cp "$work/run/words.txt" "$work/lyrics.txt"
check "sealdropd adds a data package" server program add "$work/data" "$work/corpus.txt" --name corpus --version 1 --price 0
check "sealdropd adds a data package whose licence allows export" \
  server program add "$work/data" "$work/lyrics.txt" --name lyrics --version 1 --price 0 --export
check "alice buys corpus" as alice dev1 buy corpus
check "alice buys lyrics" as alice dev1 buy lyrics
check "no 32-byte run of the data is in its package" python3 -c "
import sys
plain = open('$work/corpus.txt', 'rb').read(); pkg = open('$work/home-alice/packages/corpus.sdpkg', 'rb').read()
bad = [o for o in range(0, len(plain) - 32, 4096) if plain[o:o + 32] in pkg]
sys.exit(f'found at {bad[:3]}' if bad else 0)"
"${plain_env[@]}" "$elf/cxx-pie" --top 3 <"$work/corpus.txt" >expected.out
as alice dev1 open corpus --with cxx-pie -- --top 3 >opened.out 2>opened.err; code=$?
if [ "$code" = 0 ] && cmp -s expected.out opened.out; then ok "open --with feeds the content to a sealed program"; else not_ok "open --with (exit $code)"; sed 's/^/#   /' opened.err; fi
refuses "open without --with is refused when the licence does not allow export" "does not allow exporting" as alice dev1 open corpus
as alice dev1 open lyrics >exported.out 2>exported.err
check "open exports the content when the licence allows it" cmp exported.out "$work/lyrics.txt"
check "inspect shows the export right" bash -c "$(declare -f as); work=$work BIN=$BIN; as alice none inspect lyrics | grep -q 'export to the host allowed'"
refuses "a program cannot be opened as data" "is a program" as alice dev1 open cxx-pie
refuses "data cannot be run as the --with program" "corpus is a data package, not a program" as alice dev1 open lyrics --with corpus
refuses "arguments without --with are refused" "arguments after -- are for the program" as alice dev1 open lyrics -- x
cp "$work/home-alice/packages/corpus.sdpkg" "$work/pristine.sdpkg"
python3 - "$work/home-alice/packages/corpus.sdpkg" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) - 70000] ^= 1; open(p, 'wb').write(b)
PY
refuses "a damaged data package stops the program reading it" "damaged or was altered" as alice dev1 open corpus --with cxx-pie
refuses "a damaged data package is not exported either" "damaged or was altered|does not allow" as alice dev1 open corpus
cp "$work/pristine.sdpkg" "$work/home-alice/packages/corpus.sdpkg"

refuses "arguments that are not UTF-8 get a clear error, not a crash" "valid UTF-8" as alice dev1 run c-pie -- $'\xff'

echo "# programs that cannot be protected are refused when added"
cc -O2 -z execstack -o "$elf/execstack" "$p/hello.c" 2>/dev/null
refuses "a program asking for an executable stack" "executable stack" \
  server program add "$work/data" "$elf/execstack" --name execstack --version 1 --price 0
cc -c -o "$elf/object.o" "$p/hello.c"
refuses "an object file" "not an executable" server program add "$work/data" "$elf/object.o" --name object --version 1 --price 0
refuses "--export for a program" "export is for data" \
  server program add "$work/data" "$elf/c-pie" --name c-pie-export --version 1 --price 0 --export

finish
