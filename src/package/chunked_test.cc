#include "package/chunked.h"

#include <gtest/gtest.h>

#include "crypto/random.h"

namespace sealdrop {
namespace {

struct Sealed {
  std::vector<Bytes> chunks;
  Bytes prefix;
  SecretBytes kx;
};

Sealed SealAll(const Bytes& plaintext) {
  Sealed s{{}, RandomBytes(kChunkNoncePrefixSize), RandomSecret(32)};
  auto sealer = ChunkSealer::Create(s.kx, s.prefix, plaintext.size());
  EXPECT_TRUE(sealer.has_value());
  for (uint64_t i = 0; i < ChunkCount(plaintext.size()); ++i) {
    size_t n = ChunkPlaintextSize(plaintext.size(), i);
    Bytes c(plaintext.begin() + i * kChunkSize, plaintext.begin() + i * kChunkSize + n);
    EXPECT_TRUE(sealer->SealNext(c).has_value());
    s.chunks.push_back(std::move(c));
  }
  EXPECT_TRUE(sealer->done());
  return s;
}

Result<Bytes> OpenAll(const Sealed& s, uint64_t size, std::vector<Bytes> chunks) {
  SEALDROP_ASSIGN(auto opener, ChunkOpener::Create(s.kx, s.prefix, size));
  Bytes out;
  for (auto& c : chunks) {
    SEALDROP_TRY(opener.OpenNext(c));
    out.insert(out.end(), c.begin(), c.end());
  }
  if (!opener.done()) return Fail(ErrorCode::kCryptoFailure, "truncated");
  return out;
}

TEST(Chunked, Sizes) {
  EXPECT_EQ(ChunkCount(0), 1u);
  EXPECT_EQ(ChunkCount(1), 1u);
  EXPECT_EQ(ChunkCount(kChunkSize), 1u);
  EXPECT_EQ(ChunkCount(kChunkSize + 1), 2u);
  EXPECT_EQ(SealedPayloadSize(0), 16u);
  EXPECT_EQ(SealedPayloadSize(kChunkSize + 1), kChunkSize + 1 + 32);
}

TEST(Chunked, RoundTripsEdgeSizes) {
  for (size_t size : {size_t{0}, size_t{1}, kChunkSize - 1, kChunkSize, kChunkSize + 1, 3 * kChunkSize}) {
    Bytes pt = RandomBytes(size);
    Sealed s = SealAll(pt);
    auto out = OpenAll(s, size, s.chunks);
    ASSERT_TRUE(out.has_value()) << size;
    EXPECT_EQ(*out, pt);
  }
}

TEST(Chunked, DetectsFlipReorderTruncateExtend) {
  Bytes pt = RandomBytes(3 * kChunkSize + 5);
  Sealed s = SealAll(pt);
  {
    auto c = s.chunks;
    c[1][7] ^= 1;
    EXPECT_EQ(OpenAll(s, pt.size(), c).error().code, ErrorCode::kCryptoFailure);
  }
  {
    auto c = s.chunks;
    c.back().back() ^= 0x80;  // tag
    EXPECT_FALSE(OpenAll(s, pt.size(), c).has_value());
  }
  {
    auto c = s.chunks;
    std::swap(c[0], c[1]);
    EXPECT_FALSE(OpenAll(s, pt.size(), c).has_value());
  }
  {
    auto c = s.chunks;
    c.pop_back();  // dropped last chunk
    EXPECT_FALSE(OpenAll(s, pt.size(), c).has_value());
  }
  {
    // Claiming the stream ends early: chunk 2 was sealed as not-last.
    auto c = s.chunks;
    c.pop_back();
    EXPECT_FALSE(OpenAll(s, 3 * kChunkSize, c).has_value());
  }
  {
    auto c = s.chunks;
    c[3].pop_back();  // truncated chunk
    EXPECT_FALSE(OpenAll(s, pt.size(), c).has_value());
  }
  {
    Sealed other = s;
    other.kx = RandomSecret(32);  // wrong key
    EXPECT_FALSE(OpenAll(other, pt.size(), s.chunks).has_value());
  }
}

TEST(Chunked, FailedOpenWipesBuffer) {
  Bytes pt(100, 0x41);
  Sealed s = SealAll(pt);
  auto opener = ChunkOpener::Create(s.kx, s.prefix, pt.size());
  Bytes c = s.chunks[0];
  c[0] ^= 1;
  EXPECT_FALSE(opener->OpenNext(c).has_value());
  EXPECT_TRUE(c.empty());
}

TEST(Chunked, RejectsBadParameters) {
  EXPECT_FALSE(ChunkSealer::Create(RandomSecret(16), RandomBytes(7), 10).has_value());
  EXPECT_FALSE(ChunkSealer::Create(RandomSecret(32), RandomBytes(8), 10).has_value());
  auto s = ChunkSealer::Create(RandomSecret(32), RandomBytes(7), 10);
  Bytes wrong(11);
  EXPECT_FALSE(s->SealNext(wrong).has_value());
}

}  // namespace
}  // namespace sealdrop
