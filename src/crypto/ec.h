// ECDSA / ECDH keys on NIST P-256 (the only curve sealdrop uses).
//
// EcPrivateKey signs (ES256: SHA-256, signature as the fixed-size 64-byte
// r || s that JWS uses) and is the recipient key for HPKE's DHKEM(P-256).
// Its private part leaves the object only through ToPkcs8Pem(), which returns
// SecretBytes. EcPublicKey verifies and is the HPKE recipient public key.
//
// Key id: KeyId() is the hex SHA-256 of the DER SubjectPublicKeyInfo; it names
// keys in JWS `kid`, manifests and certificates' consumers.
//
// Thread safety: both types are immutable after creation and may be shared
// between threads (OpenSSL EVP_PKEY operations on a const key are safe).
#pragma once

#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

inline constexpr size_t kEs256SignatureSize = 64;
inline constexpr size_t kP256PointSize = 65;  // uncompressed, 0x04 || X || Y

class EcPublicKey {
 public:
  static Result<EcPublicKey> FromPem(std::string_view pem);
  static Result<EcPublicKey> FromSpkiDer(ByteView der);
  // Uncompressed SEC1 point (65 bytes), as HPKE's SerializePublicKey.
  static Result<EcPublicKey> FromPoint(ByteView point);

  std::string ToPem() const;
  Bytes ToSpkiDer() const;
  Bytes ToPoint() const;
  std::string KeyId() const;

  // Verifies a 64-byte r || s ES256 signature over message.
  Status Verify(ByteView message, ByteView signature) const;

  bool operator==(const EcPublicKey& other) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }
  explicit EcPublicKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const Impl> impl_;
};

class EcPrivateKey {
 public:
  static Result<EcPrivateKey> Generate();
  static Result<EcPrivateKey> FromPkcs8Pem(const SecretBytes& pem);
  // Raw 32-byte scalar, as HPKE's DeserializePrivateKey (test vectors).
  static Result<EcPrivateKey> FromScalar(const SecretBytes& scalar);

  SecretBytes ToPkcs8Pem() const;
  EcPublicKey PublicKey() const;

  // ES256 signature: 64 bytes r || s.
  Result<Bytes> Sign(ByteView message) const;
  // Raw ECDH shared secret (the X coordinate) with peer.
  Result<SecretBytes> Ecdh(const EcPublicKey& peer) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }
  explicit EcPrivateKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace sealdrop
