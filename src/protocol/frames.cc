#include "protocol/frames.h"

#include "base/reader.h"

namespace sealdrop {

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
  size_t avail = buffer_.size() - consumed_;
  if (avail < kFrameHeaderSize) return Ok();
  uint8_t type = buffer_[consumed_];
  uint32_t len = LoadU32(buffer_.data() + consumed_ + 1);
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

Status FrameDecoder::Push(ByteView bytes) {
  if (failed_) return std::unexpected(*failed_);
  // Compact once at least half the buffer is consumed: each byte is moved
  // at most once on average, and the buffer stays within twice one partial
  // frame plus what was just pushed.
  if (consumed_ > 0 && consumed_ * 2 >= buffer_.size()) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  return CheckHeader();
}

Result<std::optional<Frame>> FrameDecoder::Pop() {
  SEALDROP_ASSIGN(auto view, PopView());
  if (!view) return std::optional<Frame>();
  return std::optional<Frame>(Frame{view->type, Bytes(view->body.begin(), view->body.end())});
}

Result<std::optional<FrameView>> FrameDecoder::PopView() {
  if (failed_) return std::unexpected(*failed_);
  size_t avail = buffer_.size() - consumed_;
  if (avail < kFrameHeaderSize) return std::optional<FrameView>();
  SEALDROP_TRY(CheckHeader());
  uint32_t len = LoadU32(buffer_.data() + consumed_ + 1);
  if (avail < kFrameHeaderSize + len) return std::optional<FrameView>();
  FrameView f{buffer_[consumed_], ByteView(buffer_.data() + consumed_ + kFrameHeaderSize, len)};
  consumed_ += kFrameHeaderSize + len;
  return std::optional<FrameView>(f);
}

}  // namespace sealdrop
