#include "protocol/frames.h"

#include <cstring>

#include "base/reader.h"

namespace sealdrop {

std::array<uint8_t, kFrameHeaderSize> EncodeFrameHeader(uint8_t type, size_t body_size) {
  std::array<uint8_t, kFrameHeaderSize> header;
  header[0] = type;
  StoreU32(header.data() + 1, static_cast<uint32_t>(body_size));
  return header;
}

void AppendFrame(Bytes& out, uint8_t type, ByteView body) {
  size_t at = out.size();
  out.resize(at + kFrameHeaderSize + body.size());
  out[at] = type;
  StoreU32(out.data() + at + 1, static_cast<uint32_t>(body.size()));
  if (!body.empty()) std::copy(body.begin(), body.end(), out.begin() + at + kFrameHeaderSize);
}

Bytes EncodeFrame(uint8_t type, ByteView body) {
  Bytes out;
  AppendFrame(out, type, body);
  return out;
}

Status FrameDecoder::CheckHeader() {
  Reader r(ByteView(buffer_.data() + consumed_, end_ - consumed_));
  uint8_t type = 0;
  uint32_t len = 0;
  if (!r.ReadU8(&type) || !r.ReadU32(&len)) return Ok();  // the header has not all arrived
  auto max = max_body_(type);
  if (!max) {
    failed_ = Error{ErrorCode::kMalformed, "unknown frame type " + std::to_string(type)};
    return std::unexpected(*failed_);
  }
  if (len > *max) {
    failed_ = Error{ErrorCode::kTooLarge, "frame of type " + std::to_string(type) + " is " +
                                              std::to_string(len) + " bytes, above the limit of " +
                                              std::to_string(*max)};
    return std::unexpected(*failed_);
  }
  return Ok();
}

std::span<uint8_t> FrameDecoder::Prepare(size_t n) {
  // Move what is left to the front once it is no more than what was
  // consumed: each byte moves at most once on average.
  if (consumed_ > 0 && consumed_ >= end_ - consumed_) {
    std::memmove(buffer_.data(), buffer_.data() + consumed_, end_ - consumed_);
    end_ -= consumed_;
    consumed_ = 0;
  }
  if (buffer_.size() < end_ + n) buffer_.resize(end_ + n);
  return std::span<uint8_t>(buffer_.data() + end_, n);
}

Status FrameDecoder::Commit(size_t filled) {
  if (failed_) return std::unexpected(*failed_);
  end_ += filled;
  return CheckHeader();
}

Status FrameDecoder::Push(ByteView bytes) {
  if (failed_) return std::unexpected(*failed_);
  auto room = Prepare(bytes.size());
  if (!bytes.empty()) std::memcpy(room.data(), bytes.data(), bytes.size());
  return Commit(bytes.size());
}

Result<std::optional<Frame>> FrameDecoder::Pop() {
  SEALDROP_ASSIGN(auto view, PopView());
  if (!view) return std::optional<Frame>();
  return std::optional<Frame>(Frame{view->type, Bytes(view->body.begin(), view->body.end())});
}

Result<std::optional<FrameView>> FrameDecoder::PopView() {
  if (failed_) return std::unexpected(*failed_);
  const ByteView pending(buffer_.data() + consumed_, end_ - consumed_);
  Reader r(pending);
  uint8_t type = 0;
  ByteView body;
  if (!r.ReadU8(&type)) return std::optional<FrameView>();
  // The limit comes from the type (CheckHeader); a length above it has
  // already failed the stream, so Prefixed's own maximum is the u32 range.
  SEALDROP_TRY(CheckHeader());
  if (r.ReadU32PrefixedIn(0, UINT32_MAX, &body) != Reader::Prefixed::kOk) return std::optional<FrameView>();
  FrameView f{type, body};
  consumed_ += pending.size() - r.remaining();
  if (consumed_ == end_) consumed_ = end_ = 0;  // the view stays valid: no data moves here
  return std::optional<FrameView>(f);
}

}  // namespace sealdrop
