// Enrolment of a TPM-backed processor with its manufacturer CA: the
// processor's keys are certified only once credential activation has shown
// they are loaded in the TPM whose EK certificate a trusted TPM maker signed
// (docs/tpm.md section 3).
//
// Three JSON documents travel between the processor and the CA (each at most
// kMaxEnrolDocument bytes, unknown fields refused):
//   request   {"format":"sealdrop-tpm-enrol-request-1", "serial",
//              "ek_certificate": base64url DER,
//              "identity_public", "keywrap_public": base64url TPM2B_PUBLIC}
//   challenge {"format":"sealdrop-tpm-enrol-challenge-1", "enrolment": 32 hex,
//              "serial", "identity": {"id_object", "encrypted_secret"},
//              "keywrap": {...}}                    (base64url TPM2B values)
//   response  {"format":"sealdrop-tpm-enrol-response-1", "enrolment",
//              "identity_secret", "keywrap_secret"}  (base64url)
//
// The CA keeps each open enrolment in DIR/pending/ENROLMENT.json (the serial,
// the two public keys, the EK certificate's hash and the SHA-256 of each
// secret, never the secrets) for kEnrolPendingLifetime; finishing one removes
// it before issuing, so a response is accepted once.
//
// No CSR: the key-wrap key can only decrypt (no TPM2_Sign), and activation
// proves possession of both keys more strongly than a self-signature would.
// The CA sets the certificates' names itself.
//
// Thread safety: functions are independent; the CA directory's own lock
// serialises issuing.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "base/bytes.h"
#include "base/error.h"
#include "tpm/tpm.h"

namespace sealdrop {

inline constexpr size_t kMaxEnrolDocument = 64 * 1024;
inline constexpr std::chrono::hours kEnrolPendingLifetime{24};

// --- the processor's side (needs its TPM) ---

// Reads the EK certificate from `tpm` and writes the request for the two keys.
Result<std::string> MakeTpmEnrolRequest(Tpm& tpm, std::string_view serial, const TpmKeyFile& identity,
                                        const TpmKeyFile& keywrap);

// Activates both credentials of `challenge_json` in `tpm` and writes the
// response. Refuses a challenge for another serial (kInvalidArgument) and
// fails with kCryptoFailure if the TPM will not release a secret.
Result<std::string> AnswerTpmEnrolChallenge(Tpm& tpm, std::string_view serial, const TpmKeyFile& identity,
                                            const TpmKeyFile& keywrap, std::string_view challenge_json);

// --- the manufacturer CA's side (no TPM needed) ---

struct TpmEnrolChallenge {
  std::string serial;
  std::string enrolment;  // 32 hex digits
  std::string json;       // the challenge, for the processor
};
// Checks the request: the EK certificate chains to a root in `tpm_roots_pem`
// (the TPM makers' root and intermediate certificates, PEM; CRLs in it are
// honoured) at `now`, and its key is RSA 2048; each TPM2B_PUBLIC is a P-256
// key with exactly the attributes of its role (TpmKeyAttributes). Then makes
// one credential per key and records the enrolment as pending in `ca_dir`.
// Refusals are kUntrustedPeer (EK certificate) or kRefused / kMalformed.
Result<TpmEnrolChallenge> CaTpmEnrolChallenge(const std::filesystem::path& ca_dir, std::string_view request_json,
                                              std::string_view tpm_roots_pem,
                                              std::chrono::system_clock::time_point now);

struct TpmEnrolIssued {
  std::string serial;
  std::string identity_pem;  // device certificate (identity), leaf then the CA's root
  std::string keywrap_pem;   // device certificate (key-wrap), leaf then the CA's root
};
// Checks both secrets (constant time) against the pending enrolment, removes
// it, and issues the two certificates with the TPM binding (pki/cert.h).
// kNotFound for an unknown, used or expired enrolment; kRefused for a wrong
// secret (the enrolment is then gone too: a new request must start over).
Result<TpmEnrolIssued> CaTpmEnrolFinish(const std::filesystem::path& ca_dir, std::string_view response_json,
                                        int days, std::chrono::system_clock::time_point now);

}  // namespace sealdrop
