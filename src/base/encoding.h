// Text encodings of bytes: lowercase hex and base64url without padding
// (RFC 4648 section 5, as JWS uses it). Decoders are strict: they reject
// padding, whitespace, non-alphabet characters and non-canonical trailing
// bits, so one value has exactly one encoding.
#pragma once

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

std::string HexEncode(ByteView data);
Result<Bytes> HexDecode(std::string_view text);

std::string Base64UrlEncode(ByteView data);
Result<Bytes> Base64UrlDecode(std::string_view text);

// The longest prefix of `text` of at most `max` bytes that does not end in
// the middle of a UTF-8 sequence (for messages cut to a limit and then put
// into JSON, which must stay valid UTF-8).
std::string TruncateUtf8(std::string_view text, size_t max);

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF).
bool IsValidUtf8(std::string_view text);

}  // namespace sealdrop
