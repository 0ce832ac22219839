// Certificate signing requests: made by processors and servers, parsed as
// untrusted input by the CA.
#include <arpa/inet.h>
#include <openssl/pem.h>

#include "pki/pki_internal.h"

namespace sealdrop {
namespace {

using pki_internal::CheckCommonName;
using pki_internal::CheckDeviceSerial;
using pki_internal::CheckHost;

struct ExtensionsDeleter {
  void operator()(STACK_OF(X509_EXTENSION) * p) const {
    sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
  }
};
using ExtensionStack = std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionsDeleter>;

struct GeneralNamesDeleter {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
struct BitStringDeleter {
  void operator()(ASN1_BIT_STRING* p) const { ASN1_BIT_STRING_free(p); }
};

Status CheckRequest(const CsrRequest& request) {
  SEALDROP_TRY(CheckCommonName(request.common_name));
  bool device = !request.serial_number.empty();
  bool server = !request.hosts.empty();
  if (device == server)
    return Fail(ErrorCode::kInvalidArgument,
                "a CSR needs either a device serial (device certificate) or host names "
                "(server certificate), not both and not neither");
  if (device) SEALDROP_TRY(CheckDeviceSerial(request.serial_number));
  if (server) {
    if (request.role != DeviceKeyRole::kIdentity)
      return Fail(ErrorCode::kInvalidArgument, "a server CSR cannot ask for the key-wrap role");
    if (request.hosts.size() > 32)
      return Fail(ErrorCode::kInvalidArgument, "a CSR may name at most 32 hosts");
    for (const auto& host : request.hosts) SEALDROP_TRY(CheckHost(host));
  }
  return Ok();
}

Status AddNameEntry(X509_NAME* name, int nid, int type, const std::string& value) {
  if (X509_NAME_add_entry_by_NID(
          name, nid, type, reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot fill in the CSR subject"));
  return Ok();
}

Status PushExtension(STACK_OF(X509_EXTENSION) * exts, X509_EXTENSION* ext) {
  if (ext == nullptr || sk_X509_EXTENSION_push(exts, ext) <= 0) {
    X509_EXTENSION_free(ext);
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot add a CSR extension"));
  }
  return Ok();
}

Result<std::string> HostFromGeneralName(const GENERAL_NAME* name) {
  int type = 0;
  const void* value = GENERAL_NAME_get0_value(name, &type);
  if (type == GEN_DNS) {
    const auto* dns = static_cast<const ASN1_IA5STRING*>(value);
    std::string host(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                     static_cast<size_t>(ASN1_STRING_length(dns)));
    if (!CheckHost(host))
      return Fail(ErrorCode::kMalformed, "the CSR names a host that is not a valid DNS name");
    return host;
  }
  if (type == GEN_IPADD) {
    const auto* ip = static_cast<const ASN1_OCTET_STRING*>(value);
    int len = ASN1_STRING_length(ip);
    char text[INET6_ADDRSTRLEN] = {};
    if ((len == 4 && inet_ntop(AF_INET, ASN1_STRING_get0_data(ip), text, sizeof text)) ||
        (len == 16 && inet_ntop(AF_INET6, ASN1_STRING_get0_data(ip), text, sizeof text)))
      return std::string(text);
    return Fail(ErrorCode::kMalformed, "the CSR names an IP address of the wrong length");
  }
  return Fail(
      ErrorCode::kMalformed,
      "the CSR's subjectAltName holds an entry that is neither a DNS name nor an IP address");
}

// Reads what the CA may take from the request's extensions: the hosts and the
// key usage asked for. Everything else in a CSR is ignored, not copied.
Status ReadRequestedExtensions(X509_REQ* req, pki_internal::ParsedCsr& out) {
  ExtensionStack exts(X509_REQ_get_extensions(req));
  ERR_clear_error();  // a CSR without an extension request is not an error
  if (!exts) return Ok();
  bool seen_san = false;
  for (int i = 0; i < sk_X509_EXTENSION_num(exts.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    if (nid == NID_key_usage) {
      if (out.key_usage) return Fail(ErrorCode::kMalformed, "the CSR asks for keyUsage twice");
      std::unique_ptr<ASN1_BIT_STRING, BitStringDeleter> bits(
          static_cast<ASN1_BIT_STRING*>(X509V3_EXT_d2i(ext)));
      if (!bits) {
        ERR_clear_error();
        return Fail(ErrorCode::kMalformed, "the CSR's keyUsage extension cannot be decoded");
      }
      // The same folding OpenSSL applies to certificates (KU_* constants).
      uint32_t usage = 0;
      int len = ASN1_STRING_length(bits.get());
      const unsigned char* data = ASN1_STRING_get0_data(bits.get());
      if (len > 0) usage |= data[0];
      if (len > 1) usage |= static_cast<uint32_t>(data[1]) << 8;
      out.key_usage = usage;
    } else if (nid == NID_subject_alt_name) {
      if (seen_san) return Fail(ErrorCode::kMalformed, "the CSR has two subjectAltName extensions");
      seen_san = true;
      std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter> names(
          static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
      if (!names) {
        ERR_clear_error();
        return Fail(ErrorCode::kMalformed, "the CSR's subjectAltName cannot be decoded");
      }
      int count = sk_GENERAL_NAME_num(names.get());
      if (count > 32) return Fail(ErrorCode::kMalformed, "the CSR names more than 32 hosts");
      for (int j = 0; j < count; ++j) {
        SEALDROP_ASSIGN(std::string host,
                        HostFromGeneralName(sk_GENERAL_NAME_value(names.get(), j)));
        out.hosts.push_back(std::move(host));
      }
    }
  }
  return Ok();
}

}  // namespace

Result<std::string> MakeCsrPem(const EcPrivateKey& key, const CsrRequest& request) {
  SEALDROP_TRY(CheckRequest(request));
  UniquePtr<X509_REQ> req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "X509_REQ_new failed"));
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  SEALDROP_TRY(AddNameEntry(name, NID_commonName, MBSTRING_UTF8, request.common_name));
  if (!request.serial_number.empty())
    SEALDROP_TRY(AddNameEntry(name, NID_serialNumber, MBSTRING_ASC, request.serial_number));
  if (X509_REQ_set_pubkey(req.get(), RawPkey(key)) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot set the CSR's public key"));

  ExtensionStack exts(sk_X509_EXTENSION_new_null());
  if (!exts)
    return std::unexpected(OsslError(ErrorCode::kInternal, "sk_X509_EXTENSION_new failed"));
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
  const char* usage = request.role == DeviceKeyRole::kIdentity ? "critical,digitalSignature"
                                                               : "critical,keyAgreement";
  SEALDROP_TRY(
      PushExtension(exts.get(), X509V3_EXT_nconf_nid(nullptr, &ctx, NID_key_usage, usage)));
  if (!request.hosts.empty()) {
    SEALDROP_ASSIGN(auto san, pki_internal::MakeSubjectAltName(request.hosts));
    SEALDROP_TRY(PushExtension(exts.get(), san.release()));
  }
  if (X509_REQ_add_extensions(req.get(), exts.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot add the CSR's extensions"));
  if (X509_REQ_sign(req.get(), RawPkey(key), EVP_sha256()) <= 0)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot sign the CSR"));

  UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot encode the CSR"));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<CsrSummary> ReadCsrPem(std::string_view pem) {
  SEALDROP_ASSIGN(auto csr, pki_internal::ParseCsrPem(pem));
  return CsrSummary{.key = csr.key, .common_name = csr.common_name, .serial_number = csr.serial_number};
}

namespace pki_internal {

Result<ParsedCsr> ParseCsrPem(std::string_view pem) {
  SEALDROP_ASSIGN(auto blocks, ParsePemBlocks(pem, "the CSR", kMaxCertDerSize));
  if (blocks.size() != 1)
    return Fail(ErrorCode::kMalformed, "the CSR file holds " + std::to_string(blocks.size()) +
                                           " PEM blocks where exactly one was expected");
  const PemBlock& block = blocks.front();
  if (block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST")
    return Fail(ErrorCode::kMalformed, "the CSR file holds a \"" + Printable(block.label) +
                                           "\" block, not a CERTIFICATE REQUEST");
  const unsigned char* p = block.der.data();
  UniquePtr<X509_REQ> req(d2i_X509_REQ(nullptr, &p, static_cast<long>(block.der.size())));
  if (!req) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the CSR is not a valid DER-encoded PKCS#10 request");
  }
  if (p != block.der.data() + block.der.size())
    return Fail(ErrorCode::kMalformed, "the CSR has trailing bytes after its DER encoding");

  EVP_PKEY* pkey = X509_REQ_get0_pubkey(req.get());
  if (pkey == nullptr) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the CSR's public key cannot be decoded");
  }
  auto key = WrapPublicKey(pkey);
  if (!key) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the CSR's public key is not a P-256 key");
  }
  // Proof that the requester holds the private key; without it anyone could
  // get a certificate for someone else's public key.
  if (X509_REQ_verify(req.get(), pkey) != 1) {
    ERR_clear_error();
    return Fail(
        ErrorCode::kCryptoFailure,
        "the CSR's self-signature does not verify, so it was not made with the key it contains");
  }

  ParsedCsr out{std::move(*key), {}, {}, {}, std::nullopt};
  const X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  if (CountNameEntries(subject, NID_commonName) != 1)
    return Fail(ErrorCode::kMalformed, "the CSR's subject must have exactly one common name");
  if (CountNameEntries(subject, NID_serialNumber) > 1)
    return Fail(ErrorCode::kMalformed, "the CSR's subject has more than one serial number");
  out.common_name = NameEntry(subject, NID_commonName);
  if (auto st = CheckCommonName(out.common_name); !st)
    return Fail(ErrorCode::kMalformed, "in the CSR, " + st.error().message);
  out.serial_number = NameEntry(subject, NID_serialNumber);
  if (!out.serial_number.empty()) {
    if (auto st = CheckDeviceSerial(out.serial_number); !st)
      return Fail(ErrorCode::kMalformed, "in the CSR, " + st.error().message);
  }
  SEALDROP_TRY(ReadRequestedExtensions(req.get(), out));
  return out;
}

}  // namespace pki_internal
}  // namespace sealdrop
