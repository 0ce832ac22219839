#include "tpm/enrol.h"

#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/files.h"
#include "base/time_format.h"
#include "crypto/ossl_internal.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "pki/ca.h"
#include "pki/cert.h"
#include "tpm/credential.h"

namespace sealdrop {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kRequestFormat[] = "sealdrop-tpm-enrol-request-1";
constexpr char kChallengeFormat[] = "sealdrop-tpm-enrol-challenge-1";
constexpr char kResponseFormat[] = "sealdrop-tpm-enrol-response-1";
constexpr char kPendingFormat[] = "sealdrop-tpm-enrol-pending-1";
constexpr size_t kSecretSize = 32;

// Parses `text` as one JSON object with exactly `fields`, all strings or
// objects as the caller then reads them.
Result<json> ParseDocument(std::string_view text, std::string_view what, const char* format,
                           std::initializer_list<const char*> fields) {
  if (text.size() > kMaxEnrolDocument)
    return Fail(ErrorCode::kTooLarge, "the " + std::string(what) + " is larger than " +
                                          std::to_string(kMaxEnrolDocument) + " bytes");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Fail(ErrorCode::kMalformed, "the " + std::string(what) + " is not a JSON object");
  if (!j.contains("format") || j["format"] != format)
    return Fail(ErrorCode::kMalformed, "the " + std::string(what) + " is not a " + format + " document");
  if (j.size() != fields.size() + 1)
    return Fail(ErrorCode::kMalformed, "the " + std::string(what) + " has missing or unknown fields");
  for (const char* f : fields)
    if (!j.contains(f)) return Fail(ErrorCode::kMalformed, "the " + std::string(what) + " has no \"" + f + "\"");
  return j;
}

Result<std::string> StringField(const json& j, const char* name, std::string_view what) {
  if (!j.contains(name) || !j[name].is_string())
    return Fail(ErrorCode::kMalformed, "the " + std::string(what) + "'s \"" + name + "\" is not a string");
  return j[name].get<std::string>();
}

Result<Bytes> BytesField(const json& j, const char* name, std::string_view what) {
  SEALDROP_ASSIGN(std::string text, StringField(j, name, what));
  auto bytes = Base64UrlDecode(text);
  if (!bytes) return Fail(ErrorCode::kMalformed, "the " + std::string(what) + "'s \"" + name + "\" is not base64url");
  return std::move(*bytes);
}

bool IsHex(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// --- the EK certificate ---

// Verifies the EK certificate against the makers' certificates and CRLs and
// returns its public key as SPKI DER.
Result<Bytes> VerifyEkCertificate(ByteView der, std::string_view roots_pem, std::chrono::system_clock::time_point now) {
  const uint8_t* p = der.data();
  UniquePtr<X509> ek(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!ek || p != der.data() + der.size()) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the EK certificate is not one DER X.509 certificate");
  }
  UniquePtr<X509_STORE> store(X509_STORE_new());
  UniquePtr<BIO> bio(BIO_new_mem_buf(roots_pem.data(), static_cast<int>(roots_pem.size())));
  if (!store || !bio) return std::unexpected(OsslError(ErrorCode::kInternal, "cannot make a certificate store"));
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr);
  if (infos == nullptr) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument, "the TPM makers' certificates are not readable PEM");
  }
  size_t certs = 0, crls = 0;
  bool added = true;
  for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
    X509_INFO* info = sk_X509_INFO_value(infos, i);
    if (info->x509 != nullptr) {
      added = added && X509_STORE_add_cert(store.get(), info->x509) == 1;
      ++certs;
    }
    if (info->crl != nullptr) {
      added = added && X509_STORE_add_crl(store.get(), info->crl) == 1;
      ++crls;
    }
  }
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  if (!added) return std::unexpected(OsslError(ErrorCode::kInvalidArgument, "cannot use the TPM makers' certificates"));
  if (certs == 0) return Fail(ErrorCode::kInvalidArgument, "no TPM maker certificate was given");

  UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), ek.get(), nullptr) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot set up the EK certificate check"));
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(now));
  X509_VERIFY_PARAM_set_depth(param, 4);
  if (crls > 0) X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Fail(ErrorCode::kUntrustedPeer, std::string("the EK certificate is not from a trusted TPM maker (") +
                                               X509_verify_cert_error_string(err) + ")");
  }
  EVP_PKEY* key = X509_get0_pubkey(ek.get());
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) != 2048)
    return Fail(ErrorCode::kRefused, "the EK certificate's key is not RSA 2048 (the TCG default EK, template L-1)");
  unsigned char* spki = nullptr;
  int n = i2d_PUBKEY(key, &spki);
  if (n <= 0) return std::unexpected(OsslError(ErrorCode::kInternal, "cannot encode the EK"));
  Bytes out(spki, spki + n);
  OPENSSL_free(spki);
  return out;
}

