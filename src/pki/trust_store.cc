// Chain verification: OpenSSL's X509_STORE does the path building,
// signatures, validity periods and CRL checks; this file adds sealdrop's
// profiles, the per-issuer CRL rule, and turns OpenSSL's error codes into
// sentences.
#include <openssl/pem.h>

#include <algorithm>
#include <optional>
#include <tuple>

#include "pki/pki_internal.h"

namespace sealdrop {
namespace {

using pki_internal::FormatUtc;
using pki_internal::FromAsn1Time;
using pki_internal::KeyUsageOf;
using pki_internal::NameEntry;

struct X509StackDeleter {
  void operator()(STACK_OF(X509) * p) const { sk_X509_free(p); }  // entries are borrowed
};
struct CrlStackDeleter {
  void operator()(STACK_OF(X509_CRL) * p) const { sk_X509_CRL_free(p); }  // entries are borrowed
};

// Ordered by how much the reason tells the reader: a chain from an unknown CA
// is untrusted whatever its dates say, and a revoked certificate matters more
// than an expired one.
enum class Reason {
  kChainTooLong,
  kUntrustedIssuer,
  kRevoked,
  kExpired,
  kNotYetValid,
  kCrlProblem,
  kWrongProfile,
  kOther,
};

struct ChainProblem {
  Reason reason;
  std::string message;
  int depth = 0;  // 0 = the leaf; ties go to the certificate nearest the leaf
};

struct VerifyState {
  const TrustStore::Impl* store;
  CertProfile profile;
  std::vector<ChainProblem> problems;
};

bool HasCrlFor(const TrustStore::Impl& store, const X509_NAME* issuer) {
  return std::any_of(store.crls.begin(), store.crls.end(), [&](const UniquePtr<X509_CRL>& crl) {
    return X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), issuer) == 0;
  });
}

bool HasRootNamed(const TrustStore::Impl& store, const X509_NAME* name) {
  return std::any_of(store.roots.begin(), store.roots.end(), [&](const Certificate& root) {
    return X509_NAME_cmp(X509_get_subject_name(RawX509(root)), name) == 0;
  });
}

// Names come from untrusted certificates: cut short and kept printable so
// they cannot forge log lines.
std::string Quoted(std::string_view s) { return "\"" + pki_internal::Printable(s) + "\""; }

std::string NameOf(const X509_NAME* name) {
  std::string cn = NameEntry(name, NID_commonName);
  return cn.empty() ? "(a CA without a common name)" : Quoted(cn);
}

std::string SubjectOf(const X509* cert) {
  return NameOf(cert ? X509_get_subject_name(cert) : nullptr);
}

const char* CaKind(CertProfile profile) {
  return profile == CertProfile::kDevice ? "manufacturer CA" : "vendor CA";
}

std::string NotTrusted(const VerifyState& state, std::string_view why) {
  return std::string("the certificate is not issued by a trusted ") + CaKind(state.profile) + " (" +
         std::string(why) + ")";
}

std::string CrlProblem(const X509_NAME* issuer, std::string_view what) {
  return std::string(kCrlProblemPrefix) + ": the CRL of " + NameOf(issuer) + " " +
         std::string(what);
}

