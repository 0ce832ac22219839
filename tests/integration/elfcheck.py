#!/usr/bin/env python3
"""Independent checks of protected ELF packages, for the integration tests.

This reads ELF section headers itself (struct, no sealdrop code) and applies
the section rules of docs/package-format.md on its own, so a mistake in the
C++ classification shows up as a disagreement here.

  elfcheck.py leaks ORIGINAL FILE...      no 32-byte run of the original's
                                          encrypted sections in any FILE
  elfcheck.py differs ORIGINAL PACKAGE    no encrypted section keeps more of its
                                          bytes than chance explains, every
                                          plaintext part is identical
  elfcheck.py flip PACKAGE OUT WHAT       copy PACKAGE to OUT with one byte
                                          flipped in WHAT (see TARGETS)
  elfcheck.py sections FILE               print the encrypted sections
"""
import math
import shutil
import struct
import sys

SHT_NOBITS, SHT_DYNAMIC, SHT_DYNSYM, SHT_NOTE = 8, 6, 11, 7
SHT_HASH, SHT_GNU_HASH = 5, 0x6FFFFFF6
SHT_VERSYM, SHT_VERNEED, SHT_VERDEF = 0x6FFFFFFF, 0x6FFFFFFE, 0x6FFFFFFD
SHT_REL, SHT_RELA, SHT_RELR = 9, 4, 19
SHF_ALLOC = 2
PLAIN_TYPES = {SHT_DYNAMIC, SHT_DYNSYM, SHT_NOTE, SHT_HASH, SHT_GNU_HASH, SHT_VERSYM,
               SHT_VERNEED, SHT_VERDEF}


def sections(data):
    assert data[:4] == b"\x7fELF", "not an ELF file"
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    out = []
    for i in range(shnum):
        name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize)
        out.append(dict(index=i, name_off=name, type=typ, flags=flags, offset=off,
                        size=0 if typ in (0, SHT_NOBITS) else size, link=link, entsize=entsize))
    names = out[shstrndx]
    for s in out:
        start = names["offset"] + s["name_off"]
        s["name"] = data[start:data.index(b"\0", start)].decode()
    return out, shoff, shnum * shentsize, shstrndx


def encrypted(data):
    secs, _, _, shstrndx = sections(data)
    linked = {s["link"] for s in secs if s["type"] in (SHT_DYNSYM, SHT_DYNAMIC, SHT_VERNEED, SHT_VERDEF)}
    result = []
    for s in secs:
        if s["size"] == 0 or s["index"] == shstrndx or s["type"] in PLAIN_TYPES:
            continue
        if s["type"] in (SHT_REL, SHT_RELA, SHT_RELR) and s["flags"] & SHF_ALLOC:
            continue
        if s["index"] in linked or s["name"] == ".interp":
            continue
        result.append(s)
    return result


def by_name(secs, name):
    for s in secs:
        if s["name"] == name:
            return s
    sys.exit(f"no section {name}")


def windows(data, size=32):
    return {data[i:i + size] for i in range(len(data) - size + 1)}


def leaks(original, files):
    plain = open(original, "rb").read()
    # Bytes that also sit in a plaintext part (a symbol name in both .strtab
    # and .dynstr) are public by design.
    secret = bytearray(plain)
    for s in encrypted(plain):
        secret[s["offset"]:s["offset"] + s["size"]] = bytes(s["size"])
    public = windows(bytes(secret))
    hay = [(f, windows(open(f, "rb").read())) for f in files]
    checked = 0
    for s in encrypted(plain):
        body = plain[s["offset"]:s["offset"] + s["size"]]
        for off in range(0, len(body) - 32, 16):
            w = body[off:off + 32]
            if len(set(w)) < 8 or w in public:  # padding, zero runs, public names
                continue
            checked += 1
            for name, h in hay:
                if w in h:
                    sys.exit(f"{s['name']}+{off} of {original} found in {name}")
    if checked == 0:
        sys.exit(f"{original}: nothing to check")
    print(f"{checked} windows checked")


def chance_limit(n, p=1 / 256, risk=1e-12):
    """The fewest of n ciphertext bytes that can equal the plaintext by chance
    with probability below risk, each byte matching with probability p."""
    def log_pmf(i):
        return (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                + i * math.log(p) + (n - i) * math.log1p(-p))
    k = max(1, math.ceil(n * p))
    while k <= n:
        # Past the mean the terms shrink at least geometrically by `ratio`,
        # so the tail is at most pmf(k) / (1 - ratio).
        ratio = (n - k) * p / ((k + 1) * (1 - p))
        if ratio < 1 and math.exp(log_pmf(k)) / (1 - ratio) < risk:
            return k
        k += 1
    return n + 1


