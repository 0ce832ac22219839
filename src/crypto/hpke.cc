// HPKE base mode, single shot, composed from OpenSSL primitives. Quotations
// are from RFC 9180.
#include "crypto/hpke.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include <array>
#include <cstring>

#include "base/reader.h"
#include "crypto/gcm_internal.h"
#include "crypto/ossl_internal.h"

namespace sealdrop {
namespace {

constexpr uint16_t kKemP256Sha256 = 0x0010;
constexpr uint16_t kKdfHkdfSha256 = 0x0001;
constexpr uint16_t kAeadAes128Gcm = 0x0001;
constexpr uint16_t kAeadAes256Gcm = 0x0002;
constexpr uint8_t kModeBase = 0x00;
constexpr size_t kNh = 32;       // HKDF-SHA256 output size
constexpr size_t kNsecret = 32;  // DHKEM(P-256) shared secret size
constexpr size_t kNn = 12;       // AES-GCM nonce size
constexpr std::string_view kVersionLabel = "HPKE-v1";

size_t KeySizeFor(uint16_t aead_id) {
  switch (aead_id) {
    case kAeadAes128Gcm: return 16;
    case kAeadAes256Gcm: return 32;
    default: return 0;
  }
}

Bytes KemSuiteId() {
  // suite_id = concat("KEM", I2OSP(kem_id, 2))
  Writer w;
  w.Append("KEM");
  w.U16(kKemP256Sha256);
  return w.Take();
}

Bytes HpkeSuiteId(uint16_t aead_id) {
  // suite_id = concat("HPKE", I2OSP(kem_id, 2), I2OSP(kdf_id, 2), I2OSP(aead_id, 2))
  Writer w;
  w.Append("HPKE");
  w.U16(kKemP256Sha256);
  w.U16(kKdfHkdfSha256);
  w.U16(aead_id);
  return w.Take();
}

// Concatenates byte strings into wiping storage: labeled inputs carry the
// DH output or a PRK, so no plain copy of them is left behind.
SecretBytes SecretConcat(std::initializer_list<ByteView> parts) {
  size_t total = 0;
  for (ByteView p : parts) total += p.size();
  SecretBytes out(total);
  uint8_t* dst = out.MutableData(SecretAccess{});
  for (ByteView p : parts) {
    if (!p.empty()) std::memcpy(dst, p.data(), p.size());
    dst += p.size();
  }
  return out;
}

EVP_KDF* HkdfAlgorithm() {
  static EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) OsslFatal("HKDF is not available");
  return kdf;
}

// One HKDF step through EVP_KDF, mode EXTRACT_ONLY or EXPAND_ONLY.
Result<SecretBytes> Hkdf(int mode, ByteView salt, ByteView key, ByteView info, size_t out_len) {
  UniquePtr<EVP_KDF_CTX> ctx(EVP_KDF_CTX_new(HkdfAlgorithm()));
  if (!ctx) return std::unexpected(OsslError(ErrorCode::kInternal, "allocating HKDF"));
  OSSL_PARAM params[6];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 const_cast<char*>("SHA256"), 0);
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<uint8_t*>(key.data()), key.size());
  // An absent salt is HKDF's default of HashLen zero bytes (RFC 5869 section
  // 2.2), which is what an empty salt means in RFC 9180.
  if (!salt.empty())
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size());
  if (!info.empty())
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes out(out_len);
  if (EVP_KDF_derive(ctx.get(), out.MutableData(SecretAccess{}), out_len, params) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "HKDF"));
  return out;
}

// def LabeledExtract(salt, label, ikm):
//   labeled_ikm = concat("HPKE-v1", suite_id, label, ikm)
//   return Extract(salt, labeled_ikm)
Result<SecretBytes> LabeledExtract(ByteView suite_id, ByteView salt, std::string_view label,
                                   ByteView ikm) {
  SecretBytes labeled_ikm = SecretConcat({AsBytes(kVersionLabel), suite_id, AsBytes(label), ikm});
  return Hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, labeled_ikm.Reveal(SecretAccess{}), {}, kNh);
}

// def LabeledExpand(prk, label, info, L):
//   labeled_info = concat(I2OSP(L, 2), "HPKE-v1", suite_id, label, info)
//   return Expand(prk, labeled_info, L)
Result<SecretBytes> LabeledExpand(ByteView suite_id, const SecretBytes& prk,
                                  std::string_view label, ByteView info, size_t length) {
  Writer w;
  w.U16(static_cast<uint16_t>(length));
  w.Append(kVersionLabel);
  w.Append(suite_id);
  w.Append(label);
  w.Append(info);
  return Hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, {}, prk.Reveal(SecretAccess{}), w.bytes(), length);
}

// def ExtractAndExpand(dh, kem_context):
//   eae_prk = LabeledExtract("", "eae_prk", dh)
//   shared_secret = LabeledExpand(eae_prk, "shared_secret", kem_context, Nsecret)
Result<SecretBytes> ExtractAndExpand(const SecretBytes& dh, ByteView enc, ByteView pk_rm) {
  Bytes suite_id = KemSuiteId();
  SEALDROP_ASSIGN(SecretBytes eae_prk,
                  LabeledExtract(suite_id, {}, "eae_prk", dh.Reveal(SecretAccess{})));
  Bytes kem_context(enc.begin(), enc.end());  // kem_context = concat(enc, pkRm)
  kem_context.insert(kem_context.end(), pk_rm.begin(), pk_rm.end());
  return LabeledExpand(suite_id, eae_prk, "shared_secret", kem_context, kNsecret);
}