ChainProblem Classify(const VerifyState& state, int error, int depth, X509* cert) {
  const X509_NAME* issuer = cert ? X509_get_issuer_name(cert) : nullptr;
  // The required sentences name "the certificate" for the leaf; a CA above
  // it is named so the reader knows which one to replace.
  std::string subject = depth == 0 ? "the certificate" : "the CA certificate " + SubjectOf(cert);
  switch (error) {
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
      return {Reason::kChainTooLong, "the certificate chain is too long (at most " +
                                         std::to_string(kMaxChainLength) +
                                         " certificates are allowed)"};

    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return {Reason::kUntrustedIssuer, NotTrusted(state, "it is self-signed")};
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return {Reason::kUntrustedIssuer,
              NotTrusted(state, "its chain ends in the unknown root " + SubjectOf(cert))};
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      if (issuer != nullptr && HasRootNamed(*state.store, issuer))
        return {Reason::kUntrustedIssuer,
                NotTrusted(state, "it names the trusted root " + NameOf(issuer) +
                                      " as its issuer, but that root's key did not sign it")};
      return {Reason::kUntrustedIssuer,
              NotTrusted(state, "its issuer " + NameOf(issuer) + " is not a trusted root")};
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
      return {Reason::kUntrustedIssuer,
              NotTrusted(state, "the signature on " + subject + " does not match the key of " +
                                    NameOf(issuer))};
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
      return {Reason::kUntrustedIssuer,
              NotTrusted(state, SubjectOf(cert) + " is not allowed to issue certificates")};
    case X509_V_ERR_INVALID_PURPOSE:
      if (depth > 0)
        return {Reason::kUntrustedIssuer,
                NotTrusted(state,
                           SubjectOf(cert) + " is not allowed to issue this kind of certificate")};
      return {Reason::kWrongProfile,
              std::string("the certificate has the wrong profile/key usage: it is not valid for ") +
                  (state.profile == CertProfile::kDevice ? "a device" : "a server")};

    case X509_V_ERR_CERT_REVOKED:
      return {Reason::kRevoked, subject + " was revoked (serial " +
                                    (cert ? pki_internal::SerialHexOf(cert) : "?") + ")"};

    case X509_V_ERR_CERT_HAS_EXPIRED:
      return {Reason::kExpired,
              subject + " has expired (it was valid until " +
                  FormatUtc(FromAsn1Time(cert ? X509_get0_notAfter(cert) : nullptr)) + ")"};
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return {Reason::kNotYetValid,
              subject + " is not yet valid (it becomes valid on " +
                  FormatUtc(FromAsn1Time(cert ? X509_get0_notBefore(cert) : nullptr)) + ")"};

    case X509_V_ERR_UNABLE_TO_GET_CRL:
      return {Reason::kCrlProblem, CrlProblem(issuer, "that is loaded does not apply to it")};
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return {Reason::kCrlProblem,
              CrlProblem(issuer, "has expired; load a fresh CRL from that CA (sealdrop-ca crl)")};
    case X509_V_ERR_CRL_NOT_YET_VALID:
      return {Reason::kCrlProblem, CrlProblem(issuer, "is not yet valid")};
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
      return {Reason::kCrlProblem,
              CrlProblem(issuer, std::string("cannot be used (") +
                                     X509_verify_cert_error_string(error) + ")")};
    default:
      return {Reason::kOther,
              subject + " is not acceptable (" + X509_verify_cert_error_string(error) + ")"};
  }
}

int VerifyCallback(int ok, X509_STORE_CTX* ctx) {
  if (ok) return 1;
  auto* state = static_cast<VerifyState*>(X509_STORE_CTX_get_app_data(ctx));
  if (state == nullptr) return 0;
  int error = X509_STORE_CTX_get_error(ctx);
  X509* cert = X509_STORE_CTX_get_current_cert(ctx);
  // CRL checking is on for the whole chain, but only issuers with a CRL
  // loaded can be held to it; see TrustStore in cert.h.
  if (error == X509_V_ERR_UNABLE_TO_GET_CRL && cert != nullptr &&
      !HasCrlFor(*state->store, X509_get_issuer_name(cert)))
    return 1;
  int depth = X509_STORE_CTX_get_error_depth(ctx);
  ChainProblem problem = Classify(*state, error, depth, cert);
  problem.depth = depth;
  state->problems.push_back(std::move(problem));
  // Carry on: Verify fails if anything was recorded, and seeing every
  // problem lets it name the most telling one rather than the first found.
  return 1;
}

std::string ExpectedKind(CertProfile profile, DeviceKeyRole role) {
  if (profile == CertProfile::kServer) return "a server certificate";
  return role == DeviceKeyRole::kIdentity ? "a device identity certificate"
                                          : "a device key-wrap certificate";
}

std::string DescribeKind(X509* x) {
  uint32_t flags = X509_get_extension_flags(x);
  if (flags & EXFLAG_CA) return "a CA certificate";
  uint32_t xku = (flags & EXFLAG_XKUSAGE) ? X509_get_extended_key_usage(x) : 0;
  auto ku = KeyUsageOf(x);
  if (xku == XKU_SSL_SERVER) return "a server certificate";
  if (xku == XKU_SSL_CLIENT && ku == KU_DIGITAL_SIGNATURE) return "a device identity certificate";
  if (xku == XKU_SSL_CLIENT && ku == KU_KEY_AGREEMENT) return "a device key-wrap certificate";
  return "a certificate without a sealdrop profile";
}

bool HasSubjectAltName(X509* x) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  bool has = names != nullptr && sk_GENERAL_NAME_num(names) > 0;
  GENERAL_NAMES_free(names);
  ERR_clear_error();
  return has;
}

