#!/usr/bin/env bash
# The dynamic loader of a decrypted program reaches only what root controls.
# A library search path the host can steer (a relative DT_RUNPATH resolved
# against the working directory the host picks for 'run', a directory under
# /tmp, $ORIGIN, a directory someone other than root can write) would let the
# host's own libm.so.6 run its constructor inside the decrypted process and
# read the program's memory. sealdropd refuses such programs when they are
# added; the processor checks the directories again on its own machine before
# every run. Also here: running a data package says what to do instead.
# Needs root: it makes a root-owned directory and changes its mode.
# Usage: loader_test.sh BIN_DIR
BIN="$(cd "$1" && pwd)"
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
  echo "# SKIP: this test needs root to create a root-owned library directory"
  exit 77
fi
good_root=$(mktemp -d /var/lib/sealdrop-loader-test.XXXXXX)
trap 'rm -rf "$good_root"; cleanup' EXIT
setup_world
make_trp dev1 good
login alice alice-password >/dev/null

elf="$work/elf"
run="$work/run"
# Where the host's library leaves its mark: writable by any uid, so an
# unprivileged processor's program could write it too.
marker="$work/pub/MARKER-the-host-library-ran"
mkdir -p "$elf" "$run/vlib" "$work/pub"
chmod 0777 "$work/pub"
cd "$run"

echo "# building the programs and the host's library"
# The host's libm.so.6: its constructor writes the marker (and could as well
# read the whole decrypted process).
cat > "$work/evil.c" <<EOF
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void steal(void) {
  int fd = open("$marker", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) { (void)!write(fd, "the host's library ran\n", 23); close(fd); }
}
EOF
cc -shared -fPIC -Wl,-soname,libm.so.6 -o "$run/vlib/libm.so.6" "$work/evil.c"
good_dir="$good_root/lib"
mkdir "$good_dir"
chmod 0755 "$good_root" "$good_dir"
p="$here/programs"
# --no-as-needed keeps libm.so.6 among the needed libraries although hello.c
# calls nothing from it: the loader then looks for it along the search path.
build() {  # build NAME LINKER-FLAGS...
  local name=$1; shift
  cc -O2 -o "$elf/$name" "$p/hello.c" -Wl,--no-as-needed -lm "$@"
}
build relative -Wl,-rpath,vlib -Wl,--enable-new-dtags
build relative-rpath -Wl,-rpath,vlib -Wl,--disable-new-dtags
build under-tmp -Wl,-rpath,/tmp/xyz -Wl,--enable-new-dtags
build origin '-Wl,-rpath,$ORIGIN/lib' -Wl,--enable-new-dtags
build empty-entry "-Wl,-rpath,$good_dir:" -Wl,--enable-new-dtags
build good "-Wl,-rpath,$good_dir" -Wl,--enable-new-dtags
check "the test programs carry the search paths they were built with" bash -c "
  readelf -d $elf/relative | grep -q 'RUNPATH.*\[vlib\]' &&
  readelf -d $elf/relative-rpath | grep -q 'RPATH.*\[vlib\]' && ! readelf -d $elf/relative-rpath | grep -q RUNPATH &&
  readelf -d $elf/under-tmp | grep -q 'RUNPATH.*\[/tmp/xyz\]' &&
  readelf -d $elf/origin | grep -q 'RUNPATH.*\[\\\$ORIGIN/lib\]' &&
  readelf -d $elf/good | grep -q 'RUNPATH.*\[$good_dir\]' && readelf -d $elf/good | grep -q 'NEEDED.*libm.so.6'"

echo "# the attack is real: run directly, the program loads the host's library"
"$elf/relative" >/dev/null 2>&1
check "the plain program with DT_RUNPATH vlib runs vlib/libm.so.6's constructor" test -s "$marker"
rm -f "$marker"

echo "# sealdropd refuses programs whose loader the host could steer"
refuses "a relative DT_RUNPATH is refused, naming the entry" \
  "relative cannot be sealed as a protected program: its DT_RUNPATH entry \"vlib\" is a relative directory.*rebuild without -rpath or with an absolute root-owned directory" \
  server program add "$work/data" "$elf/relative" --name relative --version 1 --price 0
refuses "a relative DT_RPATH is refused, naming the entry" \
  "its DT_RPATH entry \"vlib\" is a relative directory" \
  server program add "$work/data" "$elf/relative-rpath" --name relative-rpath --version 1 --price 0
refuses "a DT_RUNPATH under /tmp is refused, naming the entry" \
  "its DT_RUNPATH entry \"/tmp/xyz\" lies under /tmp" \
  server program add "$work/data" "$elf/under-tmp" --name under-tmp --version 1 --price 0
refuses "a DT_RUNPATH with \$ORIGIN is refused, naming the entry" \
  "its DT_RUNPATH entry \"\\\$ORIGIN/lib\" uses a loader variable" \
  server program add "$work/data" "$elf/origin" --name origin --version 1 --price 0
refuses "an empty DT_RUNPATH element (the working directory) is refused" \
  "its DT_RUNPATH entry \"\" is empty" \
  server program add "$work/data" "$elf/empty-entry" --name empty-entry --version 1 --price 0
check "none of the refused programs is in the catalogue (which lists hello)" bash -c "
  list=\$('$BIN/sealdropd' program list '$work/data' 2>&1)
  grep -qE '^hello\s' <<<\"\$list\" && ! grep -qE '^(relative|relative-rpath|under-tmp|origin|empty-entry)\s' <<<\"\$list\""

