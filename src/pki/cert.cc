#include "pki/cert.h"

#include <openssl/pem.h>

#include "pki/pki_internal.h"

namespace sealdrop {
namespace {

using pki_internal::ParsePemBlocks;

Result<Certificate> CertificateFromBlocks(const std::vector<pki_internal::PemBlock>& blocks,
                                          size_t index) {
  auto cert = Certificate::FromDer(blocks[index].der);
  if (!cert && blocks.size() > 1)
    return std::unexpected(
        WithContext(cert.error(), "certificate " + std::to_string(index + 1) + " of the bundle"));
  return cert;
}

}  // namespace

Result<Certificate> WrapX509(X509* x509) {
  if (x509 == nullptr) return Fail(ErrorCode::kMalformed, "no certificate");
  int der_size = i2d_X509(x509, nullptr);
  if (der_size <= 0) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the certificate cannot be encoded");
  }
  if (static_cast<size_t>(der_size) > kMaxCertDerSize)
    return Fail(ErrorCode::kTooLarge,
                "the certificate is larger than " + std::to_string(kMaxCertDerSize) + " bytes");
  // EXFLAG_INVALID marks duplicate or undecodable extensions; such a
  // certificate means different things to different parsers.
  if ((X509_get_extension_flags(x509) & EXFLAG_INVALID) != 0) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the certificate has invalid or duplicate extensions");
  }
  EVP_PKEY* pkey = X509_get0_pubkey(x509);
  if (pkey == nullptr) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the certificate's public key cannot be decoded");
  }
  auto key = WrapPublicKey(pkey);
  if (!key) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the certificate's public key is not a P-256 key");
  }
  if (X509_up_ref(x509) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "X509_up_ref"));
  auto impl = std::make_shared<const Certificate::Impl>(
      Certificate::Impl{UniquePtr<X509>(x509), std::move(*key)});
  return Certificate(std::move(impl));
}

Result<Certificate> Certificate::FromDer(ByteView der) {
  if (der.size() > kMaxCertDerSize)
    return Fail(ErrorCode::kTooLarge,
                "the certificate is larger than " + std::to_string(kMaxCertDerSize) + " bytes");
  if (der.empty()) return Fail(ErrorCode::kMalformed, "the certificate is empty");
  const unsigned char* p = der.data();
  UniquePtr<X509> x509(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!x509) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the certificate is not valid DER-encoded X.509");
  }
  if (p != der.data() + der.size())
    return Fail(ErrorCode::kMalformed, "the certificate has trailing bytes after its DER encoding");
  return WrapX509(x509.get());
}

Result<std::vector<Certificate>> Certificate::AllFromPem(std::string_view pem) {
  SEALDROP_ASSIGN(auto blocks, ParsePemBlocks(pem, "the certificate", kMaxCertDerSize));
  std::vector<Certificate> certs;
  certs.reserve(blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].label != "CERTIFICATE")
      return Fail(ErrorCode::kMalformed, "the PEM holds a \"" +
                                             pki_internal::Printable(blocks[i].label) +
                                             "\" block where only certificates belong");
    SEALDROP_ASSIGN(Certificate cert, CertificateFromBlocks(blocks, i));
    certs.push_back(std::move(cert));
  }
  return certs;
}

Result<Certificate> Certificate::FromPem(std::string_view pem) {
  SEALDROP_ASSIGN(auto certs, AllFromPem(pem));
  if (certs.size() != 1)
    return Fail(ErrorCode::kMalformed, "the PEM holds " + std::to_string(certs.size()) +
                                           " certificates where exactly one was expected");
  return std::move(certs.front());
}

std::string Certificate::ToPem() const { return pki_internal::EncodePem("CERTIFICATE", ToDer()); }

Bytes Certificate::ToDer() const {
  unsigned char* der = nullptr;
  int n = i2d_X509(impl_->x509.get(), &der);
  if (n <= 0) {
    // WrapX509 encoded this certificate once already; only allocation can fail.
    ERR_clear_error();
    return {};
  }
  Bytes out(der, der + n);
  OPENSSL_free(der);
  return out;
}

std::string Certificate::SerialHex() const { return pki_internal::SerialHexOf(impl_->x509.get()); }

std::string Certificate::SubjectCommonName() const {
  return pki_internal::NameEntry(X509_get_subject_name(impl_->x509.get()), NID_commonName);
}

std::string Certificate::SubjectSerialNumber() const {
  return pki_internal::NameEntry(X509_get_subject_name(impl_->x509.get()), NID_serialNumber);
}

std::chrono::system_clock::time_point Certificate::NotBefore() const {
  return pki_internal::FromAsn1Time(X509_get0_notBefore(impl_->x509.get()));
}

std::chrono::system_clock::time_point Certificate::NotAfter() const {
  return pki_internal::FromAsn1Time(X509_get0_notAfter(impl_->x509.get()));
}

EcPublicKey Certificate::PublicKey() const { return impl_->public_key; }

bool Certificate::IsCa() const {
  return (X509_get_extension_flags(impl_->x509.get()) & EXFLAG_CA) != 0;
}

Bytes Certificate::TpmEkCertificateSha256() const {
  UniquePtr<ASN1_OBJECT> oid(OBJ_txt2obj(kTpmBindingOid, 1));
  if (!oid) OsslFatal("OBJ_txt2obj failed");
  int at = X509_get_ext_by_OBJ(impl_->x509.get(), oid.get(), -1);
  if (at < 0) return {};
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(impl_->x509.get(), at));
  ByteView v(ASN1_STRING_get0_data(data), static_cast<size_t>(ASN1_STRING_length(data)));
  const Bytes prefix = pki_internal::TpmBindingPrefix();
  if (v.size() != prefix.size() + 32 || !std::equal(prefix.begin(), prefix.end(), v.begin())) return {};
  return Bytes(v.begin() + static_cast<std::ptrdiff_t>(prefix.size()), v.end());
}

}  // namespace sealdrop
