#include "crypto/random.h"

#include <openssl/rand.h>

#include <climits>

#include "base/encoding.h"
#include "crypto/ossl_internal.h"

namespace sealdrop {
namespace {

// RAND_bytes takes an int length; larger requests are served in pieces.
template <int (*Fill)(unsigned char*, int)>
void FillRandom(uint8_t* out, size_t n) {
  while (n > 0) {
    int piece = n > INT_MAX ? INT_MAX : static_cast<int>(n);
    if (Fill(out, piece) != 1) OsslFatal("the random generator failed");
    out += piece;
    n -= static_cast<size_t>(piece);
  }
}

}  // namespace

Bytes RandomBytes(size_t n) {
  Bytes out(n);
  FillRandom<RAND_bytes>(out.data(), n);
  return out;
}

SecretBytes RandomSecret(size_t n) {
  SecretBytes out(n);
  // The private DRBG instance keeps key material apart from public values
  // such as nonces, so a leak of one stream says nothing about the other.
  FillRandom<RAND_priv_bytes>(out.MutableData(SecretAccess{}), n);
  return out;
}

std::string RandomHexId(size_t n) { return HexEncode(RandomBytes(n)); }

}  // namespace sealdrop
