#include "crypto/sha256.h"

#include "base/encoding.h"
#include "crypto/ossl_internal.h"

namespace sealdrop {
namespace {

// Fetched once: the implicit fetch behind EVP_sha256() costs a provider
// lookup on every call, which shows up when hashing many payload chunks.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) OsslFatal("SHA-256 is not available");
  return md;
}

}  // namespace

Digest Sha256Of(ByteView data) {
  Sha256 h;
  h.Update(data);
  return h.Final();
}

std::string Sha256Hex(ByteView data) { return HexEncode(Sha256Of(data)); }

struct Sha256::Impl {
  UniquePtr<EVP_MD_CTX> ctx;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx.reset(EVP_MD_CTX_new());
  if (!impl_->ctx || EVP_DigestInit_ex2(impl_->ctx.get(), Sha256Md(), nullptr) != 1)
    OsslFatal("starting SHA-256");
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(ByteView data) {
  if (!impl_) OsslFatal("Sha256::Update on a moved-from or finished object");
  if (data.empty()) return;
  if (EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()) != 1)
    OsslFatal("SHA-256 update");
}

Digest Sha256::Final() {
  if (!impl_) OsslFatal("Sha256::Final on a moved-from or finished object");
  Digest out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx.get(), out.data(), &len) != 1 || len != out.size())
    OsslFatal("SHA-256 final");
  // Dropping the state turns any later use into a loud failure instead of a
  // digest of nothing.
  impl_.reset();
  return out;
}

}  // namespace sealdrop
