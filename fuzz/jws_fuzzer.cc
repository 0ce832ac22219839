// JwsParse and JwsVerify on arbitrary compact strings (manifests, receipts
// and releases all arrive as JWS from the host or the server).
//
// Checks beyond crashes:
//  - an accepted JWS is exactly BASE64URL(header) "." BASE64URL(payload) "."
//    BASE64URL(signature), with the decoded parts the parser returned;
//  - JwsVerify and JwsVerifyCompact agree;
//  - re-signing what was parsed (same kid, typ, payload) under the fixed key
//    succeeds and parses back to the same values, and verifies: the parser
//    accepts nothing the signer could not produce.
// The key is fixed (fuzz_util.h FixedKey(1)); make_corpus signs its seeds
// with it, so the fuzzer starts from signatures that verify.
#include <cstdint>

#include "base/encoding.h"
#include "crypto/jws.h"
#include "fuzz_util.h"

using namespace sealdrop;

namespace {
const EcPrivateKey& Key() {
  static const EcPrivateKey key = fuzz::FixedKey(1);
  return key;
}
const EcPublicKey& PublicKey() {
  static const EcPublicKey pub = Key().PublicKey();
  return pub;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view compact(reinterpret_cast<const char*>(data), size);
  auto jws = JwsParse(compact);
  if (!jws) {
    FUZZ_CHECK(jws.error().code == ErrorCode::kMalformed, "unexpected error code: " + jws.error().message);
    FUZZ_CHECK(!JwsVerifyCompact(compact, PublicKey(), "x").has_value(), "verify accepted what parse refused");
    return 0;
  }
  FUZZ_CHECK(jws->signature.size() == kEs256SignatureSize, "signature size");
  const size_t dot2 = jws->signing_input.size();
  FUZZ_CHECK(compact.substr(0, dot2) == jws->signing_input && dot2 < compact.size() && compact[dot2] == '.',
             "signing_input is not the first two parts");
  FUZZ_CHECK(compact.substr(dot2 + 1) == Base64UrlEncode(jws->signature), "signature part re-encodes differently");
  const size_t dot1 = jws->signing_input.find('.');
  FUZZ_CHECK(dot1 != std::string::npos &&
                 jws->signing_input.substr(dot1 + 1) == Base64UrlEncode(jws->payload),
             "payload part re-encodes differently");

  const bool verified = JwsVerify(*jws, PublicKey()).has_value();
  FUZZ_TRACE("jws: typ %s, %zu payload bytes, %s\n", jws->typ.c_str(), jws->payload.size(),
             verified ? "verifies" : "does not verify");
  auto compact_payload = JwsVerifyCompact(compact, PublicKey(), jws->typ);
  FUZZ_CHECK(verified == compact_payload.has_value(), "JwsVerify and JwsVerifyCompact disagree");
  if (verified) FUZZ_CHECK(*compact_payload == jws->payload, "verified payload differs");

  auto resigned = JwsSign(Key(), jws->kid, jws->typ, jws->payload);
  if (!resigned) {
    // The only acceptable refusal: the canonical header made it too large.
    FUZZ_CHECK(resigned.error().code == ErrorCode::kTooLarge,
               "JwsSign refused a kid/typ/payload that JwsParse accepted: " + resigned.error().message);
    return 0;
  }
  auto back = JwsParse(*resigned);
  FUZZ_CHECK(back.has_value(), "JwsParse refused JwsSign's output: " + (back ? "" : back.error().message));
  FUZZ_CHECK(back->kid == jws->kid && back->typ == jws->typ && back->payload == jws->payload,
             "re-signed JWS parses to different values");
  FUZZ_CHECK(JwsVerify(*back, PublicKey()).has_value(), "re-signed JWS does not verify");
  return 0;
}
