#include <fcntl.h>
#include <sys/mman.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/files.h"
#include "base/reader.h"
#include "base/unique_fd.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "package/chunked.h"
#include "package/opener.h"
#include "package/package_file.h"
#include "package/sealer.h"

namespace sealdrop {
namespace {
namespace fs = std::filesystem;

class PackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pkgtest-" + RandomHexId(8));
    fs::create_directories(dir_);
    server_key_ = *EcPrivateKey::Generate();
    wrap_key_ = *EcPrivateKey::Generate();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Seal(const Bytes& plaintext, const std::string& serial = "dev1") {
    fs::path src = dir_ / "program.bin";
    EXPECT_TRUE(WriteFileAtomic(src, plaintext).has_value());
    SealRequest req{src, 3, "tool", "1.2", "data", wrap_key_->PublicKey(), serial,
                    RandomHexId(16), &*server_key_, 1700000000};
    auto sealer = PackageSealer::Create(req);
    EXPECT_TRUE(sealer.has_value()) << sealer.error().message;
    Bytes out;
    while (true) {
      auto more = sealer->Next(out);
      EXPECT_TRUE(more.has_value());
      if (!*more) break;
    }
    EXPECT_EQ(out.size(), sealer->total_size());
    fs::path pkg = dir_ / "program.sdpkg";
    EXPECT_TRUE(WriteFileAtomic(pkg, out).has_value());
    return pkg;
  }

