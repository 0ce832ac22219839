#include "package/package_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "base/files.h"
#include "base/reader.h"

namespace sealdrop {

Bytes EncodePackagePrefix(std::string_view manifest_jws) {
  Writer w;
  w.Append(std::string_view(kPackageMagic, kPackageMagicSize));
  w.U32Prefixed(AsBytes(manifest_jws));
  return w.Take();
}

Result<std::optional<PackagePrefix>> ParsePackagePrefix(ByteView head) {
  Reader r(head);
  // The magic is checked on as much of it as has arrived, so a stream that
  // is not a package fails at its first byte.
  ByteView magic;
  (void)r.ReadBytes(std::min(r.remaining(), kPackageMagicSize), &magic);
  if (AsString(magic) != std::string_view(kPackageMagic, magic.size()))
    return Fail(ErrorCode::kMalformed, "this is not a sealdrop package (bad magic)");
  if (magic.size() < kPackageMagicSize) return std::optional<PackagePrefix>();
  ByteView jws;
  switch (r.ReadU32PrefixedIn(1, kMaxManifestJwsSize, &jws)) {
    case Reader::Prefixed::kIncomplete: return std::optional<PackagePrefix>();
    case Reader::Prefixed::kOutOfRange:
      return Fail(ErrorCode::kTooLarge, "the package's manifest length is out of range");
    case Reader::Prefixed::kOk: break;
  }
  // What follows is the payload, read by the caller from payload_offset.
  PackagePrefix prefix;
  prefix.manifest_jws = ToString(jws);
  prefix.payload_offset = head.size() - r.remaining();
  return std::optional<PackagePrefix>(std::move(prefix));
}


Bytes EncodeElfTrailer(std::string_view manifest_jws) {
  Writer w;
  w.Append(manifest_jws);
  w.U32(static_cast<uint32_t>(manifest_jws.size()));
  w.Append(std::string_view(kElfTrailerMagic, kPackageMagicSize));
  return w.Take();
}

Result<PackageLayout> ReadPackageLayout(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Fail(ErrorCode::kIo, "cannot stat the package");
  if (!S_ISREG(st.st_mode)) return Fail(ErrorCode::kInvalidArgument, "the package is not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint8_t magic[4] = {};
  if (size < 4) return Fail(ErrorCode::kMalformed, "this is not a sealdrop package (too short)");
  SEALDROP_TRY(ReadExactAt(fd, std::span(magic, 4), 0));
  PackageLayout layout;
  if (!(magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F')) {
    SEALDROP_ASSIGN(PackagePrefix prefix, ReadPackagePrefix(fd));
    layout.manifest_jws = std::move(prefix.manifest_jws);
    layout.payload_offset = prefix.payload_offset;
    layout.payload_size = size - prefix.payload_offset;
    return layout;
  }
  uint8_t tail_bytes[kElfTrailerFixedSize];
  if (size < kElfTrailerFixedSize)
    return Fail(ErrorCode::kMalformed, "this ELF file is not a sealdrop package (no package trailer)");
  SEALDROP_TRY(ReadExactAt(fd, std::span(tail_bytes, sizeof tail_bytes), size - sizeof tail_bytes));
  Reader tail(ByteView(tail_bytes, sizeof tail_bytes));
  uint32_t len = 0;
  ByteView trailer_magic;
  (void)tail.ReadU32(&len);
  (void)tail.ReadBytes(kPackageMagicSize, &trailer_magic);
  SEALDROP_TRY(tail.ExpectEnd("the package trailer"));
  if (AsString(trailer_magic) != std::string_view(kElfTrailerMagic, kPackageMagicSize))
    return Fail(ErrorCode::kMalformed, "this ELF file is not a sealdrop package (no package trailer)");
  // Checked before the manifest's buffer is sized from it.
  if (len == 0 || len > kMaxManifestJwsSize || len > size - sizeof tail_bytes)
    return Fail(ErrorCode::kMalformed, "the package's manifest length is out of range");
  layout.elf_first = true;
  layout.payload_size = size - sizeof tail_bytes - len;
  layout.manifest_jws.resize(len);
  SEALDROP_TRY(ReadExactAt(fd, std::span(reinterpret_cast<uint8_t*>(layout.manifest_jws.data()), len),
                              layout.payload_size));
  return layout;
}

Result<PackagePrefix> ReadPackagePrefix(int fd) {
  Bytes head(kPackagePrefixFixedSize);
  auto read_exact = [&](uint8_t* p, size_t n, uint64_t off) { return ReadExactAt(fd, std::span(p, n), off); };
  SEALDROP_TRY(read_exact(head.data(), head.size(), 0));
  SEALDROP_ASSIGN(auto first, ParsePackagePrefix(head));
  if (first) return std::move(*first);
  // ParsePackagePrefix has checked the length against kMaxManifestJwsSize:
  // only then is the buffer sized from it.
  Reader r(head);
  uint32_t len = 0;
  if (!r.Skip(kPackageMagicSize) || !r.ReadU32(&len)) return Fail(ErrorCode::kMalformed, "the package is truncated");
  head.resize(kPackagePrefixFixedSize + len);
  SEALDROP_TRY(read_exact(head.data() + kPackagePrefixFixedSize, len, kPackagePrefixFixedSize));
  SEALDROP_ASSIGN(auto full, ParsePackagePrefix(head));
  if (!full) return Fail(ErrorCode::kMalformed, "the package is truncated");
  return std::move(*full);
}

}  // namespace sealdrop
