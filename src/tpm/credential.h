// TPM2_MakeCredential in software, for the manufacturer CA (docs/tpm.md
// section 3): a secret that only the TPM holding a given EK can release,
// and only while the object with a given name is loaded in it
// (TPM2_ActivateCredential, Tpm::ActivateCredential).
//
// The algorithm is TPM 2.0 Part 1's (sections 24 "Credential Protection"
// and 11.4.10 "Key Derivation Function"), for an RSA 2048 EK with nameAlg
// SHA-256 and AES-128-CFB symmetric parameters (the TCG default EK template
// L-1), composed from OpenSSL primitives:
//   seed        = 32 random bytes
//   enc_secret  = RSA-OAEP(EK, seed; SHA-256, MGF1-SHA-256, label "IDENTITY\0")
//   sym_key     = KDFa(SHA-256, seed, "STORAGE", name, "", 128)
//   enc_cred    = AES-128-CFB(sym_key, iv = 0, u16(len) || secret)
//   hmac_key    = KDFa(SHA-256, seed, "INTEGRITY", "", "", 256)
//   outer_hmac  = HMAC-SHA-256(hmac_key, enc_cred || name)
//   id_object   = TPM2B( TPM2B(outer_hmac) || enc_cred )
// KDFa is SP 800-108 counter mode with HMAC (OpenSSL's KBKDF).
//
// Thread safety: stateless.
#pragma once

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

struct TpmCredential {
  Bytes id_object;         // marshalled TPM2B_ID_OBJECT
  Bytes encrypted_secret;  // marshalled TPM2B_ENCRYPTED_SECRET
};

// `ek_spki_der`: the EK's public key (RSA 2048, from its certificate);
// `object_name`: the TPM name of the key the credential is for (nameAlg
// SHA-256, 34 bytes); `secret`: 1 to 32 bytes. Fails with kInvalidArgument
// for another key type or size, a malformed name or secret.
Result<TpmCredential> MakeTpmCredential(ByteView ek_spki_der, ByteView object_name, const SecretBytes& secret);

}  // namespace sealdrop