// The profile rules of cert.h, checked on the leaf whatever OpenSSL's purpose
// check allowed (it accepts certificates without extendedKeyUsage, for one).
std::optional<std::string> ProfileMismatch(X509* x, CertProfile profile, DeviceKeyRole role) {
  const std::string prefix = "the certificate has the wrong profile/key usage: ";
  std::string expected = ExpectedKind(profile, role);
  std::string actual = DescribeKind(x);
  if (actual != expected) return prefix + "expected " + expected + ", got " + actual;
  uint32_t flags = X509_get_extension_flags(x);
  if ((flags & EXFLAG_BCONS) == 0) return prefix + "it lacks basicConstraints CA:FALSE";
  if (profile == CertProfile::kDevice) {
    std::string serial = NameEntry(X509_get_subject_name(x), NID_serialNumber);
    if (!pki_internal::CheckDeviceSerial(serial))
      return prefix + "a device certificate must carry a valid device serial in its subject";
  } else if (!HasSubjectAltName(x)) {
    return prefix + "a server certificate must name its hosts in subjectAltName";
  }
  return std::nullopt;
}

// Replaces OpenSSL's check_crl, which verifies the CRL's signature at every
// chain verification (an eighth of the server's CPU per purchase). AddCrlPem
// verified each CRL against its root once, and neither changes afterwards:
// when the issuer in this chain is the very root that verified it, the
// signature is not checked again; any other pairing is checked in full. The
// rest is what OpenSSL's check_crl and check_crl_time do for the complete,
// direct CRLs that AddCrlPem accepts: the issuer may sign CRLs, and the CRL
// is current at the verification time.
int CheckCrl(X509_STORE_CTX* ctx, X509_CRL* crl) {
  auto* state = static_cast<VerifyState*>(X509_STORE_CTX_get_app_data(ctx));
  auto report = [ctx](int error) {
    X509_STORE_CTX_set_error(ctx, error);
    X509_STORE_CTX_verify_cb callback = X509_STORE_CTX_get_verify_cb(ctx);
    return callback != nullptr && callback(0, ctx) == 1;
  };
  X509* issuer = X509_STORE_CTX_get0_current_issuer(ctx);
  if (issuer == nullptr) {
    // As OpenSSL's check_crl: the next certificate up the chain, or a
    // self-signed last one itself.
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
    int depth = X509_STORE_CTX_get_error_depth(ctx);
    int length = chain != nullptr ? sk_X509_num(chain) : 0;
    if (depth + 1 < length) {
      issuer = sk_X509_value(chain, depth + 1);
    } else if (depth < length && X509_self_signed(sk_X509_value(chain, depth), 0) == 1) {
      issuer = sk_X509_value(chain, depth);
    }
  }
  if (issuer == nullptr) return report(X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER) ? 1 : 0;
  if ((X509_get_extension_flags(issuer) & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(issuer) & KU_CRL_SIGN) == 0 &&
      !report(X509_V_ERR_KEYUSAGE_NO_CRL_SIGN))
    return 0;
  bool verified_at_load = false;
  if (state != nullptr)
    for (size_t i = 0; i < state->store->crls.size() && !verified_at_load; ++i)
      verified_at_load = state->store->crls[i].get() == crl &&
                         X509_cmp(RawX509(state->store->crl_signers[i]), issuer) == 0;
  if (!verified_at_load) {
    EVP_PKEY* key = X509_get0_pubkey(issuer);
    if (key == nullptr) {
      if (!report(X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY)) return 0;
    } else if (X509_CRL_verify(crl, key) <= 0) {
      ERR_clear_error();
      if (!report(X509_V_ERR_CRL_SIGNATURE_FAILURE)) return 0;
    }
  }
  time_t now = X509_VERIFY_PARAM_get_time(X509_STORE_CTX_get0_param(ctx));
  int cmp = X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &now);
  if (cmp == 0 && !report(X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD)) return 0;
  if (cmp > 0 && !report(X509_V_ERR_CRL_NOT_YET_VALID)) return 0;
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl)) {
    cmp = X509_cmp_time(next, &now);
    if (cmp == 0 && !report(X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD)) return 0;
    if (cmp < 0 && !report(X509_V_ERR_CRL_HAS_EXPIRED)) return 0;
  }
  return 1;
}

}  // namespace

