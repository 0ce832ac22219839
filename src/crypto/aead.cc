#include "crypto/aead.h"

#include <climits>
#include <cstring>

#include "crypto/gcm_internal.h"
#include "crypto/ossl_internal.h"
#include "crypto/random.h"

namespace sealdrop {
namespace {

const EVP_CIPHER* FetchCipher(const char* name) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (cipher == nullptr) OsslFatal(name);
  return cipher;
}

// Fetched once per process; see Sha256Md() for why.
const EVP_CIPHER* CipherForKeySize(size_t key_size) {
  static const EVP_CIPHER* aes128 = FetchCipher("AES-128-GCM");
  static const EVP_CIPHER* aes256 = FetchCipher("AES-256-GCM");
  if (key_size == 16) return aes128;
  if (key_size == 32) return aes256;
  return nullptr;
}

Error DecryptFailed() {
  ERR_clear_error();
  return Error{ErrorCode::kCryptoFailure, "decryption failed"};
}

// EVP_CipherUpdate counts in int; longer buffers go through in pieces.
bool UpdateInPieces(EVP_CIPHER_CTX* ctx, std::span<uint8_t> data) {
  constexpr size_t kPiece = size_t{1} << 30;
  for (size_t off = 0; off < data.size(); off += kPiece) {
    size_t n = std::min(kPiece, data.size() - off);
    int outl = 0;
    if (EVP_CipherUpdate(ctx, data.data() + off, &outl, data.data() + off,
                         static_cast<int>(n)) != 1 ||
        static_cast<size_t>(outl) != n)
      return false;
  }
  return true;
}

// GCM's final step writes no bytes, but the output pointer is not documented
// as optional, so it gets a scratch block.
bool Finish(EVP_CIPHER_CTX* ctx) {
  uint8_t scratch[16];
  int outl = 0;
  return EVP_CipherFinal_ex(ctx, scratch, &outl) == 1 && outl == 0;
}

bool AddAad(EVP_CIPHER_CTX* ctx, ByteView aad) {
  if (aad.empty()) return true;
  if (aad.size() > INT_MAX) return false;
  int outl = 0;
  return EVP_CipherUpdate(ctx, nullptr, &outl, aad.data(), static_cast<int>(aad.size())) == 1;
}

// A keyed GCM context. The AES key schedule is set once; each operation
// re-initialises only the nonce and direction, which GCM allows because it
// uses the block cipher in the forward direction for both.
Result<UniquePtr<EVP_CIPHER_CTX>> NewKeyedContext(const SecretBytes& key) {
  const EVP_CIPHER* cipher = CipherForKeySize(key.size());
  if (cipher == nullptr)
    return Fail(ErrorCode::kInvalidArgument, "AES-GCM key has the wrong size");
  UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return std::unexpected(OsslError(ErrorCode::kInternal, "allocating AES-GCM"));
  if (EVP_CipherInit_ex2(ctx.get(), cipher, key.Reveal(SecretAccess{}).data(), nullptr, 1,
                         nullptr) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "setting the AES-GCM key"));
  return ctx;
}

Status SealWith(EVP_CIPHER_CTX* ctx, ByteView nonce, ByteView aad, std::span<uint8_t> data,
                std::span<uint8_t, kGcmTagSize> tag) {
  if (nonce.size() != kGcmNonceSize)
    return Fail(ErrorCode::kInvalidArgument, "AES-GCM nonce must be 12 bytes");
  if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), 1, nullptr) != 1 ||
      !AddAad(ctx, aad) || !UpdateInPieces(ctx, data) || !Finish(ctx) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kGcmTagSize, tag.data()) != 1) {
    SecureWipe(data.data(), data.size());
    return std::unexpected(OsslError(ErrorCode::kInternal, "AES-GCM encryption"));
  }
  return Ok();
}

