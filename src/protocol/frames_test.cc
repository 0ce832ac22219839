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

TEST(Frames, PrepareCommitAndViews) {
  Bytes stream;
  AppendFrame(stream, static_cast<uint8_t>(InnerType::kPackageData), Bytes(300, 0xab));
  AppendFrame(stream, static_cast<uint8_t>(InnerType::kPackageEnd), Bytes(32, 0xcd));
  FrameDecoder d(InnerMaxBody);
  // Fill in three uneven pieces straight into the decoder's buffer.
  size_t at = 0;
  for (size_t piece : {size_t{3}, size_t{250}, stream.size() - 253}) {
    auto room = d.Prepare(1024);
    ASSERT_GE(room.size(), piece);
    std::copy(stream.begin() + at, stream.begin() + at + piece, room.begin());
    ASSERT_TRUE(d.Commit(piece).has_value());
    at += piece;
  }
  auto a = d.PopView();
  ASSERT_TRUE(a.has_value() && a->has_value());
  EXPECT_EQ((*a)->body.size(), 300u);
  EXPECT_EQ((*a)->body[299], 0xab);
  auto b = d.PopView();
  ASSERT_TRUE(b.has_value() && b->has_value());
  EXPECT_EQ((*b)->type, static_cast<uint8_t>(InnerType::kPackageEnd));
  EXPECT_EQ((*b)->body[0], 0xcd);
  EXPECT_EQ(d.buffered(), 0u);
  // An oversized header is refused at Commit, before its body arrives.
  Bytes bad = {static_cast<uint8_t>(InnerType::kPackageEnd), 0, 0, 0, 33};
  auto room = d.Prepare(bad.size());
  std::copy(bad.begin(), bad.end(), room.begin());
  EXPECT_FALSE(d.Commit(bad.size()).has_value());
}

}  // namespace
}  // namespace sealdrop
