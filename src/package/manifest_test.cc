#include "package/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crypto/aead.h"
#include "crypto/hpke.h"
#include "crypto/random.h"
#include "package/chunked.h"

namespace sealdrop {
namespace {
using nlohmann::json;

Manifest Sample() {
  Manifest m;
  m.package_id = RandomHexId(16);
  m.program_id = 7;
  m.name = "hello";
  m.version = "1.0";
  m.kind = "data";
  m.plaintext_size = 100000;
  m.payload_suite = kChunkSuiteName;
  m.chunk_size = kChunkSize;
  m.nonce_prefix = RandomBytes(7);
  m.chunks = ChunkCount(m.plaintext_size);
  m.payload_size = SealedPayloadSize(m.plaintext_size);
  m.device_serial = "d3v1c3";
  m.recipient_key_id = RandomHexId(32);
  m.envelope_suite = kHpkeSuiteName;
  m.envelope_enc = RandomBytes(65);
  m.envelope_wrapped_key = RandomBytes(48);
  m.order_id = RandomHexId(16);
  m.issued_at = 1700000000;
  m.server_key_id = RandomHexId(32);
  return m;
}

TEST(Manifest, RoundTrips) {
  Manifest m = Sample();
  auto parsed = ParseManifest(AsBytes(SerializeManifest(m)));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(SerializeManifest(*parsed), SerializeManifest(m));
}

// Every mutation of a valid manifest below must be refused.
TEST(Manifest, RejectsEveryMalformedVariant) {
  json base = json::parse(SerializeManifest(Sample()));
  std::vector<std::function<void(json&)>> mutations = {
      [](json& j) { j.erase("format"); },
      [](json& j) { j["format"] = 2; },
      [](json& j) { j["format"] = "1"; },
      [](json& j) { j["extra"] = 1; },
      [](json& j) { j["package_id"] = "xyz"; },
      [](json& j) { j["program"].erase("kind"); },
      [](json& j) { j["program"]["kind"] = "script"; },
      [](json& j) { j["program"]["id"] = -1; },
      [](json& j) { j["program"]["name"] = std::string(300, 'a'); },
      [](json& j) { j["program"]["extra"] = true; },
      [](json& j) { j["plaintext_size"] = 5; },
      [](json& j) { j["payload"]["suite"] = "AES-CTR"; },
      [](json& j) { j["payload"]["chunk_size"] = 4096; },
      [](json& j) { j["payload"]["chunks"] = 1; },
      [](json& j) { j["payload"]["size"] = 1; },
      [](json& j) { j["payload"]["nonce_prefix"] = "AAAA"; },
      [](json& j) { j["payload"]["nonce_prefix"] = "!!"; },
      [](json& j) { j["recipient"]["key_id"] = "short"; },
      [](json& j) { j["recipient"]["device_serial"] = ""; },
      [](json& j) { j["envelope"]["suite"] = "RSA-OAEP"; },
      [](json& j) { j["envelope"]["enc"] = "AAAA"; },
      [](json& j) { j["envelope"]["wrapped_key"] = 5; },
      [](json& j) { j["order_id"] = "not hex"; },
      [](json& j) { j["issued_at"] = -5; },
      [](json& j) { j["server_key_id"] = nullptr; },
      [](json& j) { j = json::array(); },
  };
  for (size_t i = 0; i < mutations.size(); ++i) {
    json j = base;
    mutations[i](j);
    EXPECT_FALSE(ParseManifest(AsBytes(j.dump())).has_value()) << "mutation " << i;
  }
}

Manifest ElfSample() {
  Manifest m = Sample();
  m.kind = "elf";
  m.payload_suite = kElfSuiteName;
  m.chunk_size = 0;
  m.chunks = 0;
  m.plaintext_size = 20000;
  m.payload_size = 20000;
  m.plain_sha256 = RandomBytes(32);
  m.ranges = {{4096, 1000, RandomBytes(16)}, {8192, 4000, RandomBytes(16)}};
  return m;
}

TEST(Manifest, ElfRoundTrips) {
  Manifest m = ElfSample();
  auto parsed = ParseManifest(AsBytes(SerializeManifest(m)));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(SerializeManifest(*parsed), SerializeManifest(m));
  ASSERT_EQ(parsed->ranges.size(), 2u);
  EXPECT_EQ(parsed->ranges[1].offset, 8192u);
  EXPECT_EQ(parsed->ranges[1].tag, m.ranges[1].tag);
  EXPECT_FALSE(parsed->rights.export_plaintext);
}

TEST(Manifest, DataCarriesTheExportRight) {
  Manifest m = Sample();
  m.rights.export_plaintext = true;
  auto parsed = ParseManifest(AsBytes(SerializeManifest(m)));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_TRUE(parsed->rights.export_plaintext);
}

TEST(Manifest, RejectsEveryMalformedElfVariant) {
  json base = json::parse(SerializeManifest(ElfSample()));
  std::vector<std::function<void(json&)>> mutations = {
      [](json& j) { j["payload"]["suite"] = kChunkSuiteName; },
      [](json& j) { j["program"]["kind"] = "data"; },  // elf payload members under data
      [](json& j) { j["payload"]["chunks"] = 1; },
      [](json& j) { j["payload"].erase("ranges"); },
      [](json& j) { j["payload"].erase("plain_sha256"); },
      [](json& j) { j["payload"]["plain_sha256"] = "AAAA"; },
      [](json& j) { j["payload"]["size"] = 19999; },
      [](json& j) { j["payload"]["ranges"] = json::array(); },
      [](json& j) { j["payload"]["ranges"] = json::object(); },
      [](json& j) { j["payload"]["ranges"][0]["size"] = 0; },
      [](json& j) { j["payload"]["ranges"][0]["tag"] = "AAAA"; },
      [](json& j) { j["payload"]["ranges"][0]["extra"] = 1; },
      [](json& j) { j["payload"]["ranges"][0].erase("offset"); },
      [](json& j) { j["payload"]["ranges"][0]["offset"] = 8192; },              // overlaps the next
      [](json& j) { std::swap(j["payload"]["ranges"][0], j["payload"]["ranges"][1]); },  // unordered
      [](json& j) { j["payload"]["ranges"][1]["size"] = 20000; },               // past the end
      [](json& j) { j["payload"]["ranges"][1]["offset"] = uint64_t{1} << 63; },
      [](json& j) { j["payload"]["ranges"][0] = 5; },
      [](json& j) {
        json many = json::array();
        for (uint64_t i = 0; i < kMaxProtectedRanges + 1; ++i)
          many.push_back({{"offset", i * 2}, {"size", 1}, {"tag", j["payload"]["ranges"][0]["tag"]}});
        j["payload"]["ranges"] = many;
      },
      [](json& j) { j["rights"]["export"] = true; },  // never for a program
      [](json& j) { j["rights"]["export"] = 1; },
      [](json& j) { j.erase("rights"); },
      [](json& j) { j["rights"]["run"] = true; },
  };
  for (size_t i = 0; i < mutations.size(); ++i) {
    json j = base;
    mutations[i](j);
    EXPECT_FALSE(ParseManifest(AsBytes(j.dump())).has_value()) << "mutation " << i;
  }
}

TEST(Manifest, RejectsTruncatedFlippedAndOversized) {
  std::string text = SerializeManifest(Sample());
  for (size_t cut = 0; cut < text.size(); cut += 7)
    EXPECT_FALSE(ParseManifest(AsBytes(text.substr(0, cut))).has_value()) << cut;
  std::string big(kMaxManifestJsonSize + 1, ' ');
  EXPECT_EQ(ParseManifest(AsBytes(big)).error().code, ErrorCode::kTooLarge);
  EXPECT_FALSE(ParseManifest(AsBytes("\xff\xfe{}")).has_value());
}

}  // namespace
}  // namespace sealdrop
