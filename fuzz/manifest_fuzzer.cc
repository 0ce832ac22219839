// ParseManifest on arbitrary bytes (the payload of a manifest JWS, which the
// processor parses before and after checking its signature).
//
// Correctness, not only crashes: whatever ParseManifest accepts must
// serialise, and the serialisation must parse back to the same manifest
// (the same serialisation). A field the parser accepts but the writer cannot
// reproduce would make a signed manifest mean two things.
#include <cstdint>

#include "fuzz_util.h"
#include "package/manifest.h"

using namespace sealdrop;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = ParseManifest(ByteView(data, size));
  if (!m) {
    FUZZ_CHECK(m.error().code == ErrorCode::kMalformed || m.error().code == ErrorCode::kTooLarge,
               "unexpected error code: " + m.error().message);
    return 0;
  }
  const std::string first = SerializeManifest(*m);
  auto again = ParseManifest(AsBytes(first));
  FUZZ_CHECK(again.has_value(), "the serialised manifest does not parse: " +
                                    (again ? std::string() : again.error().message) + "\n" + first);
  const std::string second = SerializeManifest(*again);
  FUZZ_CHECK(second == first, "serialise(parse(serialise(m))) differs:\n" + first + "\n" + second);
  // The fields the writer does not derive from JSON keys directly.
  FUZZ_CHECK(again->ranges.size() == m->ranges.size() && again->rights.export_plaintext == m->rights.export_plaintext,
             "ranges or rights changed in the round trip");
  (void)EnvelopeAad(*m);
  return 0;
}
