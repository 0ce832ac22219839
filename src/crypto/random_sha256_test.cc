#include <gtest/gtest.h>

#include "base/encoding.h"
#include "crypto/random.h"
#include "crypto/sha256.h"

namespace sealdrop {
namespace {

TEST(Random, SizesAndDistinctness) {
  EXPECT_EQ(RandomBytes(0).size(), 0u);
  EXPECT_EQ(RandomBytes(33).size(), 33u);
  EXPECT_NE(RandomBytes(16), RandomBytes(16));
  SecretBytes a = RandomSecret(32), b = RandomSecret(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_FALSE(a == b);
  std::string id = RandomHexId(8);
  EXPECT_EQ(id.size(), 16u);
  EXPECT_TRUE(HexDecode(id).has_value());
}

// FIPS 180-2 appendix B examples.
TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(Sha256Hex(AsBytes("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex(AsBytes("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, IncrementalMatchesOneShot) {
  std::string text = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  Sha256 h;
  for (char c : text) h.Update(AsBytes(std::string_view(&c, 1)));
  Sha256 moved = std::move(h);
  EXPECT_EQ(moved.Final(), Sha256Of(AsBytes(text)));
}

}  // namespace
}  // namespace sealdrop
