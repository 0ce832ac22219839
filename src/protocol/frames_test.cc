#include "protocol/frames.h"

#include <gtest/gtest.h>

#include "protocol/messages.h"

namespace sealdrop {
namespace {

TEST(Frames, SplitsAndJoinsAcrossPushes) {
  Bytes stream;
  AppendFrame(stream, 1, ToBytes("hello"));
  AppendFrame(stream, 3, ToBytes(""));
  AppendFrame(stream, 2, Bytes(8, 7));
  FrameDecoder d(InnerMaxBody);
  std::vector<Frame> got;
  for (uint8_t b : stream) {  // one byte at a time
    ASSERT_TRUE(d.Push(ByteView(&b, 1)).has_value());
    while (true) {
      auto f = d.Pop();
      ASSERT_TRUE(f.has_value());
      if (!*f) break;
      got.push_back(**f);
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(AsString(got[0].body), "hello");
  EXPECT_TRUE(got[1].body.empty());
  EXPECT_EQ(got[2].body.size(), 8u);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Frames, RejectsUnknownTypeAndOversizedLength) {
  FrameDecoder d(InnerMaxBody);
  Bytes unknown = EncodeFrame(99, ToBytes("x"));
  EXPECT_FALSE(d.Push(unknown).has_value());
  EXPECT_FALSE(d.Pop().has_value());  // stays failed

  FrameDecoder e(InnerMaxBody);
  Bytes header = {static_cast<uint8_t>(InnerType::kPackageBegin), 0, 0, 0, 9};  // max is 8
  auto st = e.Push(header);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kTooLarge);

  FrameDecoder f(InnerMaxBody);
  Bytes huge = {static_cast<uint8_t>(InnerType::kPackageData), 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(f.Push(huge).has_value());
}

TEST(Frames, TruncatedFrameStaysPending) {
  FrameDecoder d(InnerMaxBody);
  Bytes frame = EncodeFrame(static_cast<uint8_t>(InnerType::kPackageEnd), Bytes(32, 1));
  frame.pop_back();
  ASSERT_TRUE(d.Push(frame).has_value());
  auto f = d.Pop();
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->has_value());
  EXPECT_EQ(d.buffered(), frame.size());
}

}  // namespace
}  // namespace sealdrop
