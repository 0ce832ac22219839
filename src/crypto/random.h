// Cryptographically secure random bytes from OpenSSL's DRBG.
// Thread safety: safe from any thread. Aborts the process if the DRBG fails,
// because no caller can do anything sensible without randomness.
#pragma once

#include "base/bytes.h"

namespace sealdrop {

Bytes RandomBytes(size_t n);
SecretBytes RandomSecret(size_t n);
// A random identifier: n random bytes as lowercase hex.
std::string RandomHexId(size_t n);

}  // namespace sealdrop
