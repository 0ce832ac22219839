// JWS compact serialization (RFC 7515), ES256 only (RFC 7518 section 3.4).
//
// The protected header is {"alg":"ES256","kid":KID,"typ":TYP}. Parsing is for
// untrusted input: compact strings longer than kMaxJwsSize, headers that are
// not JSON objects, an alg other than ES256, a "crit" member, bad base64url or
// a signature that is not 64 bytes are rejected as kMalformed before any
// signature check. So are headers with duplicate member names, nested values,
// a missing or non-string kid or typ, or any member besides alg, kid and typ.
// JwsVerify fails with kCryptoFailure and no detail. JwsVerifyCompact checks
// typ after the signature and fails with kMalformed on a mismatch. JwsSign
// fails with kInvalidArgument if kid or typ is not valid UTF-8, and with
// kTooLarge if the result would exceed kMaxJwsSize.
//
// Thread safety: stateless functions.
#pragma once

#include <string>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/ec.h"

namespace sealdrop {

inline constexpr size_t kMaxJwsSize = 1 << 20;

Result<std::string> JwsSign(const EcPrivateKey& key, std::string_view kid, std::string_view typ,
                            ByteView payload);

struct Jws {
  std::string kid;
  std::string typ;
  Bytes payload;        // decoded payload; not yet trusted until verified
  std::string signing_input;  // BASE64URL(header) "." BASE64URL(payload)
  Bytes signature;      // 64 bytes r || s
};

Result<Jws> JwsParse(std::string_view compact);
Status JwsVerify(const Jws& jws, const EcPublicKey& key);
// Parse + verify + typ check in one step; returns the payload.
Result<Bytes> JwsVerifyCompact(std::string_view compact, const EcPublicKey& key,
                               std::string_view expected_typ);

}  // namespace sealdrop