struct AeadContext {
  SecretBytes key;
  SecretBytes base_nonce;
};

// KeySchedule for mode_base (psk and psk_id empty). Single-shot use means
// sequence number 0, so the nonce is base_nonce itself (base_nonce xor 0).
Result<AeadContext> KeyScheduleBase(uint16_t aead_id, const SecretBytes& shared_secret,
                                    ByteView info) {
  Bytes suite_id = HpkeSuiteId(aead_id);
  // psk_id_hash = LabeledExtract("", "psk_id_hash", psk_id)
  // info_hash = LabeledExtract("", "info_hash", info)
  // key_schedule_context = concat(mode, psk_id_hash, info_hash)
  SEALDROP_ASSIGN(SecretBytes psk_id_hash, LabeledExtract(suite_id, {}, "psk_id_hash", {}));
  SEALDROP_ASSIGN(SecretBytes info_hash, LabeledExtract(suite_id, {}, "info_hash", info));
  Writer context;
  context.U8(kModeBase);
  context.Append(psk_id_hash.Reveal(SecretAccess{}));
  context.Append(info_hash.Reveal(SecretAccess{}));
  // secret = LabeledExtract(shared_secret, "secret", psk)
  SEALDROP_ASSIGN(SecretBytes secret, LabeledExtract(suite_id, shared_secret.Reveal(SecretAccess{}),
                                                     "secret", {}));
  // key = LabeledExpand(secret, "key", key_schedule_context, Nk)
  // base_nonce = LabeledExpand(secret, "base_nonce", key_schedule_context, Nn)
  SEALDROP_ASSIGN(SecretBytes key,
                  LabeledExpand(suite_id, secret, "key", context.bytes(), KeySizeFor(aead_id)));
  SEALDROP_ASSIGN(SecretBytes nonce,
                  LabeledExpand(suite_id, secret, "base_nonce", context.bytes(), kNn));
  return AeadContext{std::move(key), std::move(nonce)};
}

Error OpenFailed() { return Error{ErrorCode::kCryptoFailure, "HPKE decryption failed"}; }

}  // namespace

namespace hpke_internal {

Result<HpkeSealed> SealWithEphemeral(uint16_t aead_id, const EcPublicKey& recipient,
                                     const EcPrivateKey& ephemeral, ByteView info,
                                     ByteView aad, const SecretBytes& plaintext) {
  if (KeySizeFor(aead_id) == 0) return Fail(ErrorCode::kInvalidArgument, "unsupported HPKE AEAD");
  // def Encap(pkR):
  //   dh = DH(skE, pkR); enc = SerializePublicKey(pkE)
  //   kem_context = concat(enc, pkRm)
  SEALDROP_ASSIGN(SecretBytes dh, ephemeral.Ecdh(recipient));
  Bytes enc = ephemeral.PublicKey().ToPoint();
  SEALDROP_ASSIGN(SecretBytes shared_secret, ExtractAndExpand(dh, enc, recipient.ToPoint()));
  SEALDROP_ASSIGN(AeadContext ctx, KeyScheduleBase(aead_id, shared_secret, info));
  SEALDROP_ASSIGN(Bytes ciphertext,
                  gcm_internal::Seal(ctx.key, ctx.base_nonce.Reveal(SecretAccess{}), aad,
                                     plaintext.Reveal(SecretAccess{})));
  return HpkeSealed{std::move(enc), std::move(ciphertext)};
}

Result<SecretBytes> Open(uint16_t aead_id, const EcPrivateKey& recipient, ByteView enc,
                         ByteView info, ByteView aad, ByteView ciphertext) {
  // Every failure below looks the same to the caller: a decryption oracle
  // must not learn whether the point, the key or the tag was wrong.
  if (KeySizeFor(aead_id) == 0) return std::unexpected(OpenFailed());
  // def Decap(enc, skR):
  //   pkE = DeserializePublicKey(enc); dh = DH(skR, pkE)
  //   kem_context = concat(enc, pkRm)
  auto ephemeral = EcPublicKey::FromPoint(enc);
  if (!ephemeral) return std::unexpected(OpenFailed());
  auto dh = recipient.Ecdh(*ephemeral);
  if (!dh) return std::unexpected(OpenFailed());
  auto shared_secret = ExtractAndExpand(*dh, enc, recipient.PublicKey().ToPoint());
  if (!shared_secret) return std::unexpected(OpenFailed());
  auto ctx = KeyScheduleBase(aead_id, *shared_secret, info);
  if (!ctx) return std::unexpected(OpenFailed());
  auto plaintext =
      gcm_internal::Open(ctx->key, ctx->base_nonce.Reveal(SecretAccess{}), aad, ciphertext);
  if (!plaintext) return std::unexpected(OpenFailed());
  return std::move(*plaintext);
}

}  // namespace hpke_internal

Result<HpkeSealed> HpkeSeal(const EcPublicKey& recipient, ByteView info, ByteView aad,
                            const SecretBytes& plaintext) {
  SEALDROP_ASSIGN(EcPrivateKey ephemeral, EcPrivateKey::Generate());
  return hpke_internal::SealWithEphemeral(kAeadAes256Gcm, recipient, ephemeral, info, aad,
                                          plaintext);
}

Result<SecretBytes> HpkeOpen(const EcPrivateKey& recipient, ByteView enc, ByteView info,
                             ByteView aad, ByteView ciphertext) {
  return hpke_internal::Open(kAeadAes256Gcm, recipient, enc, info, aad, ciphertext);
}

}  // namespace sealdrop