Status OpenWith(EVP_CIPHER_CTX* ctx, ByteView nonce, ByteView aad, std::span<uint8_t> data,
                std::span<const uint8_t, kGcmTagSize> tag) {
  // Any failure, even a caller's wrong nonce size, reads the same from outside:
  // the buffer is wiped and one error code comes back.
  if (nonce.size() != kGcmNonceSize) {
    SecureWipe(data.data(), data.size());
    return std::unexpected(DecryptFailed());
  }
  uint8_t expected_tag[kGcmTagSize];
  std::memcpy(expected_tag, tag.data(), kGcmTagSize);
  if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), 0, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kGcmTagSize, expected_tag) != 1 ||
      !AddAad(ctx, aad) || !UpdateInPieces(ctx, data) || !Finish(ctx)) {
    SecureWipe(data.data(), data.size());
    return std::unexpected(DecryptFailed());
  }
  return Ok();
}

}  // namespace

struct Aes256GcmRaw::Impl {
  UniquePtr<EVP_CIPHER_CTX> ctx;
};

Aes256GcmRaw::Aes256GcmRaw(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Aes256GcmRaw::Aes256GcmRaw(Aes256GcmRaw&&) noexcept = default;
Aes256GcmRaw& Aes256GcmRaw::operator=(Aes256GcmRaw&&) noexcept = default;
Aes256GcmRaw::~Aes256GcmRaw() = default;

Result<Aes256GcmRaw> Aes256GcmRaw::Create(const SecretBytes& key) {
  if (key.size() != kAes256KeySize)
    return Fail(ErrorCode::kInvalidArgument, "AES-256-GCM key must be 32 bytes");
  SEALDROP_ASSIGN(auto ctx, NewKeyedContext(key));
  auto impl = std::make_unique<Impl>();
  impl->ctx = std::move(ctx);
  return Aes256GcmRaw(std::move(impl));
}

Status Aes256GcmRaw::SealInPlace(ByteView nonce, ByteView aad, std::span<uint8_t> data,
                                 std::span<uint8_t, kGcmTagSize> tag) {
  if (!impl_) return Fail(ErrorCode::kInternal, "AES-GCM object was moved from");
  return SealWith(impl_->ctx.get(), nonce, aad, data, tag);
}

Status Aes256GcmRaw::OpenInPlace(ByteView nonce, ByteView aad, std::span<uint8_t> data,
                                 std::span<const uint8_t, kGcmTagSize> tag) {
  if (!impl_) {
    SecureWipe(data.data(), data.size());
    return std::unexpected(DecryptFailed());
  }
  return OpenWith(impl_->ctx.get(), nonce, aad, data, tag);
}

Status Aes256GcmRaw::Begin(ByteView nonce, ByteView aad, bool encrypt) {
  if (!impl_) return Fail(ErrorCode::kInternal, "AES-GCM object was moved from");
  if (nonce.size() != kGcmNonceSize)
    return Fail(ErrorCode::kInvalidArgument, "AES-GCM nonce must be 12 bytes");
  if (EVP_CipherInit_ex2(impl_->ctx.get(), nullptr, nullptr, nonce.data(), encrypt ? 1 : 0, nullptr) != 1 ||
      !AddAad(impl_->ctx.get(), aad))
    return std::unexpected(OsslError(ErrorCode::kInternal, "starting AES-GCM"));
  return Ok();
}

Status Aes256GcmRaw::Update(std::span<uint8_t> data) {
  if (!impl_ || !UpdateInPieces(impl_->ctx.get(), data)) {
    SecureWipe(data.data(), data.size());
    return std::unexpected(DecryptFailed());
  }
  return Ok();
}

Status Aes256GcmRaw::FinishSeal(std::span<uint8_t, kGcmTagSize> tag) {
  if (!impl_ || !Finish(impl_->ctx.get()) ||
      EVP_CIPHER_CTX_ctrl(impl_->ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize, tag.data()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "AES-GCM encryption"));
  return Ok();
}

Status Aes256GcmRaw::FinishOpen(std::span<const uint8_t, kGcmTagSize> tag) {
  if (!impl_) return std::unexpected(DecryptFailed());
  uint8_t expected_tag[kGcmTagSize];
  std::memcpy(expected_tag, tag.data(), kGcmTagSize);
  if (EVP_CIPHER_CTX_ctrl(impl_->ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize, expected_tag) != 1 ||
      !Finish(impl_->ctx.get()))
    return std::unexpected(DecryptFailed());
  return Ok();
}

Result<Aes256Gcm> Aes256Gcm::Create(const SecretBytes& key) {
  SEALDROP_ASSIGN(auto raw, Aes256GcmRaw::Create(key));
  return Aes256Gcm(std::move(raw));
}

Result<Bytes> Aes256Gcm::Encrypt(ByteView plaintext, ByteView associated_data) {
  // Random 96-bit nonces: safe for up to 2^32 messages per key (NIST SP
  // 800-38D section 8.3), far beyond the keys-at-rest use this class serves.
  Bytes out(kGcmNonceSize + plaintext.size() + kGcmTagSize);
  Bytes nonce = RandomBytes(kGcmNonceSize);
  std::copy(nonce.begin(), nonce.end(), out.begin());
  std::copy(plaintext.begin(), plaintext.end(), out.begin() + kGcmNonceSize);
  std::span<uint8_t> body(out.data() + kGcmNonceSize, plaintext.size());
  std::span<uint8_t, kGcmTagSize> tag(out.data() + kGcmNonceSize + plaintext.size(),
                                      kGcmTagSize);
  SEALDROP_TRY(raw_.SealInPlace(nonce, associated_data, body, tag));
  return out;
}

Result<SecretBytes> Aes256Gcm::Decrypt(ByteView ciphertext, ByteView associated_data) {
  if (ciphertext.size() < kGcmNonceSize + kGcmTagSize) return std::unexpected(DecryptFailed());
  size_t body_size = ciphertext.size() - kGcmNonceSize - kGcmTagSize;
  SecretBytes out(ciphertext.subspan(kGcmNonceSize, body_size), SecretAccess{});
  std::span<uint8_t> body(out.MutableData(SecretAccess{}), body_size);
  std::span<const uint8_t, kGcmTagSize> tag(ciphertext.data() + kGcmNonceSize + body_size,
                                            kGcmTagSize);
  SEALDROP_TRY(raw_.OpenInPlace(ciphertext.first(kGcmNonceSize), associated_data, body, tag));
  return out;
}

namespace gcm_internal {

Result<Bytes> Seal(const SecretBytes& key, ByteView nonce, ByteView aad, ByteView plaintext) {
  SEALDROP_ASSIGN(auto ctx, NewKeyedContext(key));
  Bytes out(plaintext.size() + kGcmTagSize);
  std::copy(plaintext.begin(), plaintext.end(), out.begin());
  std::span<uint8_t, kGcmTagSize> tag(out.data() + plaintext.size(), kGcmTagSize);
  SEALDROP_TRY(SealWith(ctx.get(), nonce, aad, std::span(out.data(), plaintext.size()), tag));
  return out;
}

Result<SecretBytes> Open(const SecretBytes& key, ByteView nonce, ByteView aad,
                         ByteView ciphertext_and_tag) {
  if (ciphertext_and_tag.size() < kGcmTagSize) return std::unexpected(DecryptFailed());
  auto ctx = NewKeyedContext(key);
  if (!ctx) return std::unexpected(DecryptFailed());
  size_t body_size = ciphertext_and_tag.size() - kGcmTagSize;
  SecretBytes out(ciphertext_and_tag.first(body_size), SecretAccess{});
  std::span<const uint8_t, kGcmTagSize> tag(ciphertext_and_tag.data() + body_size, kGcmTagSize);
  SEALDROP_TRY(
      OpenWith(ctx->get(), nonce, aad, std::span(out.MutableData(SecretAccess{}), body_size), tag));
  return out;
}

}  // namespace gcm_internal
}  // namespace sealdrop