  Result<Bytes> Open(const fs::path& pkg, const std::string& serial = "dev1") {
    UniqueFd fd(::open(pkg.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Fail(ErrorCode::kIo, "open");
    auto prefix = ReadPackagePrefix(fd.get());
    if (!prefix) return std::unexpected(prefix.error());
    auto m = VerifyManifest(prefix->manifest_jws, server_key_->PublicKey(),
                            Recipient{serial, wrap_key_->PublicKey().KeyId()});
    if (!m) return std::unexpected(m.error());
    auto kx = UnwrapContentKey(*m, *wrap_key_);
    if (!kx) return std::unexpected(kx.error());
    Bytes out;
    auto st = DecryptPayload(fd.get(), prefix->payload_offset, *m, *kx, [&](ByteView c) {
      out.insert(out.end(), c.begin(), c.end());
      return Ok();
    });
    if (!st) return std::unexpected(st.error());
    return out;
  }

  void Mutate(const fs::path& pkg, const std::function<void(Bytes&)>& f) {
    Bytes b = *ReadFile(pkg, 1 << 30);
    f(b);
    ASSERT_TRUE(WriteFileAtomic(pkg, b).has_value());
  }

  fs::path dir_;
  std::optional<EcPrivateKey> server_key_, wrap_key_;
};

// Seals `file` as `kind` with the catalogue's record of it; returns the
// error of Create() or of the Next() that failed, and how much was produced.
Result<size_t> SealChecked(const fs::path& file, const std::string& kind,
                           const EcPrivateKey& server_key, const EcPublicKey& wrap,
                           uint64_t size, const std::string& sha256) {
  SealRequest req{file, 3, "tool", "1.2", kind, wrap, "dev1", RandomHexId(16), &server_key, 1700000000};
  req.expected_size = size;
  req.expected_sha256 = sha256;
  SEALDROP_ASSIGN(PackageSealer sealer, PackageSealer::Create(req));
  Bytes out;
  while (true) {
    SEALDROP_ASSIGN(bool more, sealer.Next(out));
    if (!more) break;
  }
  return out.size();
}

TEST_F(PackageTest, TheStoredFileMustMatchTheCatalogue) {
  Bytes plain = RandomBytes(300000);
  fs::path src = dir_ / "stored.bin";
  ASSERT_TRUE(WriteFileAtomic(src, plain).has_value());
  const std::string sha = Sha256Hex(plain);
  auto good = SealChecked(src, "data", *server_key_, wrap_key_->PublicKey(), plain.size(), sha);
  ASSERT_TRUE(good.has_value()) << good.error().message;

  // Same size, other bytes: the last chunk is never sealed.
  Bytes other = plain;
  other[1000] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(src, other).has_value());
  auto replaced = SealChecked(src, "data", *server_key_, wrap_key_->PublicKey(), plain.size(), sha);
  ASSERT_FALSE(replaced.has_value());
  EXPECT_EQ(replaced.error().code, ErrorCode::kIo);
  EXPECT_NE(replaced.error().message.find("tool 1.2"), std::string::npos) << replaced.error().message;
  EXPECT_NE(replaced.error().message.find("SHA-256"), std::string::npos);

  // Truncated: refused before anything is produced.
  other.resize(other.size() - 10);
  ASSERT_TRUE(WriteFileAtomic(src, other).has_value());
  auto truncated = SealChecked(src, "data", *server_key_, wrap_key_->PublicKey(), plain.size(), sha);
  ASSERT_FALSE(truncated.has_value());
  EXPECT_NE(truncated.error().message.find("299990 bytes but was recorded as 300000"), std::string::npos)
      << truncated.error().message;

  // A protected ELF (this test's own executable) is checked while it is planned.
  fs::path elf = dir_ / "self.elf";
  fs::copy_file("/proc/self/exe", elf);
  auto elf_bytes = ReadFile(elf, 1 << 30);
  ASSERT_TRUE(elf_bytes.has_value());
  const std::string elf_sha = Sha256Hex(*elf_bytes);
  auto elf_good = SealChecked(elf, "elf", *server_key_, wrap_key_->PublicKey(), elf_bytes->size(), elf_sha);
  ASSERT_TRUE(elf_good.has_value()) << elf_good.error().message;
  auto elf_bad = SealChecked(elf, "elf", *server_key_, wrap_key_->PublicKey(), elf_bytes->size(),
                             std::string(64, '0'));
  ASSERT_FALSE(elf_bad.has_value());
  EXPECT_NE(elf_bad.error().message.find("SHA-256"), std::string::npos) << elf_bad.error().message;
}

TEST_F(PackageTest, SealsAndOpens) {
  for (size_t size : {size_t{0}, size_t{1000}, 3 * kChunkSize + 17}) {
    Bytes pt = RandomBytes(size);
    auto out = Open(Seal(pt));
    ASSERT_TRUE(out.has_value()) << out.error().message;
    EXPECT_EQ(*out, pt);
  }
}

TEST_F(PackageTest, CiphertextHoldsNoPlaintextRun) {
  Bytes pt(200000);
  for (size_t i = 0; i < pt.size(); ++i) pt[i] = static_cast<uint8_t>(i * 7 + i / 300);
  Bytes pkg = *ReadFile(Seal(pt), 1 << 30);
  std::string hay(pkg.begin(), pkg.end());
  for (size_t off = 0; off + 32 <= pt.size(); off += 4096)
    EXPECT_EQ(hay.find(std::string(pt.begin() + off, pt.begin() + off + 32)), std::string::npos);
}

TEST_F(PackageTest, RefusesOtherRecipient) {
  auto pkg = Seal(RandomBytes(100));
  auto out = Open(pkg, "dev2");
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code, ErrorCode::kRefused);
  // And a processor with another key-wrap key cannot unwrap it either.
  wrap_key_ = *EcPrivateKey::Generate();
  EXPECT_FALSE(Open(pkg).has_value());
}

TEST_F(PackageTest, RefusesOtherServerKey) {
  auto pkg = Seal(RandomBytes(100));
  server_key_ = *EcPrivateKey::Generate();
  EXPECT_EQ(Open(pkg).error().code, ErrorCode::kCryptoFailure);
}

TEST_F(PackageTest, EveryFlippedByteIsRefused) {
  Bytes pt = RandomBytes(2 * kChunkSize + 3);
  auto pkg = Seal(pt);
  Bytes original = *ReadFile(pkg, 1 << 30);
  // Every byte of the prefix and manifest, then a sample across the payload.
  std::vector<size_t> positions;
  size_t prefix_end = kPackagePrefixFixedSize + LoadU32(original.data() + 8);
  for (size_t i = 0; i < prefix_end; ++i) positions.push_back(i);
  for (size_t i = prefix_end; i < original.size(); i += 997) positions.push_back(i);
  positions.push_back(original.size() - 1);
  for (size_t pos : positions) {
    Bytes b = original;
    b[pos] ^= 0x01;
    ASSERT_TRUE(WriteFileAtomic(pkg, b).has_value());
    auto out = Open(pkg);
    // A flip inside base64url padding bits may decode to the same value only
    // if the decoder were lax; ours is canonical, so every flip must fail.
    EXPECT_FALSE(out.has_value()) << "flip at " << pos;
  }
}

TEST_F(PackageTest, TruncationAndTrailingBytesAreRefused) {
  auto pkg = Seal(RandomBytes(kChunkSize + 100));
  Bytes original = *ReadFile(pkg, 1 << 30);
  for (size_t cut : {size_t{0}, size_t{5}, size_t{12}, original.size() / 2, original.size() - 1}) {
    ASSERT_TRUE(WriteFileAtomic(pkg, ByteView(original).first(cut)).has_value());
    EXPECT_FALSE(Open(pkg).has_value()) << cut;
  }
  Bytes longer = original;
  longer.push_back(0);
  ASSERT_TRUE(WriteFileAtomic(pkg, longer).has_value());
  EXPECT_FALSE(Open(pkg).has_value());
}

TEST_F(PackageTest, PrefixParserLimits) {
  Bytes bad = ToBytes("NOTAPKG!");
  EXPECT_FALSE(ParsePackagePrefix(bad).has_value());
  Bytes partial = ToBytes("SEALD");
  auto p = ParsePackagePrefix(partial);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->has_value());
  Bytes huge = ToBytes("SEALDPK1");
  huge.insert(huge.end(), {0x7f, 0xff, 0xff, 0xff});
  EXPECT_EQ(ParsePackagePrefix(huge).error().code, ErrorCode::kTooLarge);
  Bytes zero = ToBytes("SEALDPK1");
  zero.insert(zero.end(), {0, 0, 0, 0});
  EXPECT_FALSE(ParsePackagePrefix(zero).has_value());
}

}  // namespace
}  // namespace sealdrop

