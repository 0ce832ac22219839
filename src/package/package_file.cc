#include "package/package_file.h"

#include <unistd.h>

#include <cstring>

#include "base/reader.h"

namespace sealdrop {

Bytes EncodePackagePrefix(std::string_view manifest_jws) {
  Writer w;
  w.Append(std::string_view(kPackageMagic, kPackageMagicSize));
  w.U32Prefixed(AsBytes(manifest_jws));
  return w.Take();
}

Result<std::optional<PackagePrefix>> ParsePackagePrefix(ByteView head) {
  size_t have_magic = std::min(head.size(), kPackageMagicSize);
  if (std::memcmp(head.data(), kPackageMagic, have_magic) != 0)
    return Fail(ErrorCode::kMalformed, "this is not a sealdrop package (bad magic)");
  if (head.size() < kPackagePrefixFixedSize) return std::optional<PackagePrefix>();
  uint32_t len = LoadU32(head.data() + kPackageMagicSize);
  if (len == 0 || len > kMaxManifestJwsSize)
    return Fail(ErrorCode::kTooLarge, "the package's manifest length is out of range");
  if (head.size() < kPackagePrefixFixedSize + len) return std::optional<PackagePrefix>();
  PackagePrefix prefix;
  prefix.manifest_jws.assign(reinterpret_cast<const char*>(head.data()) + kPackagePrefixFixedSize, len);
  prefix.payload_offset = kPackagePrefixFixedSize + len;
  return std::optional<PackagePrefix>(std::move(prefix));
}

Result<PackagePrefix> ReadPackagePrefix(int fd) {
  Bytes head(kPackagePrefixFixedSize);
  auto read_exact = [&](uint8_t* p, size_t n, uint64_t off) -> Status {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(off + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Fail(ErrorCode::kIo, std::string("cannot read the package: ") + std::strerror(errno));
      if (r == 0) return Fail(ErrorCode::kMalformed, "the package is truncated");
      done += static_cast<size_t>(r);
    }
    return Ok();
  };
  SEALDROP_TRY(read_exact(head.data(), head.size(), 0));
  SEALDROP_ASSIGN(auto first, ParsePackagePrefix(head));
  if (first) return std::move(*first);
  uint32_t len = LoadU32(head.data() + kPackageMagicSize);
  head.resize(kPackagePrefixFixedSize + len);
  SEALDROP_TRY(read_exact(head.data() + kPackagePrefixFixedSize, len, kPackagePrefixFixedSize));
  SEALDROP_ASSIGN(auto full, ParsePackagePrefix(head));
  if (!full) return Fail(ErrorCode::kMalformed, "the package is truncated");
  return std::move(*full);
}

}  // namespace sealdrop
