// Type-length-value framing used by the inner channel (inside the inner TLS)
// and by the host <-> processor Unix socket:
//
//   u8 type | u32 length (big-endian) | body
//
// FrameDecoder accumulates bytes from a stream and yields whole frames. Each
// frame type has a maximum body length (the caller's `max_body` function);
// a length above it, or an unknown type (max_body returns std::nullopt), is
// refused as soon as the frame header has arrived, so a peer cannot make
// the decoder allocate more than the largest legal frame.
//
// Thread safety: one decoder per stream.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

struct Frame {
  uint8_t type = 0;
  Bytes body;
};

// A frame inside the decoder's buffer: valid until the next Push or Prepare.
struct FrameView {
  uint8_t type = 0;
  ByteView body;
};

inline constexpr size_t kFrameHeaderSize = 5;

// The header of a frame whose body is `body_size` bytes, for writers that
// send the body from its own buffer (a gathered write).
std::array<uint8_t, kFrameHeaderSize> EncodeFrameHeader(uint8_t type, size_t body_size);
void AppendFrame(Bytes& out, uint8_t type, ByteView body);
Bytes EncodeFrame(uint8_t type, ByteView body);

class FrameDecoder {
 public:
  // max_body(type) returns the largest body allowed for the type, or
  // std::nullopt if the type is unknown.
  explicit FrameDecoder(std::function<std::optional<size_t>(uint8_t)> max_body)
      : max_body_(std::move(max_body)) {}

  // Adds bytes. Fails (and stays failed) on an unknown type or an oversized
  // length.
  Status Push(ByteView bytes);
  // Zero-copy form of Push: fill up to n bytes of Prepare(n), then Commit
  // how many were filled. The span is valid until the next call.
  std::span<uint8_t> Prepare(size_t n);
  Status Commit(size_t filled);
  // The next complete frame, std::nullopt if more bytes are needed, or the
  // error that failed the stream.
  Result<std::optional<Frame>> Pop();
  // The same without copying the body (see FrameView's lifetime).
  Result<std::optional<FrameView>> PopView();
  // Bytes of an incomplete frame still buffered.
  size_t buffered() const { return end_ - consumed_; }

 private:
  std::function<std::optional<size_t>(uint8_t)> max_body_;
  Bytes buffer_;         // frames in [consumed_, end_); capacity beyond end_
  size_t consumed_ = 0;
  size_t end_ = 0;
  std::optional<Error> failed_;
  Status CheckHeader();
};

}  // namespace sealdrop
