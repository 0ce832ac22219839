// The processor's TPM 2.0, through tpm2-tss (ESAPI), and its keys as
// OpenSSL keys whose private operations run in the TPM. docs/tpm.md has the
// design.
//
// What lives in the TPM (docs/tpm.md section 1):
//   - the storage parent, recreated from the owner seed on every use with
//     the template the tpm2-openssl provider uses for parent TPM2_RH_OWNER
//     (so that tool and this code load the same key files);
//   - the processor's keys, P-256, fixedTPM | fixedParent |
//     sensitiveDataOrigin | userWithAuth, plus exactly sign (identity) or
//     exactly decrypt (key-wrap), created by CreateKey. Outside the TPM a key
//     exists only as a TpmKeyFile: its public area and its private area
//     encrypted by the TPM under the storage parent;
//   - the endorsement key, recreated from the endorsement seed with the TCG
//     default RSA 2048 template, and its certificate in NV (0x01c00002).
//
// TCTI strings are tpm2-tss's: "device:/dev/tpmrm0" on a device,
// "swtpm:host=127.0.0.1,port=2321" for swtpm. Empty means
// kDefaultTcti.
//
// Thread safety: a Tpm is one ESAPI context, for one thread at a time.
// Keys loaded by LoadTpmKey may be used from any thread: they share one
// ESAPI session per TCTI and take its lock for each TPM command.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/ec.h"

namespace sealdrop {

inline constexpr std::string_view kDefaultTcti = "device:/dev/tpmrm0";
// TCG EK Credential Profile: NV index of the RSA 2048 EK certificate.
inline constexpr uint32_t kRsaEkCertNvIndex = 0x01c00002;

enum class TpmKeyRole { kSign, kDecrypt };

// A key the TPM created: what `TSS2 PRIVATE KEY` PEM files hold (the
// format of tpm2-tss-engine and the tpm2-openssl provider).
struct TpmKeyFile {
  uint32_t parent = 0x40000001;  // TPM2_RH_OWNER: the recreated storage parent
  Bytes public_area;             // marshalled TPM2B_PUBLIC
  Bytes private_area;            // marshalled TPM2B_PRIVATE (encrypted by the TPM)

  std::string ToPem() const;
  // Strict: one PEM block of that label, DER exactly as ToPem writes it
  // (emptyAuth true, no policy, no secret), sizes within TPM2B bounds.
  static Result<TpmKeyFile> FromPem(std::string_view pem);
};

// What a TPM2B_PUBLIC says about a key, for the manufacturer CA.
struct TpmPublicInfo {
  bool ecc_p256 = false;
  uint32_t attributes = 0;  // TPMA_OBJECT
  Bytes point;              // uncompressed 65 bytes when ecc_p256
  Bytes name;               // nameAlg (2 bytes, big-endian) || SHA-256(TPMT_PUBLIC); nameAlg must be SHA-256
};
// Parses a marshalled TPM2B_PUBLIC; refuses trailing bytes, a nameAlg other
// than SHA-256, and anything tpm2-tss's unmarshalling refuses.
Result<TpmPublicInfo> ParseTpmPublic(ByteView tpm2b_public);

// The attributes CreateKey sets, and that enrolment requires exactly.
uint32_t TpmKeyAttributes(TpmKeyRole role);

class Tpm;
namespace tpm_internal {
// For tests of enrolment (tpm/enrol.h): the attack it must withstand. Loads
// only a public area (TPM2_LoadExternal, null hierarchy), as for a key that
// claims to be in the TPM but is not, and asks for the credential with it.
Result<SecretBytes> ActivateWithPublicOnly(Tpm& tpm, ByteView tpm2b_public, ByteView credential_blob,
                                           ByteView encrypted_secret);
}  // namespace tpm_internal

class Tpm {
 public:
  // Connects (TCTI loader) and checks the TPM answers. Fails with
  // kUnavailable and the TCTI's reason when it does not.
  static Result<Tpm> Open(std::string_view tcti);
  Tpm(Tpm&&) noexcept;
  Tpm& operator=(Tpm&&) noexcept;
  ~Tpm();

  // The EK certificate the maker stored in NV, as DER. kNotFound if the
  // index is not defined.
  Result<Bytes> ReadEkCertificate();
  // The EK's public key (recreated from the endorsement seed) as SPKI DER;
  // equals the certificate's key on a genuine TPM.
  Result<Bytes> EkPublicKeyDer();

  // A new key under the storage parent (docs/tpm.md section 1).
  Result<TpmKeyFile> CreateKey(TpmKeyRole role);
  // Loads `key` under the storage parent and unloads it: kCryptoFailure if
  // this TPM did not make it, was cleared since, or the file was altered.
  Status CheckKey(const TpmKeyFile& key);

  // TPM2_ActivateCredential: loads `key` under the storage parent, recreates
  // the EK and releases the credential's secret if, and only if, the
  // credential names `key` and was made for this TPM's EK. Fails with
  // kCryptoFailure when the TPM refuses it.
  Result<SecretBytes> ActivateCredential(const TpmKeyFile& key, ByteView credential_blob,
                                         ByteView encrypted_secret);

  struct Impl;

 private:
  explicit Tpm(std::unique_ptr<Impl> impl);
  friend Result<SecretBytes> tpm_internal::ActivateWithPublicOnly(Tpm&, ByteView, ByteView, ByteView);
  std::unique_ptr<Impl> impl_;
};

// Loads a key file into the TPM behind `tcti` and returns it as an
// EcPrivateKey whose private operations run there: ECDSA signatures
// (TPM2_Sign over the digest, so also the inner TLS handshake's
// CertificateVerify) and ECDH (TPM2_ECDH_ZGen, so the HPKE unwrap). The key
// stays loaded in the TPM while any copy of the EcPrivateKey lives, and
// holds one of the TPM's object slots. Fails with kCryptoFailure if the TPM
// cannot load the key (another TPM made it, or it was cleared since).
Result<EcPrivateKey> LoadTpmKey(const TpmKeyFile& key, std::string_view tcti);

}  // namespace sealdrop
