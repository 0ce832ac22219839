// The protected-ELF payload (suite "A256GCM-ELF-SECTIONS", manifest kind "elf").
//
// The payload is the program's own ELF file, same size and layout, with the
// bytes of every encrypted section (package/elf.h, ProtectedRanges) replaced
// by their AES-256-GCM ciphertext under the package's content key Kx. The ELF
// header, program and section header tables and the sections the dynamic
// loader reads (.interp, .dynamic, .dynsym, .dynstr, hash tables, versions,
// dynamic relocations, notes, section names) stay plaintext, so readelf and
// the loader's own view of the imports work on the stored package.
//
// For range i (file order) of a manifest's ranges:
//   nonce(i) = nonce_prefix (7) || i (u32, big-endian) || 0x02
//   aad(i)   = "sealdrop elf v1" || plain_sha256 (32) || i (u32) ||
//              offset (u64) || size (u64)
// where plain_sha256 = SHA-256 over every byte of the file outside the
// ranges, in file order. The manifest (signed) carries the ranges, their
// tags and plain_sha256, so a changed header, import name or relocation fails
// both the hash comparison and every range's tag, and a changed ciphertext
// byte fails its range's tag. The last nonce byte (0x02) keeps these nonces
// apart from the chunked suite's (0x00/0x01) even though a Kx seals only one
// package.
//
// Thread safety: objects are used from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/aead.h"
#include "package/elf.h"
#include "package/manifest.h"

namespace sealdrop {

// What the server decides about a program before sealing it: the ranges to
// encrypt and the hash of the rest. Refuses files that are not 64-bit
// little-endian ELF executables, that need a writable and executable page,
// whose loader could be sent to a library the host chooses
// (CheckLibrarySearchPaths), or whose encrypted sections overlap the
// plaintext parts.
struct ElfPlan {
  ElfImage image;
  std::vector<FileRange> ranges;
  Bytes plain_sha256;
};
Result<ElfPlan> PlanProtectedElf(ByteView file);

Bytes ElfRangeNonce(ByteView nonce_prefix, uint32_t index);
Bytes ElfRangeAad(ByteView plain_sha256, uint32_t index, uint64_t offset, uint64_t size);

// SHA-256 over the bytes of `file` outside `ranges` (sorted, disjoint).
Bytes PlainPartsHash(ByteView file, const std::vector<FileRange>& ranges);

// Produces the protected file from the plaintext one, piece by piece, in
// bounded memory. Run it once to learn the tags (the manifest needs them
// before the payload is sent), then again to send the bytes; the second run
// must produce the same tags (Next fails otherwise, so a program file that
// changed between the runs is never sent).
class ElfSealStream {
 public:
  static Result<ElfSealStream> Create(ByteView file, const std::vector<FileRange>& ranges,
                                      ByteView plain_sha256, const SecretBytes& kx,
                                      ByteView nonce_prefix,
                                      std::vector<Bytes> expected_tags = {});
  // Appends at most `max` bytes. Returns false when the file is done.
  Result<bool> Next(Bytes& out, size_t max);
  const std::vector<Bytes>& tags() const { return tags_; }

 private:
  ElfSealStream(ByteView file, std::vector<FileRange> ranges, Bytes plain_sha256,
                Aes256GcmRaw aead, Bytes nonce_prefix, std::vector<Bytes> expected);
  ByteView file_;
  std::vector<FileRange> ranges_;
  Bytes plain_sha256_;
  Aes256GcmRaw aead_;
  Bytes nonce_prefix_;
  std::vector<Bytes> expected_;
  std::vector<Bytes> tags_;
  uint64_t position_ = 0;
  size_t range_ = 0;  // the first range not yet finished
};

// Inside the processor: reads the protected file (bytes [0, manifest
// payload_size) of fd, with pread), and hands the whole plaintext file to
// `sink` in order. The plaintext given to the sink is NOT authenticated until
// this returns success: the caller must keep it private (a memfd nobody else
// holds) and discard it on failure. Fails with kCryptoFailure if the hash of
// the plaintext parts or any range's tag does not match the manifest.
Status DecryptProtectedElf(int fd, const Manifest& manifest, const SecretBytes& kx,
                           const std::function<Status(ByteView)>& sink);

}  // namespace sealdrop
