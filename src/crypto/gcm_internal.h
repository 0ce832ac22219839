// Single-shot AES-GCM with a 128- or 256-bit key, for HPKE only.
//
// HPKE's production suite uses AES-256-GCM, but the RFC 9180 test vectors that
// share our KEM and KDF use AES-128-GCM, so HPKE needs both sizes. Everything
// else uses Aes256Gcm / Aes256GcmRaw (aead.h). The key size picks the cipher;
// the nonce is 12 bytes and the tag 16, appended to the ciphertext.
#pragma once

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop::gcm_internal {

// Returns ciphertext || tag. kInvalidArgument for a bad key or nonce size.
Result<Bytes> Seal(const SecretBytes& key, ByteView nonce, ByteView aad, ByteView plaintext);
// kCryptoFailure, with no detail and no partial output, for any failure.
Result<SecretBytes> Open(const SecretBytes& key, ByteView nonce, ByteView aad,
                         ByteView ciphertext_and_tag);

}  // namespace sealdrop::gcm_internal