echo "# a program whose search path only root controls is accepted and runs"
check "a DT_RUNPATH into a root-owned 0755 directory is accepted" \
  server program add "$work/data" "$elf/good" --name good --version 1 --price 0
check "alice buys it" as alice dev1 buy good
as alice dev1 run good -- a b >good.out 2>good.err; code=$?
if [ "$code" = 5 ] && grep -q 'hello from a sealed program: 2 argument' good.out; then
  ok "it runs through the processor (exit 5, its output)"
else
  not_ok "it runs through the processor (exit $code)"; sed 's/^/#   /' good.err
fi

echo "# the processor checks the directories on its own machine before every run"
cp "$run/vlib/libm.so.6" "$good_dir/libm.so.6"
chmod 0777 "$good_dir"
refuses "a search directory writable by others is refused at run time, with the reason" \
  "will not run good: its DT_RUNPATH entry \"$good_dir\" is not under root's sole control.*$good_dir is writable by group or others.*chmod go-w" \
  as alice dev1 run good
check "the host's library in that directory never ran" test ! -e "$marker"
chmod 0775 "$good_dir"
refuses "a search directory writable by its group is refused" "$good_dir is writable by group or others" as alice dev1 run good
chmod 0755 "$good_dir"
chmod 0777 "$good_root"
refuses "a search directory under a directory writable by others is refused" \
  "$good_root is writable by group or others" as alice dev1 run good
chmod 0755 "$good_root"
chown 1:1 "$good_dir"
refuses "a search directory not owned by root is refused" "$good_dir is not owned by root" as alice dev1 run good
chown 0:0 "$good_dir"
mv "$good_dir" "$good_dir.real"
ln -s "$run/vlib" "$good_dir"
refuses "a search directory that is a link into a directory the host writes is refused" \
  "not under root's sole control.*$work is writable by group or others|not under root's sole control.*/tmp is writable" \
  as alice dev1 run good
rm "$good_dir"
mv "$good_dir.real" "$good_dir"
rm -f "$good_dir/libm.so.6"
check "the host's library never ran in any of these runs" test ! -e "$marker"
as alice dev1 run good -- a b >good.out 2>good.err; code=$?
if [ "$code" = 5 ]; then ok "restored to root's, the program runs again"; else not_ok "restored, exit $code"; sed 's/^/#   /' good.err; fi

echo "# a processor that is not root tells root's directories from another user's"
# It runs in a user namespace that maps only its own uid, where root and every
# other user look alike; it asks a helper left outside that namespace.
st="$work/unpriv"
trp init "$st" >/dev/null 2>&1
ca issue "$work/mfr" --csr "$st/identity.csr" --profile device --out "$work/unpriv-id.pem" >/dev/null
ca issue "$work/mfr" --csr "$st/keywrap.csr" --profile device --out "$work/unpriv-kw.pem" >/dev/null
trp install "$st" --cert "$work/unpriv-id.pem" --cert "$work/unpriv-kw.pem" --trust "$work/vendor/ca.pem"
mkdir "$work/unpriv-sock"
chown -R 65534:65534 "$st" "$work/unpriv-sock"
chmod 0755 "$work"
setpriv --reuid=65534 --regid=65534 --clear-groups \
  "$BIN/sealdrop-trp" serve "$st" --socket "$work/unpriv-sock/trp.sock" 2>>"$work/unpriv.log" &
pids+=($!)
wait_for "$work/unpriv-sock/trp.sock"
chmod 0666 "$work/unpriv-sock/trp.sock"
ln -s "$work/unpriv-sock/trp.sock" "$work/unpriv.sock"
check "the unprivileged processor confined itself" bash -c "! grep -q 'programs will not be run' '$work/unpriv.log'"
check "alice downloads good again for the unprivileged processor (free, with her receipt)" as alice unpriv get good
cd "$work/pub"
as alice unpriv run good -- a b >good.out 2>good.err; code=$?
if [ "$code" = 5 ]; then ok "it runs there with its root-owned search directory"; else not_ok "it runs there (exit $code)"; sed 's/^/#   /' good.err; fi
cp "$run/vlib/libm.so.6" "$good_dir/libm.so.6"
chown 1:1 "$good_dir"
refuses "a search directory of another user, mode 0755, is refused there too" \
  "$good_dir is not owned by root" as alice unpriv run good
check "the host's library never ran under the unprivileged processor" test ! -e "$marker"
chown 0:0 "$good_dir"
rm -f "$good_dir/libm.so.6"
cd "$run"

echo "# running a data package says what to do"
printf 'some data\n' > "$work/notes.txt"
check "sealdropd adds a data package" server program add "$work/data" "$work/notes.txt" --name notes --version 1 --price 0
check "alice buys notes" as alice dev1 buy notes
refuses "'sealdrop run' on a data package names it and says how to open it" \
  "notes is a data package, not a program; open it with 'sealdrop open notes --with PROGRAM'" \
  as alice dev1 run notes
refuses "a data package is not run even when it starts with #!" \
  "is a data package, not a program" \
  bash -c "$(declare -f as); work=$work BIN=$BIN
    printf '#!/bin/sh\necho ran\n' > '$work/script.sh' &&
    '$BIN/sealdropd' program add '$work/data' '$work/script.sh' --name script --version 1 --price 0 >/dev/null &&
    as alice dev1 buy script >/dev/null && as alice dev1 run script"

finish