// A key's TPM2B_PUBLIC, checked for its role.
Result<TpmPublicInfo> CheckKeyPublic(ByteView tpm_public, TpmKeyRole role, std::string_view name) {
  auto info = ParseTpmPublic(tpm_public);
  if (!info) return Fail(ErrorCode::kMalformed, "the " + std::string(name) + " key's TPM2B_PUBLIC: " + info.error().message);
  if (!info->ecc_p256) return Fail(ErrorCode::kRefused, "the " + std::string(name) + " key is not a P-256 key");
  if (!EcPublicKey::FromPoint(info->point))
    return Fail(ErrorCode::kMalformed, "the " + std::string(name) + " key's point is not on P-256");
  if (info->attributes != TpmKeyAttributes(role))
    return Fail(ErrorCode::kRefused, "the " + std::string(name) +
                                         " key's attributes are not fixedTPM | fixedParent | sensitiveDataOrigin | "
                                         "userWithAuth | " +
                                         (role == TpmKeyRole::kSign ? "sign" : "decrypt") + " exactly");
  return std::move(*info);
}

fs::path PendingPath(const fs::path& ca_dir, std::string_view enrolment) {
  return ca_dir / "pending" / (std::string(enrolment) + ".json");
}

}  // namespace

Result<std::string> MakeTpmEnrolRequest(Tpm& tpm, std::string_view serial, const TpmKeyFile& identity,
                                        const TpmKeyFile& keywrap) {
  SEALDROP_ASSIGN(Bytes ek_cert, tpm.ReadEkCertificate());
  json j = {{"format", kRequestFormat},
            {"serial", std::string(serial)},
            {"ek_certificate", Base64UrlEncode(ek_cert)},
            {"identity_public", Base64UrlEncode(identity.public_area)},
            {"keywrap_public", Base64UrlEncode(keywrap.public_area)}};
  return j.dump(2) + "\n";
}

Result<std::string> AnswerTpmEnrolChallenge(Tpm& tpm, std::string_view serial, const TpmKeyFile& identity,
                                            const TpmKeyFile& keywrap, std::string_view challenge_json) {
  SEALDROP_ASSIGN(json j, ParseDocument(challenge_json, "challenge", kChallengeFormat,
                                        {"enrolment", "serial", "identity", "keywrap"}));
  SEALDROP_ASSIGN(std::string enrolment, StringField(j, "enrolment", "challenge"));
  SEALDROP_ASSIGN(std::string for_serial, StringField(j, "serial", "challenge"));
  if (!IsHex(enrolment, 32)) return Fail(ErrorCode::kMalformed, "the challenge's enrolment id is not 32 hex digits");
  if (for_serial != serial)
    return Fail(ErrorCode::kInvalidArgument, "the challenge is for processor " + for_serial.substr(0, 64) +
                                                 ", not " + std::string(serial));
  json out = {{"format", kResponseFormat}, {"enrolment", enrolment}};
  for (auto [field, key] : {std::pair{"identity", &identity}, std::pair{"keywrap", &keywrap}}) {
    const json& c = j[field];
    if (!c.is_object() || c.size() != 2)
      return Fail(ErrorCode::kMalformed, std::string("the challenge's \"") + field + "\" is not a credential");
    SEALDROP_ASSIGN(Bytes id_object, BytesField(c, "id_object", "challenge"));
    SEALDROP_ASSIGN(Bytes encrypted_secret, BytesField(c, "encrypted_secret", "challenge"));
    auto secret = tpm.ActivateCredential(*key, id_object, encrypted_secret);
    if (!secret)
      return Fail(secret.error().code, std::string("the TPM will not release the ") + field +
                                           " key's credential: " + secret.error().message);
    out[std::string(field) + "_secret"] = Base64UrlEncode(secret->Reveal(SecretAccess{}));
  }
  return out.dump(2) + "\n";
}