TrustStore::TrustStore() : impl_(std::make_shared<Impl>()) {
  impl_->store.reset(X509_STORE_new());
  if (impl_->store) X509_STORE_set_check_crl(impl_->store.get(), CheckCrl);
}

Status TrustStore::AddRootsPem(std::string_view pem) {
  if (!impl_->store)
    return std::unexpected(OsslError(ErrorCode::kInternal, "X509_STORE_new failed"));
  SEALDROP_ASSIGN(auto certs, Certificate::AllFromPem(pem));
  // Check all before adding any, so a bad bundle leaves the store as it was.
  for (const Certificate& cert : certs) {
    if (!cert.IsCa())
      return Fail(ErrorCode::kInvalidArgument,
                  "the certificate " + Quoted(cert.SubjectCommonName()) +
                      " is not a CA certificate, so it cannot be a trust anchor");
    if (X509_self_signed(RawX509(cert), 1) != 1) {
      ERR_clear_error();
      return Fail(ErrorCode::kInvalidArgument,
                  "the certificate " + Quoted(cert.SubjectCommonName()) +
                      " is not a self-signed root, so it cannot be a trust anchor");
    }
  }
  for (const Certificate& cert : certs) {
    bool known = std::any_of(impl_->roots.begin(), impl_->roots.end(), [&](const Certificate& r) {
      return X509_cmp(RawX509(r), RawX509(cert)) == 0;
    });
    if (known) continue;
    if (X509_STORE_add_cert(impl_->store.get(), RawX509(cert)) != 1)
      return std::unexpected(OsslError(ErrorCode::kInternal, "X509_STORE_add_cert failed"));
    impl_->roots.push_back(cert);
  }
  return Ok();
}

Status TrustStore::AddCrlPem(std::string_view pem) {
  SEALDROP_ASSIGN(auto blocks, pki_internal::ParsePemBlocks(pem, "the CRL", kMaxPemFileSize));
  if (blocks.size() != 1 || blocks.front().label != "X509 CRL")
    return Fail(ErrorCode::kMalformed, "the CRL file must hold exactly one \"X509 CRL\" PEM block");
  const Bytes& der = blocks.front().der;
  const unsigned char* p = der.data();
  UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "the CRL is not a valid DER-encoded X.509 CRL");
  }
  if (p != der.data() + der.size())
    return Fail(ErrorCode::kMalformed, "the CRL has trailing bytes after its DER encoding");

  // CheckCrl below trusts the signature checked here for the whole life of
  // the store, so a CRL whose meaning it does not fully check (a partial or
  // indirect scope, a delta, an unknown critical extension) is refused here.
  for (int i = 0; i < X509_CRL_get_ext_count(crl.get()); ++i) {
    X509_EXTENSION* ext = X509_CRL_get_ext(crl.get(), i);
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    if (nid == NID_issuing_distribution_point || nid == NID_delta_crl ||
        (X509_EXTENSION_get_critical(ext) && nid != NID_crl_number && nid != NID_authority_key_identifier))
      return Fail(ErrorCode::kInvalidArgument,
                  "the CRL of " + NameOf(X509_CRL_get_issuer(crl.get())) +
                      " has an extension sealdrop does not support (a distribution point scope, a delta CRL or "
                      "an unknown critical extension); issue a complete CRL with sealdrop-ca crl");
  }
  const X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
  auto signer = std::find_if(impl_->roots.begin(), impl_->roots.end(), [&](const Certificate& r) {
    return X509_NAME_cmp(X509_get_subject_name(RawX509(r)), issuer) == 0 &&
           X509_CRL_verify(crl.get(), X509_get0_pubkey(RawX509(r))) == 1;
  });
  ERR_clear_error();
  const bool signed_by_root = signer != impl_->roots.end();
  if (!signed_by_root)
    return Fail(ErrorCode::kInvalidArgument,
                "the CRL of " + NameOf(issuer) +
                    " is not signed by any trusted root; add that CA's root certificate first");

  for (size_t i = 0; i < impl_->crls.size(); ++i) {
    auto& existing = impl_->crls[i];
    if (X509_NAME_cmp(X509_CRL_get_issuer(existing.get()), issuer) != 0) continue;
    // Keep only the newest, so an old CRL loaded later cannot hide a
    // revocation that a newer one lists.
    if (ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl.get()),
                          X509_CRL_get0_lastUpdate(existing.get())) >= 0) {
      existing = std::move(crl);
      impl_->crl_signers[i] = *signer;
    }
    return Ok();
  }
  impl_->crls.push_back(std::move(crl));
  impl_->crl_signers.push_back(*signer);
  return Ok();
}

