#include "tpm/credential.h"

#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <cstring>

#include "crypto/ossl_internal.h"
#include "crypto/random.h"

namespace sealdrop {
namespace {

constexpr size_t kSeedSize = 32;  // the EK's nameAlg digest size (SHA-256)
constexpr size_t kNameSize = 34;  // TPM_ALG_SHA256 (2 bytes) || SHA-256

void PutU16(Bytes& out, size_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

// KDFa (TPM 2.0 Part 1, 11.4.10.2): SP 800-108 counter mode, HMAC-SHA-256,
// 32-bit counter, label then 0x00 then context, then the length in bits.
Result<SecretBytes> KdfA(const SecretBytes& key, const char* label, ByteView context, size_t bytes) {
  UniquePtr<EVP_KDF_CTX> kctx;
  {
    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "KBKDF", nullptr);
    if (kdf == nullptr) return std::unexpected(OsslError(ErrorCode::kInternal, "KBKDF is unavailable"));
    kctx.reset(EVP_KDF_CTX_new(kdf));
    EVP_KDF_free(kdf);
  }
  if (!kctx) return std::unexpected(OsslError(ErrorCode::kInternal, "EVP_KDF_CTX_new failed"));
  ByteView k = key.Reveal(SecretAccess{});
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, const_cast<char*>("COUNTER"), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, const_cast<char*>("HMAC"), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(k.data()), k.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(label), std::strlen(label)),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(context.data()),
                                        context.size()),
      OSSL_PARAM_construct_end()};
  SecretBytes out(bytes);
  if (EVP_KDF_derive(kctx.get(), out.MutableData(SecretAccess{}), bytes, params) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "KDFa failed"));
  return out;
}

}  // namespace

Result<TpmCredential> MakeTpmCredential(ByteView ek_spki_der, ByteView object_name, const SecretBytes& secret) {
  if (object_name.size() != kNameSize || object_name[0] != 0x00 || object_name[1] != 0x0b)
    return Fail(ErrorCode::kInvalidArgument, "the object's TPM name is not a SHA-256 name");
  if (secret.empty() || secret.size() > 32)
    return Fail(ErrorCode::kInvalidArgument, "a credential's secret is 1 to 32 bytes");
  const uint8_t* p = ek_spki_der.data();
  UniquePtr<EVP_PKEY> ek(d2i_PUBKEY(nullptr, &p, static_cast<long>(ek_spki_der.size())));
  if (!ek || p != ek_spki_der.data() + ek_spki_der.size())
    return Fail(ErrorCode::kInvalidArgument, "the endorsement key is not a valid public key");
  if (EVP_PKEY_get_base_id(ek.get()) != EVP_PKEY_RSA || EVP_PKEY_get_bits(ek.get()) != 2048)
    return Fail(ErrorCode::kInvalidArgument, "the endorsement key is not RSA 2048");

  SecretBytes seed = RandomSecret(kSeedSize);

  // The seed, encrypted to the EK.
  UniquePtr<EVP_PKEY_CTX> rsa(EVP_PKEY_CTX_new_from_pkey(nullptr, ek.get(), nullptr));
  static const char kLabel[] = "IDENTITY";  // the label includes its terminating NUL
  void* label = OPENSSL_memdup(kLabel, sizeof kLabel);
  if (!rsa || label == nullptr || EVP_PKEY_encrypt_init(rsa.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(rsa.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(rsa.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(rsa.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set0_rsa_oaep_label(rsa.get(), label, sizeof kLabel) != 1) {
    OPENSSL_free(label);
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot set up RSA-OAEP"));
  }
  size_t enc_len = 0;
  ByteView s = seed.Reveal(SecretAccess{});
  if (EVP_PKEY_encrypt(rsa.get(), nullptr, &enc_len, s.data(), s.size()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "RSA-OAEP failed"));
  Bytes enc(enc_len);
  if (EVP_PKEY_encrypt(rsa.get(), enc.data(), &enc_len, s.data(), s.size()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "RSA-OAEP failed"));
  enc.resize(enc_len);

  // The credential, encrypted and integrity-protected under keys from the seed.
  SEALDROP_ASSIGN(SecretBytes sym_key, KdfA(seed, "STORAGE", object_name, 16));
  SEALDROP_ASSIGN(SecretBytes hmac_key, KdfA(seed, "INTEGRITY", {}, 32));
  ByteView sv = secret.Reveal(SecretAccess{});
  SecretBytes plain(2 + sv.size());
  uint8_t* pl = plain.MutableData(SecretAccess{});
  pl[0] = static_cast<uint8_t>(sv.size() >> 8);
  pl[1] = static_cast<uint8_t>(sv.size());
  std::memcpy(pl + 2, sv.data(), sv.size());

  Bytes enc_cred(plain.size());
  UniquePtr<EVP_CIPHER_CTX> cctx(EVP_CIPHER_CTX_new());
  const uint8_t iv[16] = {};
  int out_len = 0, final_len = 0;
  if (!cctx ||
      EVP_EncryptInit_ex2(cctx.get(), EVP_aes_128_cfb128(), sym_key.Reveal(SecretAccess{}).data(), iv,
                          nullptr) != 1 ||
      EVP_EncryptUpdate(cctx.get(), enc_cred.data(), &out_len, pl, static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(cctx.get(), enc_cred.data() + out_len, &final_len) != 1 ||
      static_cast<size_t>(out_len + final_len) != enc_cred.size())
    return std::unexpected(OsslError(ErrorCode::kInternal, "AES-128-CFB failed"));

  Bytes mac_input(enc_cred);
  mac_input.insert(mac_input.end(), object_name.begin(), object_name.end());
  uint8_t mac[32];
  unsigned mac_len = 0;
  ByteView hk = hmac_key.Reveal(SecretAccess{});
  if (HMAC(EVP_sha256(), hk.data(), static_cast<int>(hk.size()), mac_input.data(), mac_input.size(), mac,
           &mac_len) == nullptr ||
      mac_len != sizeof mac)
    return std::unexpected(OsslError(ErrorCode::kInternal, "HMAC-SHA-256 failed"));

  TpmCredential out;
  PutU16(out.id_object, 2 + sizeof mac + enc_cred.size());
  PutU16(out.id_object, sizeof mac);
  out.id_object.insert(out.id_object.end(), mac, mac + sizeof mac);
  out.id_object.insert(out.id_object.end(), enc_cred.begin(), enc_cred.end());
  PutU16(out.encrypted_secret, enc.size());
  out.encrypted_secret.insert(out.encrypted_secret.end(), enc.begin(), enc.end());
  return out;
}

}  // namespace sealdrop
