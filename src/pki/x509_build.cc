// Building and signing certificates and CRLs: the one place where the
// profiles of cert.h turn into extensions.
#include <openssl/pem.h>

#include "base/encoding.h"
#include "crypto/random.h"
#include "pki/pki_internal.h"

namespace sealdrop::pki_internal {
namespace {

Result<UniquePtr<ASN1_INTEGER>> SerialToAsn1(ByteView serial) {
  UniquePtr<BIGNUM> bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn) return std::unexpected(OsslError(ErrorCode::kInternal, "BN_bin2bn failed"));
  UniquePtr<ASN1_INTEGER> out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!out) return std::unexpected(OsslError(ErrorCode::kInternal, "BN_to_ASN1_INTEGER failed"));
  return out;
}

struct GeneralNamesDeleter {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};

}  // namespace

// Built from GENERAL_NAME structures rather than a config string, so a host
// name can never smuggle in another entry.
Result<UniquePtr<X509_EXTENSION>> MakeSubjectAltName(const std::vector<std::string>& hosts) {
  std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter> names(GENERAL_NAMES_new());
  if (!names) return std::unexpected(OsslError(ErrorCode::kInternal, "GENERAL_NAMES_new failed"));
  for (const std::string& host : hosts) {
    SEALDROP_TRY(CheckHost(host));
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
    ERR_clear_error();
    GENERAL_NAME* name = GENERAL_NAME_new();
    if (name == nullptr) {
      ASN1_OCTET_STRING_free(ip);
      return std::unexpected(OsslError(ErrorCode::kInternal, "GENERAL_NAME_new failed"));
    }
    if (ip != nullptr) {
      GENERAL_NAME_set0_value(name, GEN_IPADD, ip);
    } else {
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      if (dns == nullptr || ASN1_STRING_set(dns, host.data(), static_cast<int>(host.size())) != 1) {
        ASN1_IA5STRING_free(dns);
        GENERAL_NAME_free(name);
        return std::unexpected(OsslError(ErrorCode::kInternal, "cannot encode a DNS name"));
      }
      GENERAL_NAME_set0_value(name, GEN_DNS, dns);
    }
    if (sk_GENERAL_NAME_push(names.get(), name) <= 0) {
      GENERAL_NAME_free(name);
      return std::unexpected(OsslError(ErrorCode::kInternal, "sk_GENERAL_NAME_push failed"));
    }
  }
  UniquePtr<X509_EXTENSION> ext(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
  if (!ext) return std::unexpected(OsslError(ErrorCode::kInternal, "cannot encode subjectAltName"));
  return ext;
}

namespace {

Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return std::unexpected(
        OsslError(ErrorCode::kInternal, std::string("cannot add extension ") + OBJ_nid2sn(nid)));
  return Ok();
}

Status SetSubject(X509_NAME* name, const CertSpec& spec) {
  SEALDROP_TRY(CheckCommonName(spec.common_name));
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                                 -1, -1, 0) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot set the common name"));
  if (spec.kind == CertSpec::Kind::kDevice) {
    SEALDROP_TRY(CheckDeviceSerial(spec.serial_number));
    if (X509_NAME_add_entry_by_NID(
            name, NID_serialNumber, MBSTRING_ASC,
            reinterpret_cast<const unsigned char*>(spec.serial_number.c_str()), -1, -1, 0) != 1)
      return std::unexpected(OsslError(ErrorCode::kInternal, "cannot set the device serial"));
  }
  return Ok();
}

}  // namespace

Bytes RandomSerial() {
  Bytes serial = RandomBytes(16);
  serial[0] = static_cast<uint8_t>((serial[0] & 0x7f) | 0x40);
  return serial;
}

Bytes TpmBindingPrefix() {
  return {0x30, 41, 0x0c, 3, 't', 'p', 'm', 0x04, 32};
}

