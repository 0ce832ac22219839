#include <algorithm>

#include "package/protected_elf.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/files.h"
#include "base/reader.h"
#include "crypto/sha256.h"
#include "package/chunked.h"

namespace sealdrop {
namespace {

constexpr std::string_view kAadLabel = "sealdrop elf v1";
constexpr uint8_t kNonceTag = 0x02;

}  // namespace

Bytes ElfRangeNonce(ByteView nonce_prefix, uint32_t index) {
  Writer w;
  w.Append(nonce_prefix);
  w.U32(index);
  w.U8(kNonceTag);
  return w.Take();
}

Bytes ElfRangeAad(ByteView plain_sha256, uint32_t index, uint64_t offset, uint64_t size) {
  Writer w;
  w.Append(kAadLabel);
  w.Append(plain_sha256);
  w.U32(index);
  w.U64(offset);
  w.U64(size);
  return w.Take();
}

Bytes PlainPartsHash(ByteView file, const std::vector<FileRange>& ranges) {
  Sha256 h;
  uint64_t at = 0;
  for (const FileRange& r : ranges) {
    h.Update(file.subspan(at, r.offset - at));
    at = r.offset + r.size;
  }
  h.Update(file.subspan(at));
  Digest d = h.Final();
  return Bytes(d.begin(), d.end());
}

Result<ElfPlan> PlanProtectedElf(ByteView file) {
  ElfPlan plan;
  SEALDROP_ASSIGN(plan.image, ParseElf(file));
  SEALDROP_TRY(CheckNoWritableCode(plan.image));
  SEALDROP_TRY(CheckLibrarySearchPaths(plan.image));
  SEALDROP_ASSIGN(plan.ranges, ProtectedRanges(plan.image, file.size()));
  if (plan.ranges.size() > kMaxProtectedRanges)
    return Fail(ErrorCode::kInvalidArgument, "the ELF file has more separate encrypted ranges than a manifest can list");
  plan.plain_sha256 = PlainPartsHash(file, plan.ranges);
  return plan;
}

ElfSealStream::ElfSealStream(ByteView file, std::vector<FileRange> ranges, Bytes plain_sha256,
                             Aes256GcmRaw aead, Bytes nonce_prefix, std::vector<Bytes> expected)
    : file_(file),
      ranges_(std::move(ranges)),
      plain_sha256_(std::move(plain_sha256)),
      aead_(std::move(aead)),
      nonce_prefix_(std::move(nonce_prefix)),
      expected_(std::move(expected)) {}

Result<ElfSealStream> ElfSealStream::Create(ByteView file, const std::vector<FileRange>& ranges,
                                            ByteView plain_sha256, const SecretBytes& kx,
                                            ByteView nonce_prefix, std::vector<Bytes> expected_tags) {
  if (nonce_prefix.size() != kChunkNoncePrefixSize)
    return Fail(ErrorCode::kInvalidArgument, "the nonce prefix has the wrong size");
  if (!expected_tags.empty() && expected_tags.size() != ranges.size())
    return Fail(ErrorCode::kInvalidArgument, "one expected tag per range is needed");
  SEALDROP_ASSIGN(Aes256GcmRaw aead, Aes256GcmRaw::Create(kx));
  return ElfSealStream(file, ranges, Bytes(plain_sha256.begin(), plain_sha256.end()), std::move(aead),
                       Bytes(nonce_prefix.begin(), nonce_prefix.end()), std::move(expected_tags));
}

Result<bool> ElfSealStream::Next(Bytes& out, size_t max) {
  if (position_ == file_.size()) return false;
  uint64_t limit = file_.size();
  bool in_range = false;
  if (range_ < ranges_.size()) {
    const FileRange& r = ranges_[range_];
    if (position_ >= r.offset) {
      in_range = true;
      limit = r.offset + r.size;
      if (position_ == r.offset) {
        SEALDROP_TRY(aead_.Begin(ElfRangeNonce(nonce_prefix_, static_cast<uint32_t>(range_)),
                                 ElfRangeAad(plain_sha256_, static_cast<uint32_t>(range_), r.offset, r.size),
                                 true));
      }
    } else {
      limit = r.offset;
    }
  }
  size_t n = static_cast<size_t>(std::min<uint64_t>(max, limit - position_));
  size_t at = out.size();
  out.insert(out.end(), file_.begin() + static_cast<ptrdiff_t>(position_),
             file_.begin() + static_cast<ptrdiff_t>(position_ + n));
  position_ += n;
  if (in_range) {
    SEALDROP_TRY(aead_.Update(std::span(out.data() + at, n)));
    if (position_ == limit) {
      Bytes tag(kGcmTagSize);
      SEALDROP_TRY(aead_.FinishSeal(std::span<uint8_t, kGcmTagSize>(tag.data(), kGcmTagSize)));
      if (!expected_.empty() && tag != expected_[range_])
        return Fail(ErrorCode::kIo, "the program file changed while it was being sealed");
      tags_.push_back(std::move(tag));
      ++range_;
    }
  }
  return true;
}

Status DecryptProtectedElf(int fd, const Manifest& m, const SecretBytes& kx,
                           const std::function<Status(ByteView)>& sink) {
  if (m.payload_suite != kElfSuiteName || m.ranges.empty())
    return Fail(ErrorCode::kMalformed, "the package is not a protected ELF");
  for (const SealedRange& r : m.ranges)
    if (r.tag.size() != kGcmTagSize) return Fail(ErrorCode::kMalformed, "a range's tag has the wrong size");
  SEALDROP_ASSIGN(Aes256GcmRaw aead, Aes256GcmRaw::Create(kx));
  Sha256 plain_hash;
  // At most 1 MiB, and no more than the payload: zeroing and wiping a
  // 1 MiB buffer for a 20 KiB program was most of its decryption time.
  const size_t kBuffer = static_cast<size_t>(std::clamp<uint64_t>(m.payload_size, 1, 1 << 20));
  Bytes buf(kBuffer);
  // The buffer holds plaintext: wiped on every way out.
  struct Wipe {
    Bytes& b;
    ~Wipe() { SecureWipe(b.data(), b.size()); }
  } wipe{buf};
  bool tags_ok = true;
  uint64_t at = 0;
  auto pass_plain = [&](uint64_t end) -> Status {
    while (at < end) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kBuffer, end - at));
      SEALDROP_TRY(ReadExactAt(fd, std::span(buf.data(), n), at));
      plain_hash.Update(ByteView(buf.data(), n));
      SEALDROP_TRY(sink(ByteView(buf.data(), n)));
      at += n;
    }
    return Ok();
  };
  for (size_t i = 0; i < m.ranges.size(); ++i) {
    const SealedRange& r = m.ranges[i];
    SEALDROP_TRY(pass_plain(r.offset));
    SEALDROP_TRY(aead.Begin(ElfRangeNonce(m.nonce_prefix, static_cast<uint32_t>(i)),
                            ElfRangeAad(m.plain_sha256, static_cast<uint32_t>(i), r.offset, r.size), false));
    uint64_t end = r.offset + r.size;
    while (at < end) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kBuffer, end - at));
      SEALDROP_TRY(ReadExactAt(fd, std::span(buf.data(), n), at));
      SEALDROP_TRY(aead.Update(std::span(buf.data(), n)));
      SEALDROP_TRY(sink(ByteView(buf.data(), n)));
      at += n;
    }
    if (!aead.FinishOpen(std::span<const uint8_t, kGcmTagSize>(r.tag.data(), kGcmTagSize))) {
      tags_ok = false;
      break;
    }
  }
  if (tags_ok) SEALDROP_TRY(pass_plain(m.payload_size));
  Digest d = plain_hash.Final();
  if (!tags_ok || !ConstantTimeEqual(ByteView(d.data(), d.size()), m.plain_sha256))
    return Fail(ErrorCode::kCryptoFailure, "the protected program does not match its manifest");
  return Ok();
}

}  // namespace sealdrop
