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

}  // namespace sealdrop
