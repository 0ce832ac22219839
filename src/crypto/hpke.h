// HPKE (RFC 9180), base mode, single-shot, one fixed suite:
//   KEM  DHKEM(P-256, HKDF-SHA256)   kem_id  0x0010
//   KDF  HKDF-SHA256                 kdf_id  0x0001
//   AEAD AES-256-GCM                 aead_id 0x0002
// Used to wrap a package's content key Kx to a processor's key-wrap key.
// Built on OpenSSL 3.0 primitives (ECDH, HKDF, AES-GCM) and checked against
// the RFC's test vectors.
//
// Thread safety: stateless functions.
#pragma once

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/ec.h"

namespace sealdrop {

inline constexpr char kHpkeSuiteName[] = "HPKE-P256-SHA256-A256GCM";

struct HpkeSealed {
  Bytes enc;         // the encapsulated key, 65 bytes
  Bytes ciphertext;  // AEAD ciphertext || tag
};

Result<HpkeSealed> HpkeSeal(const EcPublicKey& recipient, ByteView info, ByteView aad,
                            const SecretBytes& plaintext);
// Fails with kCryptoFailure, without detail, for any bad input.
Result<SecretBytes> HpkeOpen(const EcPrivateKey& recipient, ByteView enc, ByteView info,
                             ByteView aad, ByteView ciphertext);

namespace hpke_internal {
// For the RFC 9180 test vectors only: the AEAD is selectable (0x0001
// AES-128-GCM or 0x0002 AES-256-GCM) and the ephemeral key is given.
Result<HpkeSealed> SealWithEphemeral(uint16_t aead_id, const EcPublicKey& recipient,
                                     const EcPrivateKey& ephemeral, ByteView info,
                                     ByteView aad, const SecretBytes& plaintext);
Result<SecretBytes> Open(uint16_t aead_id, const EcPrivateKey& recipient, ByteView enc,
                         ByteView info, ByteView aad, ByteView ciphertext);
}  // namespace hpke_internal

}  // namespace sealdrop
