// OpenSSL plumbing shared by sealdrop's own .cc files (crypto, pki,
// protocol). Never include this from a public header: the project's headers
// carry no OpenSSL types.
//
// Every OpenSSL object has an owner: UniquePtr<T> with a per-type deleter
// (after bssl::UniquePtr).
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "crypto/ec.h"

namespace sealdrop {

template <typename T>
struct OsslDeleter;
#define SEALDROP_OSSL_DELETER(T, fn) \
  template <>                        \
  struct OsslDeleter<T> {            \
    void operator()(T* p) const { fn(p); } \
  };
SEALDROP_OSSL_DELETER(EVP_PKEY, EVP_PKEY_free)
SEALDROP_OSSL_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
SEALDROP_OSSL_DELETER(EVP_MD_CTX, EVP_MD_CTX_free)
SEALDROP_OSSL_DELETER(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
SEALDROP_OSSL_DELETER(EVP_KDF_CTX, EVP_KDF_CTX_free)
SEALDROP_OSSL_DELETER(BIO, BIO_free_all)
SEALDROP_OSSL_DELETER(X509, X509_free)
SEALDROP_OSSL_DELETER(X509_REQ, X509_REQ_free)
SEALDROP_OSSL_DELETER(X509_CRL, X509_CRL_free)
SEALDROP_OSSL_DELETER(X509_STORE, X509_STORE_free)
SEALDROP_OSSL_DELETER(X509_STORE_CTX, X509_STORE_CTX_free)
SEALDROP_OSSL_DELETER(X509_NAME, X509_NAME_free)
SEALDROP_OSSL_DELETER(X509_EXTENSION, X509_EXTENSION_free)
// ASN1_INTEGER, ASN1_TIME and the other ASN1 string types are all typedefs of
// one struct, so one deleter serves UniquePtr<ASN1_INTEGER> and friends.
SEALDROP_OSSL_DELETER(ASN1_STRING, ASN1_STRING_free)
SEALDROP_OSSL_DELETER(BIGNUM, BN_free)
SEALDROP_OSSL_DELETER(ASN1_OBJECT, ASN1_OBJECT_free)
SEALDROP_OSSL_DELETER(ECDSA_SIG, ECDSA_SIG_free)
SEALDROP_OSSL_DELETER(SSL_CTX, SSL_CTX_free)
SEALDROP_OSSL_DELETER(SSL, SSL_free)
SEALDROP_OSSL_DELETER(OSSL_PARAM_BLD, OSSL_PARAM_BLD_free)
SEALDROP_OSSL_DELETER(OSSL_PARAM, OSSL_PARAM_free)
#undef SEALDROP_OSSL_DELETER

template <typename T>
using UniquePtr = std::unique_ptr<T, OsslDeleter<T>>;

// The OpenSSL error queue as one line, for local logs (and clears it).
std::string OsslErrorString();
// An Error of `code` whose message is `what` plus the OpenSSL error queue.
Error OsslError(ErrorCode code, std::string_view what);
// Prints `what` and the OpenSSL error queue to stderr and aborts. Only for
// failures that nothing but memory exhaustion or a broken OpenSSL install can
// cause, in functions whose contract has no error path (Sha256Of, ToPem, ...).
[[noreturn]] void OsslFatal(std::string_view what);

struct EcPublicKey::Impl {
  UniquePtr<EVP_PKEY> pkey;
  Bytes point;  // uncompressed, 65 bytes
};
struct EcPrivateKey::Impl {
  UniquePtr<EVP_PKEY> pkey;
  std::optional<EcPublicKey> public_key;  // derived once, when the key is loaded
};

// Wraps an EVP_PKEY without taking ownership: the caller keeps (and frees) its
// own reference. Fails unless the key is EC on P-256 and passes OpenSSL's key
// check. WrapPublicKey re-encodes the point into a fresh public-only key, so an
// EcPublicKey never holds a private scalar and its DER (and KeyId) is the same
// whether the input point was compressed or not.
Result<EcPublicKey> WrapPublicKey(EVP_PKEY* pkey);
Result<EcPrivateKey> WrapPrivateKey(EVP_PKEY* pkey);
// A private key held by hardware (tpm/tpm.h: an EC_KEY whose method runs
// ECDSA and ECDH in the TPM): P-256 and a valid public point are checked;
// the private half cannot be. `point` is the key's public point (uncompressed)
// as the hardware reports it.
Result<EcPrivateKey> WrapHardwarePrivateKey(EVP_PKEY* pkey, ByteView point);

inline EVP_PKEY* RawPkey(const EcPublicKey& key) { return key.impl().pkey.get(); }
inline EVP_PKEY* RawPkey(const EcPrivateKey& key) { return key.impl().pkey.get(); }

// One PEM block with this label ("CERTIFICATE", "PUBLIC KEY"); empty only if
// memory ran out, which makes callers fail loudly.
std::string EncodePem(std::string_view label, ByteView der);

}  // namespace sealdrop