namespace {
Status AddTpmBinding(X509* cert, const Bytes& ek_certificate_sha256) {
  if (ek_certificate_sha256.size() != 32)
    return Fail(ErrorCode::kInvalidArgument, "the EK certificate hash must be 32 bytes");
  Bytes value = TpmBindingPrefix();
  value.insert(value.end(), ek_certificate_sha256.begin(), ek_certificate_sha256.end());
  UniquePtr<ASN1_OBJECT> oid(OBJ_txt2obj(kTpmBindingOid, 1));
  UniquePtr<ASN1_STRING> data(ASN1_OCTET_STRING_new());
  if (!oid || !data || ASN1_OCTET_STRING_set(data.get(), value.data(), static_cast<int>(value.size())) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot encode the TPM binding"));
  UniquePtr<X509_EXTENSION> ext(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, data.get()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot add the TPM binding extension"));
  return Ok();
}
}  // namespace

Result<Certificate> SignCertificate(const CertSpec& spec, const EcPublicKey& subject_key,
                                    const Certificate* issuer, const EcPrivateKey& issuer_key) {
  if (issuer == nullptr && !(issuer_key.PublicKey() == subject_key))
    return Fail(ErrorCode::kInternal, "a self-signed certificate must be signed by its own key");
  if (spec.not_after <= spec.not_before)
    return Fail(ErrorCode::kInvalidArgument, "the certificate's validity period is empty");
  if (spec.kind == CertSpec::Kind::kServer && spec.hosts.empty())
    return Fail(ErrorCode::kInvalidArgument, "a server certificate needs at least one host name");

  UniquePtr<X509> x(X509_new());
  if (!x) return std::unexpected(OsslError(ErrorCode::kInternal, "X509_new failed"));
  if (X509_set_version(x.get(), X509_VERSION_3) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "X509_set_version failed"));

  SEALDROP_ASSIGN(auto serial, SerialToAsn1(RandomSerial()));
  if (X509_set_serialNumber(x.get(), serial.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot set the serial"));

  SEALDROP_TRY(SetSubject(X509_get_subject_name(x.get()), spec));
  const X509_NAME* issuer_name =
      issuer ? X509_get_subject_name(RawX509(*issuer)) : X509_get_subject_name(x.get());
  if (X509_set_issuer_name(x.get(), issuer_name) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot set the issuer name"));

  auto not_before = ToAsn1Time(spec.not_before);
  auto not_after = ToAsn1Time(spec.not_after);
  if (!not_before || !not_after || X509_set1_notBefore(x.get(), not_before.get()) != 1 ||
      X509_set1_notAfter(x.get(), not_after.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot set the validity period"));
  if (X509_set_pubkey(x.get(), RawPkey(subject_key)) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot set the public key"));

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? RawX509(*issuer) : x.get(), x.get(), nullptr, nullptr, 0);
  switch (spec.kind) {
    case CertSpec::Kind::kCa:
      SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
      SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
      break;
    case CertSpec::Kind::kDevice:
      SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
      SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_key_usage,
                                    spec.role == DeviceKeyRole::kIdentity
                                        ? "critical,digitalSignature"
                                        : "critical,keyAgreement"));
      SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_ext_key_usage, "clientAuth"));
      if (!spec.tpm_ek_certificate_sha256.empty()) SEALDROP_TRY(AddTpmBinding(x.get(), spec.tpm_ek_certificate_sha256));
      break;
    case CertSpec::Kind::kServer: {
      SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
      SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
      SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_ext_key_usage, "serverAuth"));
      SEALDROP_ASSIGN(auto san, MakeSubjectAltName(spec.hosts));
      if (X509_add_ext(x.get(), san.get(), -1) != 1)
        return std::unexpected(OsslError(ErrorCode::kInternal, "cannot add subjectAltName"));
      break;
    }
  }
  // The key identifiers let verifiers pick the right issuer key when a CA
  // rolls over to a new key under the same name.
  SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_subject_key_identifier, "hash"));
  SEALDROP_TRY(AddConfExtension(x.get(), &ctx, NID_authority_key_identifier, "keyid:always"));

  if (X509_sign(x.get(), RawPkey(issuer_key), EVP_sha256()) <= 0)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot sign the certificate"));
  return WrapX509(x.get());
}

Result<std::string> SignCrlPem(const Certificate& ca, const EcPrivateKey& ca_key,
                               const std::vector<CrlEntry>& revoked, uint64_t crl_number,
                               TimePoint this_update, TimePoint next_update) {
  UniquePtr<X509_CRL> crl(X509_CRL_new());
  if (!crl) return std::unexpected(OsslError(ErrorCode::kInternal, "X509_CRL_new failed"));
  auto last = ToAsn1Time(this_update);
  auto next = ToAsn1Time(next_update);
  if (X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(RawX509(ca))) != 1 || !last ||
      !next || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot fill in the CRL"));

  for (const CrlEntry& entry : revoked) {
    auto serial_bytes = HexDecode(entry.serial_hex);
    if (!serial_bytes || serial_bytes->empty())
      return Fail(ErrorCode::kMalformed, "the revoked serial \"" + entry.serial_hex.substr(0, 80) +
                                             "\" is not hexadecimal");
    SEALDROP_ASSIGN(auto serial, SerialToAsn1(*serial_bytes));
    auto when = ToAsn1Time(entry.revoked_at);
    X509_REVOKED* rev = X509_REVOKED_new();
    if (rev == nullptr || !when || X509_REVOKED_set_serialNumber(rev, serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(rev, when.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), rev) != 1) {
      X509_REVOKED_free(rev);
      return std::unexpected(OsslError(ErrorCode::kInternal, "cannot add a CRL entry"));
    }
  }
  if (X509_CRL_sort(crl.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "X509_CRL_sort failed"));

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, RawX509(ca), nullptr, nullptr, crl.get(), 0);
  UniquePtr<X509_EXTENSION> akid(
      X509V3_EXT_nconf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!akid || X509_CRL_add_ext(crl.get(), akid.get(), -1) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot add the CRL's key identifier"));
  UniquePtr<ASN1_INTEGER> number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_uint64(number.get(), crl_number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot add the CRL number"));

  if (X509_CRL_sign(crl.get(), RawPkey(ca_key), EVP_sha256()) <= 0)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot sign the CRL"));
  UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot encode the CRL"));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace sealdrop::pki_internal
