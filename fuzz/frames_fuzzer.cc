// FrameDecoder (protocol/frames.h) against a reference model, with both
// limit tables a peer meets: InnerMaxBody (server <-> processor, inside the
// inner TLS) and TrpMaxBody (host <-> processor socket).
//
// Input: byte 0 picks the table and the API (Push or Prepare/Commit, Pop or
// PopView); then the stream is fed in pieces whose sizes come from the
// input, draining the decoder after each piece. The reference model reads
// the whole stream frame by frame; the decoder must:
//  - yield exactly the reference's frames, in order, before any error;
//  - fail once the header of the first bad frame (unknown type, body over
//    the limit) has fully arrived, and stay failed for every later call;
//  - otherwise hold exactly the bytes of the incomplete last frame;
//  - never yield a frame over the limit, and re-encode each frame to the
//    bytes it came from.
// PopView frames are compared only after the drain loop, to check that a
// view stays valid until the next Push or Prepare, as promised.
#include <cstdint>
#include <cstring>

#include "fuzz_util.h"
#include "protocol/frames.h"
#include "protocol/messages.h"

using namespace sealdrop;

namespace {

struct Expected {
  std::vector<Frame> frames;  // every complete valid frame before the first bad one
  std::vector<size_t> ends;   // stream offset just after each frame
  size_t bad_header_end = SIZE_MAX;  // offset where the bad header completes
};

Expected Reference(const Bytes& stream, std::optional<size_t> (*max_body)(uint8_t)) {
  Expected e;
  size_t at = 0;
  while (stream.size() - at >= kFrameHeaderSize) {
    uint8_t type = stream[at];
    uint32_t len = (uint32_t{stream[at + 1]} << 24) | (uint32_t{stream[at + 2]} << 16) |
                   (uint32_t{stream[at + 3]} << 8) | stream[at + 4];
    auto max = max_body(type);
    if (!max || len > *max) {
      e.bad_header_end = at + kFrameHeaderSize;
      break;
    }
    if (stream.size() - at - kFrameHeaderSize < len) break;
    e.frames.push_back({type, Bytes(stream.begin() + at + kFrameHeaderSize, stream.begin() + at + kFrameHeaderSize + len)});
    at += kFrameHeaderSize + len;
    e.ends.push_back(at);
  }
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint8_t mode = in.ConsumeIntegral<uint8_t>();
  auto* max_body = (mode & 1) ? &TrpMaxBody : &InnerMaxBody;
  const bool zero_copy_in = mode & 2;
  const bool zero_copy_out = mode & 4;
  // Piece sizes come from the end of the input, stream bytes from the front.
  std::vector<size_t> pieces;
  Bytes stream;
  while (in.remaining_bytes() > 0) {
    size_t n = in.ConsumeIntegralInRange<size_t>(0, mode & 8 ? 4096 : 16);
    Bytes piece = in.ConsumeBytes<uint8_t>(n);
    pieces.push_back(piece.size());
    stream.insert(stream.end(), piece.begin(), piece.end());
  }
  const Expected want = Reference(stream, max_body);

  FrameDecoder decoder(max_body);
  size_t fed = 0, got = 0;
  bool failed = false;
  auto fail_allowed = [&] { return fed >= want.bad_header_end; };
  for (size_t n : pieces) {
    Status st;
    if (zero_copy_in) {
      // Prepare more than is filled, as the socket and TLS readers do.
      auto room = decoder.Prepare(n + (n & 7));
      FUZZ_CHECK(room.size() == n + (n & 7), "Prepare returned the wrong size");
      if (n) std::memcpy(room.data(), stream.data() + fed, n);
      fed += n;
      st = decoder.Commit(n);
    } else {
      st = decoder.Push(ByteView(stream).subspan(fed, n));
      fed += n;
    }
    if (!st) {
      FUZZ_CHECK(fail_allowed(), "Push/Commit failed before a bad header arrived: " + st.error().message);
      failed = true;
      break;
    }
    std::vector<FrameView> views;
    for (;;) {
      if (zero_copy_out) {
        auto v = decoder.PopView();
        if (!v) { failed = true; break; }
        if (!*v) break;
        views.push_back(**v);
      } else {
        auto f = decoder.Pop();
        if (!f) { failed = true; break; }
        if (!*f) break;
        FUZZ_CHECK(got < want.frames.size() && f->value().type == want.frames[got].type &&
                       f->value().body == want.frames[got].body,
                   "frame " + std::to_string(got) + " differs from the reference");
        FUZZ_CHECK(want.ends[got] <= fed, "a frame was yielded before all its bytes arrived");
        FUZZ_CHECK(EncodeFrame(f->value().type, f->value().body) ==
                       Bytes(stream.begin() + (want.ends[got] - kFrameHeaderSize - f->value().body.size()),
                             stream.begin() + want.ends[got]),
                   "a frame does not re-encode to its bytes");
        ++got;
      }
    }
    for (const FrameView& v : views) {
      FUZZ_CHECK(got < want.frames.size() && v.type == want.frames[got].type &&
                     v.body.size() == want.frames[got].body.size() &&
                     std::equal(v.body.begin(), v.body.end(), want.frames[got].body.begin()),
                 "view " + std::to_string(got) + " differs from the reference (or went stale)");
      FUZZ_CHECK(want.ends[got] <= fed, "a view was yielded before all its bytes arrived");
      ++got;
    }
    if (failed) {
      FUZZ_CHECK(fail_allowed(), "Pop failed before a bad header arrived");
      break;
    }
    // Every frame complete so far has been drained.
    FUZZ_CHECK(got == want.frames.size() || want.ends[got] > fed, "a complete frame was not yielded");
  }
  if (failed) {
    FUZZ_CHECK(got == want.frames.size(), "the decoder failed before yielding every good frame");
    FUZZ_CHECK(!decoder.Push(ByteView()).has_value() && !decoder.Pop().has_value() && !decoder.PopView().has_value() &&
                   !decoder.Commit(0).has_value(),
               "a failed decoder recovered");
    return 0;
  }
  FUZZ_CHECK(fed < want.bad_header_end, "a bad header arrived but the decoder did not fail");
  FUZZ_CHECK(got == want.frames.size(), "not every frame was yielded");
  const size_t consumed = want.ends.empty() ? 0 : want.ends.back();
  FUZZ_CHECK(decoder.buffered() == fed - consumed, "buffered() is not the incomplete frame's bytes");
  return 0;
}
