// AES-256-GCM.
//
// Aes256Gcm is the safe interface (after Tink's Aead): Encrypt picks a random
// 96-bit nonce itself and returns nonce || ciphertext || tag; Decrypt takes
// that and fails with one error, kCryptoFailure, for any problem, leaving no
// partial plaintext behind. Use it for small messages (keys at rest).
//
// Aes256GcmRaw takes the nonce from the caller. WARNING: a nonce must never
// repeat under one key; only the chunked payload format (package/chunked.h),
// which derives nonces from a per-package random prefix and a counter, may use
// it. It works in place to keep the streaming path allocation-free.
//
// Thread safety: objects are immutable after creation except for an internal
// cipher context; do not share one object between threads.
#pragma once

#include <array>
#include <memory>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

inline constexpr size_t kAes256KeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;

class Aes256GcmRaw {
 public:
  static Result<Aes256GcmRaw> Create(const SecretBytes& key);
  Aes256GcmRaw(Aes256GcmRaw&&) noexcept;
  Aes256GcmRaw& operator=(Aes256GcmRaw&&) noexcept;
  ~Aes256GcmRaw();

  // Encrypts data in place and writes the 16-byte tag.
  Status SealInPlace(ByteView nonce, ByteView aad, std::span<uint8_t> data,
                     std::span<uint8_t, kGcmTagSize> tag);
  // Decrypts data in place if the tag verifies; on failure the buffer is
  // wiped and kCryptoFailure returned.
  Status OpenInPlace(ByteView nonce, ByteView aad, std::span<uint8_t> data,
                     std::span<const uint8_t, kGcmTagSize> tag);

  // Streaming, for messages too large to hold at once (the sections of a
  // protected ELF): Begin, any number of Update calls in place, then Seal or
  // Open. WARNING: when decrypting, the bytes Update returns are not yet
  // authenticated; a caller must keep them private and discard them unless
  // FinishOpen succeeds. A new Begin abandons an unfinished message.
  Status Begin(ByteView nonce, ByteView aad, bool encrypt);
  Status Update(std::span<uint8_t> data);
  Status FinishSeal(std::span<uint8_t, kGcmTagSize> tag);
  // kCryptoFailure if the tag does not match.
  Status FinishOpen(std::span<const uint8_t, kGcmTagSize> tag);

 private:
  struct Impl;
  explicit Aes256GcmRaw(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Aes256Gcm {
 public:
  static Result<Aes256Gcm> Create(const SecretBytes& key);
  // Returns nonce(12) || ciphertext || tag(16).
  Result<Bytes> Encrypt(ByteView plaintext, ByteView associated_data);
  Result<SecretBytes> Decrypt(ByteView ciphertext, ByteView associated_data);

 private:
  explicit Aes256Gcm(Aes256GcmRaw raw) : raw_(std::move(raw)) {}
  Aes256GcmRaw raw_;
};

}  // namespace sealdrop