Result<TpmEnrolChallenge> CaTpmEnrolChallenge(const fs::path& ca_dir, std::string_view request_json,
                                              std::string_view tpm_roots_pem,
                                              std::chrono::system_clock::time_point now) {
  // A CA directory, readable, before anything else.
  if (auto ca = CaList(ca_dir); !ca) return std::unexpected(ca.error());
  SEALDROP_ASSIGN(json j, ParseDocument(request_json, "enrolment request", kRequestFormat,
                                        {"serial", "ek_certificate", "identity_public", "keywrap_public"}));
  SEALDROP_ASSIGN(std::string serial, StringField(j, "serial", "enrolment request"));
  if (auto ok = CheckDeviceSerial(serial); !ok)
    return Fail(ErrorCode::kMalformed, "the request's device serial is not valid: " + ok.error().message);
  SEALDROP_ASSIGN(Bytes ek_cert, BytesField(j, "ek_certificate", "enrolment request"));
  SEALDROP_ASSIGN(Bytes identity_public, BytesField(j, "identity_public", "enrolment request"));
  SEALDROP_ASSIGN(Bytes keywrap_public, BytesField(j, "keywrap_public", "enrolment request"));

  SEALDROP_ASSIGN(Bytes ek, VerifyEkCertificate(ek_cert, tpm_roots_pem, now));
  SEALDROP_ASSIGN(TpmPublicInfo identity, CheckKeyPublic(identity_public, TpmKeyRole::kSign, "identity"));
  SEALDROP_ASSIGN(TpmPublicInfo keywrap, CheckKeyPublic(keywrap_public, TpmKeyRole::kDecrypt, "key-wrap"));
  if (identity.point == keywrap.point) return Fail(ErrorCode::kRefused, "the two keys are the same key");

  TpmEnrolChallenge out;
  out.serial = serial;
  out.enrolment = RandomHexId(16);
  json challenge = {{"format", kChallengeFormat}, {"enrolment", out.enrolment}, {"serial", serial}};
  json pending = {{"format", kPendingFormat},
                  {"serial", serial},
                  {"created_at", FormatRfc3339(now)},
                  {"ek_certificate_sha256", Sha256Hex(ek_cert)}};
  for (auto [field, info] : {std::pair{"identity", &identity}, std::pair{"keywrap", &keywrap}}) {
    SecretBytes secret = RandomSecret(kSecretSize);
    SEALDROP_ASSIGN(TpmCredential cred, MakeTpmCredential(ek, info->name, secret));
    challenge[field] = {{"id_object", Base64UrlEncode(cred.id_object)},
                        {"encrypted_secret", Base64UrlEncode(cred.encrypted_secret)}};
    pending[field] = {{"point", HexEncode(info->point)},
                      {"secret_sha256", Sha256Hex(secret.Reveal(SecretAccess{}))}};
  }
  SEALDROP_TRY(EnsureDirectory(ca_dir / "pending", 0700));
  SEALDROP_TRY(WriteFileAtomic(PendingPath(ca_dir, out.enrolment), pending.dump(2) + "\n", 0600));
  out.json = challenge.dump(2) + "\n";
  return out;
}

