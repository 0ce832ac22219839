// The stored package's framing: ParsePackagePrefix on the bytes as they
// stream in (the processor parses the prefix of every download), and
// ReadPackageLayout on a file holding them (the processor reads stored
// packages of both layouts before running or opening them).
//
// Checks beyond crashes:
//  - a parsed prefix re-encodes (EncodePackagePrefix) to exactly the bytes it
//    came from, and every shorter head of it says "need more", never an error
//    or a different prefix (the streaming parser sees any split);
//  - ReadPackagePrefix on the file agrees with ParsePackagePrefix on the bytes;
//  - an accepted layout accounts for every byte of the file: prefix +
//    payload, or payload + EncodeElfTrailer(manifest).
#include <cstdint>
#include <cstring>

#include "fuzz_util.h"
#include "package/package_file.h"

using namespace sealdrop;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView in(data, size);
  auto prefix = ParsePackagePrefix(in);
  if (prefix && *prefix) {
    const PackagePrefix& p = **prefix;
    FUZZ_CHECK(p.payload_offset == kPackagePrefixFixedSize + p.manifest_jws.size() && p.payload_offset <= size,
               "payload offset");
    Bytes encoded = EncodePackagePrefix(p.manifest_jws);
    FUZZ_CHECK(encoded.size() == p.payload_offset && std::memcmp(encoded.data(), data, encoded.size()) == 0,
               "the prefix does not re-encode to its bytes");
    for (size_t cut : {size_t{0}, size_t{1}, kPackageMagicSize, kPackagePrefixFixedSize - 1,
                       kPackagePrefixFixedSize, static_cast<size_t>(p.payload_offset) - 1}) {
      if (cut >= p.payload_offset) continue;
      auto head = ParsePackagePrefix(in.first(cut));
      FUZZ_CHECK(head.has_value() && !*head, "a head of a valid prefix is not 'need more' at " + std::to_string(cut));
    }
  }

  fuzz::MemFd file(in);
  auto from_fd = ReadPackagePrefix(file.fd());
  if (prefix && *prefix) {
    FUZZ_CHECK(from_fd.has_value() && from_fd->manifest_jws == (*prefix)->manifest_jws &&
                   from_fd->payload_offset == (*prefix)->payload_offset,
               "ReadPackagePrefix disagrees with ParsePackagePrefix");
  } else {
    FUZZ_CHECK(!from_fd.has_value(), "ReadPackagePrefix accepted what ParsePackagePrefix did not");
  }

  auto layout = ReadPackageLayout(file.fd());
  if (!layout) return 0;
  FUZZ_CHECK(!layout->manifest_jws.empty() && layout->manifest_jws.size() <= kMaxManifestJwsSize, "manifest size");
  if (!layout->elf_first) {
    FUZZ_CHECK(prefix && *prefix && layout->manifest_jws == (*prefix)->manifest_jws &&
                   layout->payload_offset == (*prefix)->payload_offset,
               "prefix layout disagrees with ParsePackagePrefix");
    FUZZ_CHECK(layout->payload_offset + layout->payload_size == size, "prefix layout does not cover the file");
  } else {
    FUZZ_CHECK(size >= 4 && std::memcmp(data, "\x7f" "ELF", 4) == 0, "ELF-first layout without ELF magic");
    FUZZ_CHECK(layout->payload_offset == 0, "ELF-first payload does not start the file");
    Bytes trailer = EncodeElfTrailer(layout->manifest_jws);
    FUZZ_CHECK(layout->payload_size + trailer.size() == size &&
                   std::memcmp(trailer.data(), data + layout->payload_size, trailer.size()) == 0,
               "ELF-first layout does not re-encode to the file's tail");
  }
  return 0;
}
