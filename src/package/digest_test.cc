#include "package/digest.h"

#include <gtest/gtest.h>

#include "crypto/random.h"
#include "package/chunked.h"

namespace sealdrop {
namespace {

// The reference: hash the prefix, then pick out each chunk's tag.
Digest Reference(const Bytes& package, size_t prefix, uint64_t plaintext) {
  Sha256 h;
  h.Update(ByteView(package).first(prefix));
  uint64_t off = prefix;
  for (uint64_t i = 0; i < ChunkCount(plaintext); ++i) {
    off += ChunkPlaintextSize(plaintext, i);
    h.Update(ByteView(package).subspan(off, 16));
    off += 16;
  }
  return h.Final();
}

TEST(PackageDigest, MatchesReferenceForAnySplit) {
  for (uint64_t plaintext : {uint64_t{0}, uint64_t{1}, uint64_t{kChunkSize}, uint64_t{2 * kChunkSize + 7}}) {
    size_t prefix = 100;
    Bytes package = RandomBytes(prefix + SealedPayloadSize(plaintext));
    Digest want = Reference(package, prefix, plaintext);
    for (size_t step : {size_t{1}, size_t{7}, size_t{4096}, package.size()}) {
      PackageDigest d(prefix, plaintext);
      for (size_t off = 0; off < package.size(); off += step)
        d.Update(ByteView(package).subspan(off, std::min(step, package.size() - off)));
      auto got = d.Final();
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(*got, want) << plaintext << " step " << step;
    }
  }
}

TEST(PackageDigest, CoversPrefixAndTagsOnly) {
  uint64_t plaintext = kChunkSize + 10;
  size_t prefix = 50;
  Bytes package = RandomBytes(prefix + SealedPayloadSize(plaintext));
  auto digest_of = [&](const Bytes& p) {
    PackageDigest d(prefix, plaintext);
    d.Update(p);
    return *d.Final();
  };
  Digest base = digest_of(package);
  Bytes a = package;
  a[3] ^= 1;  // prefix
  EXPECT_NE(digest_of(a), base);
  Bytes b = package;
  b[prefix + kChunkSize + 2] ^= 1;  // first chunk's tag
  EXPECT_NE(digest_of(b), base);
  Bytes c = package;
  c.back() ^= 1;  // last chunk's tag
  EXPECT_NE(digest_of(c), base);
}

TEST(PackageDigest, RefusesShortAndLongInput) {
  PackageDigest short_d(10, 100);
  short_d.Update(Bytes(10 + 100 + 16 - 1));
  EXPECT_FALSE(short_d.Final().has_value());
  PackageDigest long_d(10, 100);
  long_d.Update(Bytes(10 + 100 + 16 + 1));
  EXPECT_FALSE(long_d.Final().has_value());
}

}  // namespace
}  // namespace sealdrop