Result<TpmEnrolIssued> CaTpmEnrolFinish(const fs::path& ca_dir, std::string_view response_json, int days,
                                        std::chrono::system_clock::time_point now) {
  SEALDROP_ASSIGN(json j, ParseDocument(response_json, "enrolment response", kResponseFormat,
                                        {"enrolment", "identity_secret", "keywrap_secret"}));
  SEALDROP_ASSIGN(std::string enrolment, StringField(j, "enrolment", "enrolment response"));
  if (!IsHex(enrolment, 32)) return Fail(ErrorCode::kMalformed, "the response's enrolment id is not 32 hex digits");
  const fs::path path = PendingPath(ca_dir, enrolment);
  auto text = ReadTextFile(path, kMaxEnrolDocument);
  if (!text)
    return Fail(ErrorCode::kNotFound, "this CA has no open enrolment " + enrolment +
                                          " (it was never started, was already used, or failed); start again "
                                          "with a new request");
  // Used once, right or wrong: removed before anything is issued.
  if (::unlink(path.c_str()) != 0) return Fail(ErrorCode::kIo, "cannot remove " + path.string());
  SEALDROP_TRY(SyncDirectory(path.parent_path()));
  json pending = json::parse(*text, nullptr, false);
  if (pending.is_discarded() || !pending.is_object() || pending.value("format", "") != kPendingFormat)
    return Fail(ErrorCode::kMalformed, path.string() + " is damaged");
  std::chrono::system_clock::time_point created;
  try {
    auto t = ParseRfc3339(pending.at("created_at").get<std::string>());
    if (!t) return Fail(ErrorCode::kMalformed, path.string() + " is damaged");
    created = *t;
  } catch (const json::exception&) {
    return Fail(ErrorCode::kMalformed, path.string() + " is damaged");
  }
  if (now > created + kEnrolPendingLifetime || now < created - std::chrono::hours(1))
    return Fail(ErrorCode::kNotFound, "the enrolment " + enrolment + " has expired; start again with a new request");

  TpmEnrolIssued out;
  CaIssueOptions options;
  options.days = days;
  try {
    out.serial = pending.at("serial").get<std::string>();
    auto ek_hash = HexDecode(pending.at("ek_certificate_sha256").get<std::string>());
    if (!ek_hash || ek_hash->size() != 32) return Fail(ErrorCode::kMalformed, path.string() + " is damaged");
    options.tpm_ek_certificate_sha256 = *ek_hash;
    // Both secrets are checked before either certificate is issued.
    for (const char* field : {"identity", "keywrap"}) {
      SEALDROP_ASSIGN(Bytes secret, BytesField(j, (std::string(field) + "_secret").c_str(), "enrolment response"));
      const Digest got = Sha256Of(secret);
      auto want = HexDecode(pending.at(field).at("secret_sha256").get<std::string>());
      if (!want || !ConstantTimeEqual(ByteView(got.data(), got.size()), *want))
        return Fail(ErrorCode::kRefused, std::string("the ") + field +
                                             " key's secret is wrong: its key is not in the TPM that holds the "
                                             "endorsement key; enrolment " +
                                             enrolment + " is closed");
    }
    SEALDROP_ASSIGN(std::string root_pem, ReadTextFile(ca_dir / "ca.pem", kMaxPemFileSize));
    for (auto [field, role, dest] :
         {std::tuple{"identity", DeviceKeyRole::kIdentity, &out.identity_pem},
          std::tuple{"keywrap", DeviceKeyRole::kKeyWrap, &out.keywrap_pem}}) {
      auto point = HexDecode(pending.at(field).at("point").get<std::string>());
      if (!point) return Fail(ErrorCode::kMalformed, path.string() + " is damaged");
      SEALDROP_ASSIGN(EcPublicKey key, EcPublicKey::FromPoint(*point));
      const std::string cn = "sealdrop processor " + out.serial + (role == DeviceKeyRole::kKeyWrap ? " key-wrap" : "");
      SEALDROP_ASSIGN(std::string pem, CaIssueDeviceKey(ca_dir, key, cn, out.serial, role, options));
      *dest = pem + root_pem;
    }
  } catch (const std::exception&) {
    return Fail(ErrorCode::kMalformed, path.string() + " is damaged");
  }
  return out;
}

}  // namespace sealdrop
