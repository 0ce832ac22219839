// The chunked payload of a data package: streaming AEAD in bounded memory.
//
// Suite "A256GCM-CHUNK64K" (fixed): the plaintext is cut into 64 KiB chunks
// (the last may be shorter, and an empty plaintext is one empty chunk); each
// chunk is sealed with AES-256-GCM under the package's content key Kx as
//   ciphertext(len) || tag(16)
// with nonce = nonce_prefix(7) || chunk_index(u32, big-endian) || last(u8),
// and associated data "sealdrop chunk v1". The random per-package prefix and
// the counter keep nonces unique under one Kx (a Kx seals exactly one
// package); the index in the nonce detects reordering and the last flag
// truncation or extension (after Tink's streaming AEAD and RFC 9180's nonce
// construction).
//
// Thread safety: one object per stream.
#pragma once

#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/aead.h"

namespace sealdrop {

inline constexpr char kChunkSuiteName[] = "A256GCM-CHUNK64K";
inline constexpr size_t kChunkSize = 64 * 1024;
inline constexpr size_t kChunkNoncePrefixSize = 7;
inline constexpr uint64_t kMaxChunks = uint64_t{1} << 32;  // 256 TiB of plaintext

uint64_t ChunkCount(uint64_t plaintext_size);
uint64_t SealedPayloadSize(uint64_t plaintext_size);
// Size of chunk `index` in plaintext bytes.
size_t ChunkPlaintextSize(uint64_t plaintext_size, uint64_t index);

class ChunkSealer {
 public:
  static Result<ChunkSealer> Create(const SecretBytes& kx, ByteView nonce_prefix,
                                    uint64_t plaintext_size);
  // `chunk` holds exactly ChunkPlaintextSize(next index) bytes of plaintext;
  // on return it holds the sealed chunk (ciphertext || tag).
  Status SealNext(Bytes& chunk);
  // The same in place: `sealed` is the plaintext followed by 16 bytes of
  // room for the tag.
  Status SealNextInPlace(std::span<uint8_t> sealed);
  bool done() const { return next_ == count_; }

 private:
  ChunkSealer(Aes256GcmRaw aead, Bytes prefix, uint64_t size);
  Aes256GcmRaw aead_;
  Bytes prefix_;
  uint64_t size_;
  uint64_t count_;
  uint64_t next_ = 0;
};

class ChunkOpener {
 public:
  static Result<ChunkOpener> Create(const SecretBytes& kx, ByteView nonce_prefix,
                                    uint64_t plaintext_size);
  // `chunk` holds one sealed chunk; on success it holds the plaintext. Any
  // failure is kCryptoFailure and the buffer is wiped.
  Status OpenNext(Bytes& chunk);
  bool done() const { return next_ == count_; }
  // Sealed size of the next chunk the opener expects.
  size_t next_sealed_size() const;

 private:
  ChunkOpener(Aes256GcmRaw aead, Bytes prefix, uint64_t size);
  Aes256GcmRaw aead_;
  Bytes prefix_;
  uint64_t size_;
  uint64_t count_;
  uint64_t next_ = 0;
};

}  // namespace sealdrop
