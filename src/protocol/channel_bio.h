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
  // Incoming records are in[in_offset, in_end); `in` itself only grows, so
  // preparing room for a read does not zero-fill it every time.
  Bytes in;
  size_t in_offset = 0;
  size_t in_end = 0;
  Bytes out;

  size_t pending_input() const { return in_end - in_offset; }
  // Room for n more incoming bytes after in_end (compacting first).
  std::span<uint8_t> PrepareInput(size_t n);
  // `used` of the prepared bytes were filled.
  void CommitInput(size_t used);
  void AppendInput(ByteView bytes);
};

// A new BIO over `buffers` (not owned; must outlive the BIO).
BIO* NewChannelBio(ChannelBuffers* buffers);

}  // namespace sealdrop
