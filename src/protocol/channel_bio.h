// The in-memory BIO under sealdrop's TLS endpoints (the inner channel and
// the outer stream). Records the peer sent wait in `in`; records for the
// peer are appended to `out`, which the owner takes by move. A memory BIO
// would instead grow, clear and copy its buffer for every batch, which on
// the 1 GiB streaming path costs several passes over the data.
//
// Internal to the project's .cc files (it carries an OpenSSL type).
#pragma once

#include <openssl/bio.h>

#include "base/bytes.h"

namespace sealdrop {

struct ChannelBuffers {
  Bytes in;
  size_t in_offset = 0;
  Bytes out;

  // Room for n more incoming bytes at the end of `in` (compacting first).
  std::span<uint8_t> PrepareInput(size_t n);
  void CommitInput(size_t used, size_t prepared);
  void AppendInput(ByteView bytes);
};

// A new BIO over `buffers` (not owned; must outlive the BIO).
BIO* NewChannelBio(ChannelBuffers* buffers);

}  // namespace sealdrop