def differs(original, package):
    a = open(original, "rb").read()
    b = open(package, "rb").read()
    if len(b) <= len(a):
        sys.exit("the package has no trailer after the program")
    mask = bytearray(len(a))
    for s in encrypted(a):
        x, y = a[s["offset"]:s["offset"] + s["size"]], b[s["offset"]:s["offset"] + s["size"]]
        same = sum(1 for i in range(len(x)) if x[i] == y[i])
        # Ciphertext matches plaintext on about 1/256 of the bytes by chance;
        # a 72-byte section has 3 equal bytes in about one run in 350.
        # A section under 5 bytes comes out whole by chance too often (one
        # in 256^n) to be judged.
        if same >= chance_limit(len(x)):
            sys.exit(f"{s['name']}: {same} of {len(x)} bytes unchanged")
        for i in range(s["offset"], s["offset"] + s["size"]):
            mask[i] = 1
    diff = [i for i in range(len(a)) if not mask[i] and a[i] != b[i]]
    if diff:
        sys.exit(f"plaintext byte {diff[0]} changed ({len(diff)} in all)")
    print("ok")


def dynamic_entry(data, secs, tag):
    dyn = next(s for s in secs if s["type"] == SHT_DYNAMIC)
    for off in range(dyn["offset"], dyn["offset"] + dyn["size"], 16):
        t, v = struct.unpack_from("<qQ", data, off)
        if t == tag:
            return off, v
    sys.exit(f"no dynamic entry {tag}")


def flip(package, out, what):
    shutil.copyfile(package, out)
    data = bytearray(open(out, "rb").read())
    secs, shoff, _, _ = sections(data)
    if what == "elf-header":        # e_entry
        pos = 0x18
    elif what == "program-header":  # p_flags of the first program header
        (phoff,) = struct.unpack_from("<Q", data, 0x20)
        pos = phoff + 4
    elif what == "section-header":  # sh_offset of section 1
        pos = shoff + 64 + 24
    elif what == "needed":          # a character of the first needed library's name
        off, v = dynamic_entry(data, secs, 1)
        dynstr = secs[next(s for s in secs if s["type"] == SHT_DYNAMIC)["link"]]
        pos = dynstr["offset"] + v
    elif what == "dynamic":         # the value of the first DT_NEEDED entry
        off, _ = dynamic_entry(data, secs, 1)
        pos = off + 8
    elif what == "symbol-name":     # a character of an imported symbol's name
        dynsym = next(s for s in secs if s["type"] == SHT_DYNSYM)
        dynstr = secs[dynsym["link"]]
        (name,) = struct.unpack_from("<I", data, dynsym["offset"] + 24)
        pos = dynstr["offset"] + name
    elif what == "relocation":      # r_offset of the first dynamic relocation
        rel = next(s for s in secs if s["type"] == SHT_RELA and s["flags"] & SHF_ALLOC)
        pos = rel["offset"]
    elif what in (".text", ".rodata", ".data"):
        s = by_name(secs, what)
        pos = s["offset"] + s["size"] // 2
    elif what == "manifest":        # a character inside the trailer's manifest
        (length,) = struct.unpack_from(">I", data, len(data) - 12)
        pos = len(data) - 12 - length + length // 2
    elif what == "padding":         # a byte between sections, in no section at all
        ranges = sorted((s["offset"], s["offset"] + s["size"]) for s in secs if s["size"])
        pos = next(e for (s, e), (s2, _) in zip(ranges, ranges[1:]) if s2 > e)
    else:
        sys.exit(f"unknown target {what}")
    data[pos] ^= 0x01
    open(out, "wb").write(data)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "leaks" and len(sys.argv) >= 4:
        leaks(sys.argv[2], sys.argv[3:])
    elif cmd == "differs" and len(sys.argv) == 4:
        differs(sys.argv[2], sys.argv[3])
    elif cmd == "flip" and len(sys.argv) == 5:
        flip(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "sections" and len(sys.argv) == 3:
        for s in encrypted(open(sys.argv[2], "rb").read()):
            print(s["name"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
