#include "crypto/jws.h"

#include <nlohmann/json.hpp>

#include <set>

#include "base/encoding.h"

namespace sealdrop {
namespace {

constexpr char kAlg[] = "ES256";

using nlohmann::json;

// Thrown from the parser callback to stop at the first structural problem;
// caught in ParseHeader, never crosses the API.
struct HeaderRejected {};

Error Malformed(std::string message) { return Error{ErrorCode::kMalformed, std::move(message)}; }

// The protected header must be one flat JSON object with unique member names.
// RFC 7515 section 4 lets a parser either reject duplicate names or keep the
// last one; rejecting removes any doubt about which "alg" was meant.
Result<json> ParseHeaderJson(std::string_view text) {
  std::set<std::string> seen;
  auto callback = [&seen](int depth, json::parse_event_t event, json& parsed) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth > 0)
      throw HeaderRejected{};
    if (event == json::parse_event_t::key && depth == 1 &&
        !seen.insert(parsed.get<std::string>()).second)
      throw HeaderRejected{};
    return true;
  };
  try {
    json header = json::parse(text, callback, /*allow_exceptions=*/true);
    if (!header.is_object()) return std::unexpected(Malformed("JWS header is not a JSON object"));
    return header;
  } catch (const HeaderRejected&) {
    return std::unexpected(Malformed("JWS header has nested values or duplicate members"));
  } catch (const json::exception&) {
    return std::unexpected(Malformed("JWS header is not valid JSON"));
  }
}

Result<std::string> RequiredString(const json& header, const char* name) {
  auto it = header.find(name);
  if (it == header.end() || !it->is_string())
    return std::unexpected(Malformed(std::string("JWS header lacks a string \"") + name + "\""));
  return it->get<std::string>();
}

}  // namespace

Result<std::string> JwsSign(const EcPrivateKey& key, std::string_view kid, std::string_view typ,
                            ByteView payload) {
  std::string header_text;
  try {
    // nlohmann's default object is an ordered map, so dump() yields exactly
    // {"alg":"ES256","kid":...,"typ":...} in that order, compact.
    json header = {{"alg", kAlg}, {"kid", std::string(kid)}, {"typ", std::string(typ)}};
    header_text = header.dump();
  } catch (const json::exception&) {
    return Fail(ErrorCode::kInvalidArgument, "JWS kid or typ is not valid UTF-8");
  }
  std::string signing_input =
      Base64UrlEncode(AsBytes(header_text)) + "." + Base64UrlEncode(payload);
  SEALDROP_ASSIGN(Bytes signature, key.Sign(AsBytes(signing_input)));
  std::string compact = signing_input + "." + Base64UrlEncode(signature);
  // Refuse to produce what JwsParse would refuse to read.
  if (compact.size() > kMaxJwsSize) return Fail(ErrorCode::kTooLarge, "JWS payload is too large");
  return compact;
}

Result<Jws> JwsParse(std::string_view compact) {
  if (compact.size() > kMaxJwsSize) return std::unexpected(Malformed("JWS is too large"));
  size_t dot1 = compact.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : compact.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || compact.find('.', dot2 + 1) != std::string_view::npos)
    return std::unexpected(Malformed("JWS compact form needs exactly three parts"));
  std::string_view header_b64 = compact.substr(0, dot1);
  std::string_view payload_b64 = compact.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view signature_b64 = compact.substr(dot2 + 1);

  auto header_bytes = Base64UrlDecode(header_b64);
  if (!header_bytes) return std::unexpected(Malformed("JWS header is not base64url"));
  SEALDROP_ASSIGN(json header, ParseHeaderJson(AsString(*header_bytes)));

  Jws jws;
  try {
    // RFC 7515 section 4.1.11: a "crit" we do not understand must make the
    // JWS invalid, and we understand none.
    if (header.contains("crit")) return std::unexpected(Malformed("JWS header has \"crit\""));
    SEALDROP_ASSIGN(std::string alg, RequiredString(header, "alg"));
    // Only ES256: this is where "none", HMAC and key-confusion attacks stop.
    if (alg != kAlg) return std::unexpected(Malformed("JWS alg is not ES256"));
    SEALDROP_ASSIGN(jws.kid, RequiredString(header, "kid"));
    SEALDROP_ASSIGN(jws.typ, RequiredString(header, "typ"));
    // Anything else (jwk, jku, x5u, b64, ...) would ask the verifier to do
    // something this format never does; refuse rather than ignore.
    if (header.size() != 3) return std::unexpected(Malformed("JWS header has unexpected members"));
  } catch (const json::exception&) {
    return std::unexpected(Malformed("JWS header is not valid"));
  }

  auto payload = Base64UrlDecode(payload_b64);
  if (!payload) return std::unexpected(Malformed("JWS payload is not base64url"));
  auto signature = Base64UrlDecode(signature_b64);
  if (!signature) return std::unexpected(Malformed("JWS signature is not base64url"));
  if (signature->size() != kEs256SignatureSize)
    return std::unexpected(Malformed("JWS signature is not 64 bytes"));

  jws.payload = std::move(*payload);
  jws.signature = std::move(*signature);
  jws.signing_input = std::string(compact.substr(0, dot2));
  return jws;
}

Status JwsVerify(const Jws& jws, const EcPublicKey& key) {
  if (!key.Verify(AsBytes(jws.signing_input), jws.signature))
    return Fail(ErrorCode::kCryptoFailure, "JWS signature does not verify");
  return Ok();
}

Result<Bytes> JwsVerifyCompact(std::string_view compact, const EcPublicKey& key,
                               std::string_view expected_typ) {
  SEALDROP_ASSIGN(Jws jws, JwsParse(compact));
  SEALDROP_TRY(JwsVerify(jws, key));
  // Checked after the signature so that only a genuine token of another kind
  // (say a manifest offered as a receipt) gets this far.
  if (jws.typ != expected_typ)
    return Fail(ErrorCode::kMalformed, "JWS has the wrong type for this use");
  return std::move(jws.payload);
}

}  // namespace sealdrop
