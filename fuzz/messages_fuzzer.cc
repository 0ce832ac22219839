// The JSON message parsers of protocol/messages.h, chosen by the first byte:
//   0 ParseControl (host -> server limit)   1 ParseControl (server -> host limit)
//   2 ParseCapabilities                     3 ParseReceiptClaims
//   4 ParseReleaseClaims                    5 ParseErrorJson
//   6 ParseErrorJson of a long message: a peer's {"code","message"} whose
//     message is the rest of the input repeated to a length from the first
//     two bytes (at most 1100 bytes), so that messages near the 1000- and
//     1024-byte limits are reached from short inputs
// The rest of the input is the message.
//
// Round trips where an encoder exists: what a parser accepts must encode,
// and the encoding must parse back to the same values (for control
// messages, EncodeControl is a fixpoint: it drops fields the type does not
// carry). ParseErrorJson never fails; what it returns must survive
// ErrorJson and ErrorControl/EncodeControl, because the processor and the
// server forward a peer's error with exactly those.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "protocol/messages.h"

using namespace sealdrop;

namespace {

void Control(ByteView body, size_t max) {
  auto m = ParseControl(AsString(body), max);
  if (!m) return;
  FUZZ_CHECK(m->type.size() <= 32, "type too long");
  const std::string once = EncodeControl(*m);
  auto again = ParseControl(once, kMaxServerControlSize);
  FUZZ_CHECK(again.has_value(), "EncodeControl output does not parse: " + (again ? "" : again.error().message));
  FUZZ_CHECK(EncodeControl(*again) == once, "EncodeControl is not a fixpoint:\n" + once);
  FUZZ_CHECK(again->type == m->type && again->user == m->user && again->password == m->password &&
                 again->receipt == m->receipt && again->release == m->release && again->token == m->token &&
                 again->message == m->message && again->remember == m->remember &&
                 (m->type != "receipts" || again->receipts == m->receipts),
             "a string field changed in the round trip");
}

void Capabilities(ByteView body) {
  auto c = ParseCapabilities(body);
  if (!c) return;
  Bytes enc = EncodeCapabilities(*c);
  auto again = ParseCapabilities(enc);
  FUZZ_CHECK(again.has_value(), "EncodeCapabilities output does not parse: " + (again ? "" : again.error().message));
  FUZZ_CHECK(again->version == c->version && again->package_suites == c->package_suites &&
                 again->key_wrap_chain_pem == c->key_wrap_chain_pem,
             "capabilities changed in the round trip");
}

void Receipt(ByteView body) {
  auto c = ParseReceiptClaims(body);
  if (!c) return;
  std::string enc = EncodeReceiptClaims(*c);
  auto again = ParseReceiptClaims(AsBytes(enc));
  FUZZ_CHECK(again.has_value(), "EncodeReceiptClaims output does not parse");
  FUZZ_CHECK(EncodeReceiptClaims(*again) == enc && again->receipt_id == c->receipt_id && again->user == c->user &&
                 again->program_id == c->program_id && again->amount == c->amount && again->issued_at == c->issued_at,
             "receipt claims changed in the round trip");
}

void Release(ByteView body) {
  auto c = ParseReleaseClaims(body);
  if (!c) return;
  std::string enc = EncodeReleaseClaims(*c);
  auto again = ParseReleaseClaims(AsBytes(enc));
  FUZZ_CHECK(again.has_value(), "EncodeReleaseClaims output does not parse");
  FUZZ_CHECK(EncodeReleaseClaims(*again) == enc && again->package_id == c->package_id &&
                 again->package_digest == c->package_digest && again->session == c->session,
             "release claims changed in the round trip");
}

void ErrorMessage(ByteView body) {
  Error e = ParseErrorJson(body);
  // The processor answers a failed session with ErrorJson(error), the server
  // with ErrorControl(error) in a control message and ErrorJson(error) in an
  // inner frame: a peer's error message goes through all three.
  Bytes json = ErrorJson(e);
  Error back = ParseErrorJson(json);
  FUZZ_CHECK(back.code == e.code, "the error code changed in ErrorJson");
  FUZZ_CHECK(e.message.size() > 1000 || back.message == e.message, "the error message changed in ErrorJson");
  std::string control = EncodeControl(ErrorControl(e));
  auto m = ParseControl(control, kMaxServerControlSize);
  FUZZ_CHECK(m.has_value() && m->type == "error", "ErrorControl does not encode a parseable error");
}

// What a peer sends when its error message is long: the processor's and the
// server's error frames carry up to 1024 bytes of message.
void LongErrorMessage(ByteView input) {
  if (input.size() < 3) return;
  const size_t length = ((size_t{input[0]} << 8) | input[1]) % 1101;
  const std::string unit(AsString(input.subspan(2)));
  std::string message;
  while (message.size() + unit.size() <= length) message += unit;
  std::string body;
  try {
    body = nlohmann::json{{"code", "refused"}, {"message", message}}.dump();
  } catch (const nlohmann::json::exception&) {
    return;  // not valid UTF-8: a JSON peer could not send it
  }
  ErrorMessage(AsBytes(body));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ByteView body(data + 1, size - 1);
  switch (data[0] % 7) {
    case 0: Control(body, kMaxControlSize); break;
    case 1: Control(body, kMaxServerControlSize); break;
    case 2: Capabilities(body); break;
    case 3: Receipt(body); break;
    case 4: Release(body); break;
    case 5: ErrorMessage(body); break;
    default: LongErrorMessage(body); break;
  }
  return 0;
}