namespace sealdrop {
namespace {

// Found by the trp_session fuzzer: an empty first PackageData frame reached
// ParsePackagePrefix with an empty view whose data() is null, and memcmp was
// called on it (undefined behaviour, reported by UBSan).
TEST(PackagePrefix, EmptyInputNeedsMoreBytes) {
  auto r = ParsePackagePrefix(ByteView{});
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->has_value());
}

}  // namespace
}  // namespace sealdrop

namespace sealdrop {
namespace {

UniqueFd MemFile(ByteView bytes) {
  UniqueFd fd(::memfd_create("package-layout-test", MFD_CLOEXEC));
  EXPECT_TRUE(fd);
  EXPECT_EQ(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  return fd;
}

// A header-free prefix: every case ParsePackagePrefix distinguishes, each
// with the code it has always had.
TEST(PackagePrefix, EveryOutcome) {
  Bytes prefix = EncodePackagePrefix("a.b.c");
  for (size_t n = 0; n < prefix.size(); ++n) {
    auto r = ParsePackagePrefix(ByteView(prefix).first(n));
    ASSERT_TRUE(r.has_value()) << n;
    EXPECT_FALSE(r->has_value()) << n;  // more bytes needed
  }
  Bytes with_payload = prefix;
  with_payload.push_back(0xaa);
  auto whole = ParsePackagePrefix(with_payload);
  ASSERT_TRUE(whole.has_value() && whole->has_value());
  EXPECT_EQ((*whole)->manifest_jws, "a.b.c");
  EXPECT_EQ((*whole)->payload_offset, prefix.size());
  Bytes flipped = prefix;
  flipped[3] ^= 1;
  auto bad = ParsePackagePrefix(ByteView(flipped).first(4));
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kMalformed);
  Bytes over = ToBytes("SEALDPK1");
  Writer w;
  w.U32(static_cast<uint32_t>(kMaxManifestJwsSize + 1));
  over.insert(over.end(), w.bytes().begin(), w.bytes().end());
  EXPECT_EQ(ParsePackagePrefix(over).error().code, ErrorCode::kTooLarge);
}

TEST(PackageLayout, ElfTrailerIsBounded) {
  auto layout = [](ByteView bytes) {
    UniqueFd fd = MemFile(bytes);
    return ReadPackageLayout(fd.get());
  };
  const Bytes elf = {0x7f, 'E', 'L', 'F', 1, 2, 3, 4};
  Bytes good = elf;
  Bytes trailer = EncodeElfTrailer("m.m.m");
  good.insert(good.end(), trailer.begin(), trailer.end());
  auto ok = layout(good);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_TRUE(ok->elf_first);
  EXPECT_EQ(ok->manifest_jws, "m.m.m");
  EXPECT_EQ(ok->payload_size, elf.size());

  // Too short for a trailer.
  EXPECT_EQ(layout(elf).error().code, ErrorCode::kMalformed);
  // A flipped trailer magic.
  Bytes magic = good;
  magic.back() ^= 1;
  EXPECT_EQ(layout(magic).error().code, ErrorCode::kMalformed);
  // Lengths of 0, beyond the file, and beyond the maximum.
  for (uint32_t len : {0u, static_cast<uint32_t>(good.size()), static_cast<uint32_t>(kMaxManifestJwsSize + 1)}) {
    Bytes b = good;
    StoreU32(b.data() + b.size() - kElfTrailerFixedSize, len);
    auto r = layout(b);
    ASSERT_FALSE(r.has_value()) << len;
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed) << len;
  }
  // A prefix-layout file whose manifest is cut short.
  Bytes cut = EncodePackagePrefix("a.b.c");
  cut.pop_back();
  auto r = layout(cut);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
}

}  // namespace
}  // namespace sealdrop