size_t TrustStore::root_count() const { return impl_->roots.size(); }

std::vector<TrustStore::CrlStatus> TrustStore::Crls() const {
  std::vector<CrlStatus> out;
  for (const auto& crl : impl_->crls) {
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
    out.push_back({pki_internal::Printable(NameEntry(X509_CRL_get_issuer(crl.get()), NID_commonName)),
                   next ? FromAsn1Time(next) : std::chrono::system_clock::time_point::max()});
  }
  return out;
}

Result<VerifiedLeaf> TrustStore::Verify(const std::vector<Certificate>& chain, CertProfile profile,
                                        DeviceKeyRole role,
                                        std::chrono::system_clock::time_point now) const {
  if (chain.empty()) return Fail(ErrorCode::kUntrustedPeer, "no certificate was presented");
  if (chain.size() > kMaxChainLength)
    return Fail(ErrorCode::kUntrustedPeer,
                "the certificate chain is too long (" + std::to_string(chain.size()) +
                    " certificates, at most " + std::to_string(kMaxChainLength) + " are allowed)");
  if (!impl_->store)
    return std::unexpected(OsslError(ErrorCode::kInternal, "X509_STORE_new failed"));

  std::unique_ptr<STACK_OF(X509), X509StackDeleter> untrusted(sk_X509_new_null());
  std::unique_ptr<STACK_OF(X509_CRL), CrlStackDeleter> crls(sk_X509_CRL_new_null());
  if (!untrusted || !crls)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot allocate a stack"));
  for (size_t i = 1; i < chain.size(); ++i)
    if (sk_X509_push(untrusted.get(), RawX509(chain[i])) <= 0)
      return std::unexpected(OsslError(ErrorCode::kInternal, "sk_X509_push failed"));
  for (const auto& crl : impl_->crls)
    if (sk_X509_CRL_push(crls.get(), crl.get()) <= 0)
      return std::unexpected(OsslError(ErrorCode::kInternal, "sk_X509_CRL_push failed"));

  // Declared after the stacks it borrows, so it is freed first.
  UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!ctx ||
      X509_STORE_CTX_init(ctx.get(), impl_->store.get(), RawX509(chain[0]), untrusted.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "X509_STORE_CTX_init failed"));
  X509_STORE_CTX_set0_crls(ctx.get(), crls.get());

  VerifyState state{impl_.get(), profile, {}};
  X509_STORE_CTX_set_app_data(ctx.get(), &state);
  X509_STORE_CTX_set_verify_cb(ctx.get(), VerifyCallback);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // OpenSSL's depth counts neither the leaf nor the root.
  X509_VERIFY_PARAM_set_depth(param, static_cast<int>(kMaxChainLength) - 2);
  X509_VERIFY_PARAM_set_purpose(
      param, profile == CertProfile::kDevice ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER);
  unsigned long flags = X509_V_FLAG_X509_STRICT;
  if (!impl_->crls.empty()) flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
  X509_VERIFY_PARAM_set_flags(param, flags);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));

  int rc = X509_verify_cert(ctx.get());
  int final_error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();

  STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
  if (built != nullptr && static_cast<size_t>(sk_X509_num(built)) > kMaxChainLength)
    state.problems.push_back(Classify(state, X509_V_ERR_CERT_CHAIN_TOO_LONG, 0, nullptr));
  // First, so that its more precise sentence wins over OpenSSL's purpose error.
  if (auto mismatch = ProfileMismatch(RawX509(chain[0]), profile, role))
    state.problems.insert(state.problems.begin(), {Reason::kWrongProfile, *mismatch});

  if (!state.problems.empty()) {
    auto worst =
        std::min_element(state.problems.begin(), state.problems.end(),
                         [](const ChainProblem& a, const ChainProblem& b) {
                           return std::tie(a.reason, a.depth) < std::tie(b.reason, b.depth);
                         });
    return Fail(ErrorCode::kUntrustedPeer, worst->message);
  }
  if (rc != 1)
    return Fail(ErrorCode::kUntrustedPeer, std::string("the certificate chain did not verify (") +
                                               X509_verify_cert_error_string(final_error) + ")");
  return VerifiedLeaf{
      chain[0], profile == CertProfile::kDevice ? chain[0].SubjectSerialNumber() : std::string()};
}

}  // namespace sealdrop
