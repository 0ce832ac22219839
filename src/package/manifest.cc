#include "package/manifest.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/ec.h"
#include "crypto/hpke.h"
#include "package/chunked.h"

namespace sealdrop {
namespace {
using nlohmann::json;

bool IsHexId(const std::string& s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Field readers that refuse missing fields and wrong types.
struct Fields {
  const json& obj;
  std::string where;
  Result<const json*> Get(const char* key) const {
    auto it = obj.find(key);
    if (it == obj.end()) return Fail(ErrorCode::kMalformed, where + " has no \"" + key + "\"");
    return &*it;
  }
  Result<std::string> Str(const char* key, size_t max = kMaxManifestStringSize) const {
    SEALDROP_ASSIGN(const json* v, Get(key));
    if (!v->is_string()) return Fail(ErrorCode::kMalformed, where + "." + key + " is not a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max) return Fail(ErrorCode::kTooLarge, where + "." + key + " is too long");
    return s;
  }
  Result<uint64_t> U64(const char* key) const {
    SEALDROP_ASSIGN(const json* v, Get(key));
    if (!v->is_number_unsigned())
      return Fail(ErrorCode::kMalformed, where + "." + key + " is not a non-negative integer");
    return v->get<uint64_t>();
  }
  Result<Bytes> B64(const char* key, size_t exact) const {
    SEALDROP_ASSIGN(std::string s, Str(key, 4 * exact));
    SEALDROP_ASSIGN(Bytes b, Base64UrlDecode(s));
    if (b.size() != exact)
      return Fail(ErrorCode::kMalformed, where + "." + key + " has the wrong length");
    return b;
  }
  Result<const json*> Obj(const char* key, std::initializer_list<const char*> allowed) const {
    SEALDROP_ASSIGN(const json* v, Get(key));
    if (!v->is_object()) return Fail(ErrorCode::kMalformed, where + "." + key + " is not an object");
    SEALDROP_TRY(OnlyKeys(*v, allowed, where + "." + key));
    return v;
  }
  static Status OnlyKeys(const json& v, std::initializer_list<const char*> allowed,
                         const std::string& where) {
    if (v.size() != allowed.size())
      return Fail(ErrorCode::kMalformed, where + " has missing or unknown fields");
    for (const char* k : allowed)
      if (!v.contains(k)) return Fail(ErrorCode::kMalformed, where + " has no \"" + k + "\"");
    return Ok();
  }
};

Result<Manifest> ParseObject(const json& root) {
  if (!root.is_object()) return Fail(ErrorCode::kMalformed, "the manifest is not a JSON object");
  SEALDROP_TRY(Fields::OnlyKeys(root,
                                {"format", "package_id", "program", "plaintext_size", "payload",
                                 "rights", "recipient", "envelope", "order_id", "issued_at",
                                 "server_key_id"},
                                "manifest"));
  Fields f{root, "manifest"};
  Manifest m;
  SEALDROP_ASSIGN(uint64_t format, f.U64("format"));
  if (format != kManifestFormat)
    return Fail(ErrorCode::kMalformed, "the manifest format " + std::to_string(format) +
                                           " is not supported by this version");
  SEALDROP_ASSIGN(m.package_id, f.Str("package_id"));
  if (!IsHexId(m.package_id, 32, 32)) return Fail(ErrorCode::kMalformed, "manifest.package_id is not a 32-hex id");

  SEALDROP_ASSIGN(const json* program, f.Obj("program", {"id", "name", "version", "kind"}));
  Fields p{*program, "manifest.program"};
  SEALDROP_ASSIGN(uint64_t pid, p.U64("id"));
  if (pid > static_cast<uint64_t>(INT64_MAX)) return Fail(ErrorCode::kMalformed, "manifest.program.id is out of range");
  m.program_id = static_cast<int64_t>(pid);
  SEALDROP_ASSIGN(m.name, p.Str("name"));
  SEALDROP_ASSIGN(m.version, p.Str("version"));
  SEALDROP_ASSIGN(m.kind, p.Str("kind"));
  if (m.kind != "data" && m.kind != "elf")
    return Fail(ErrorCode::kMalformed, "manifest.program.kind must be \"data\" or \"elf\"");
  SEALDROP_ASSIGN(m.plaintext_size, f.U64("plaintext_size"));
  if (m.plaintext_size > kMaxChunks * kChunkSize)  // before any size arithmetic can wrap
    return Fail(ErrorCode::kTooLarge, "manifest.plaintext_size is beyond the largest package");

  SEALDROP_ASSIGN(const json* payload_any, f.Get("payload"));
  if (!payload_any->is_object()) return Fail(ErrorCode::kMalformed, "manifest.payload is not an object");
  if (m.kind == "data") {
    SEALDROP_ASSIGN(const json* payload,
                    f.Obj("payload", {"suite", "chunk_size", "nonce_prefix", "chunks", "size"}));
    Fields pl{*payload, "manifest.payload"};
    SEALDROP_ASSIGN(m.payload_suite, pl.Str("suite"));
    if (m.payload_suite != kChunkSuiteName)
      return Fail(ErrorCode::kMalformed, "manifest.payload.suite is not a known suite for data");
    SEALDROP_ASSIGN(uint64_t chunk_size, pl.U64("chunk_size"));
    if (chunk_size != kChunkSize) return Fail(ErrorCode::kMalformed, "manifest.payload.chunk_size is wrong for the suite");
    m.chunk_size = static_cast<uint32_t>(chunk_size);
    SEALDROP_ASSIGN(m.nonce_prefix, pl.B64("nonce_prefix", kChunkNoncePrefixSize));
    SEALDROP_ASSIGN(m.chunks, pl.U64("chunks"));
    SEALDROP_ASSIGN(m.payload_size, pl.U64("size"));
    if (m.chunks > kMaxChunks || m.chunks != ChunkCount(m.plaintext_size) ||
        m.payload_size != SealedPayloadSize(m.plaintext_size))
      return Fail(ErrorCode::kMalformed, "manifest.payload sizes are inconsistent");
  } else {
    SEALDROP_ASSIGN(const json* payload,
                    f.Obj("payload", {"suite", "nonce_prefix", "size", "plain_sha256", "ranges"}));
    Fields pl{*payload, "manifest.payload"};
    SEALDROP_ASSIGN(m.payload_suite, pl.Str("suite"));
    if (m.payload_suite != kElfSuiteName)
      return Fail(ErrorCode::kMalformed, "manifest.payload.suite is not a known suite for programs");
    SEALDROP_ASSIGN(m.nonce_prefix, pl.B64("nonce_prefix", kChunkNoncePrefixSize));
    SEALDROP_ASSIGN(m.payload_size, pl.U64("size"));
    SEALDROP_ASSIGN(m.plain_sha256, pl.B64("plain_sha256", 32));
    if (m.payload_size != m.plaintext_size)
      return Fail(ErrorCode::kMalformed, "manifest.payload.size differs from the program's size");
    SEALDROP_ASSIGN(const json* ranges, pl.Get("ranges"));
    if (!ranges->is_array() || ranges->empty() || ranges->size() > kMaxProtectedRanges)
      return Fail(ErrorCode::kMalformed, "manifest.payload.ranges must list 1 to 512 ranges");
    uint64_t end = 0;
    for (const json& r : *ranges) {
      if (!r.is_object()) return Fail(ErrorCode::kMalformed, "manifest.payload.ranges holds a non-object");
      SEALDROP_TRY(Fields::OnlyKeys(r, {"offset", "size", "tag"}, "manifest.payload.ranges[]"));
      Fields rf{r, "manifest.payload.ranges[]"};
      SealedRange sr;
      SEALDROP_ASSIGN(sr.offset, rf.U64("offset"));
      SEALDROP_ASSIGN(sr.size, rf.U64("size"));
      SEALDROP_ASSIGN(sr.tag, rf.B64("tag", kGcmTagSize));
      if (sr.size == 0 || sr.offset < end || sr.offset > m.payload_size || sr.size > m.payload_size - sr.offset)
        return Fail(ErrorCode::kMalformed, "manifest.payload.ranges are empty, unordered, overlapping or outside the program");
      end = sr.offset + sr.size;
      m.ranges.push_back(std::move(sr));
    }
  }
  SEALDROP_ASSIGN(const json* rights, f.Obj("rights", {"export"}));
  auto exp = rights->find("export");
  if (!exp->is_boolean()) return Fail(ErrorCode::kMalformed, "manifest.rights.export is not a boolean");
  m.rights.export_plaintext = exp->get<bool>();
  if (m.kind == "elf" && m.rights.export_plaintext)
    return Fail(ErrorCode::kMalformed, "manifest.rights.export is never granted for a program");

  SEALDROP_ASSIGN(const json* recipient, f.Obj("recipient", {"device_serial", "key_id"}));
  Fields r{*recipient, "manifest.recipient"};
  SEALDROP_ASSIGN(m.device_serial, r.Str("device_serial"));
  SEALDROP_ASSIGN(m.recipient_key_id, r.Str("key_id"));
  if (m.device_serial.empty() || !IsHexId(m.recipient_key_id, 64, 64))
    return Fail(ErrorCode::kMalformed, "manifest.recipient is malformed");

  SEALDROP_ASSIGN(const json* envelope, f.Obj("envelope", {"suite", "enc", "wrapped_key"}));
  Fields e{*envelope, "manifest.envelope"};
  SEALDROP_ASSIGN(m.envelope_suite, e.Str("suite"));
  if (m.envelope_suite != kHpkeSuiteName)
    return Fail(ErrorCode::kMalformed, "manifest.envelope.suite is not a known suite");
  SEALDROP_ASSIGN(m.envelope_enc, e.B64("enc", kP256PointSize));
  SEALDROP_ASSIGN(m.envelope_wrapped_key, e.B64("wrapped_key", kAes256KeySize + kGcmTagSize));

  SEALDROP_ASSIGN(m.order_id, f.Str("order_id"));
  if (!IsHexId(m.order_id, 16, 64)) return Fail(ErrorCode::kMalformed, "manifest.order_id is malformed");
  SEALDROP_ASSIGN(uint64_t issued, f.U64("issued_at"));
  if (issued > static_cast<uint64_t>(INT64_MAX)) return Fail(ErrorCode::kMalformed, "manifest.issued_at is out of range");
  m.issued_at = static_cast<int64_t>(issued);
  SEALDROP_ASSIGN(m.server_key_id, f.Str("server_key_id"));
  if (!IsHexId(m.server_key_id, 64, 64)) return Fail(ErrorCode::kMalformed, "manifest.server_key_id is malformed");
  return m;
}
json PayloadJson(const Manifest& m) {
  if (m.kind != "elf")
    return {{"suite", m.payload_suite},
            {"chunk_size", m.chunk_size},
            {"nonce_prefix", Base64UrlEncode(m.nonce_prefix)},
            {"chunks", m.chunks},
            {"size", m.payload_size}};
  json ranges = json::array();
  for (const SealedRange& r : m.ranges)
    ranges.push_back({{"offset", r.offset}, {"size", r.size}, {"tag", Base64UrlEncode(r.tag)}});
  return {{"suite", m.payload_suite},
          {"nonce_prefix", Base64UrlEncode(m.nonce_prefix)},
          {"size", m.payload_size},
          {"plain_sha256", Base64UrlEncode(m.plain_sha256)},
          {"ranges", std::move(ranges)}};
}

}  // namespace

std::string SerializeManifest(const Manifest& m) {
  json j = {
      {"format", m.format},
      {"package_id", m.package_id},
      {"program", {{"id", m.program_id}, {"name", m.name}, {"version", m.version}, {"kind", m.kind}}},
      {"plaintext_size", m.plaintext_size},
      {"payload", PayloadJson(m)},
      {"rights", {{"export", m.rights.export_plaintext}}},
      {"recipient", {{"device_serial", m.device_serial}, {"key_id", m.recipient_key_id}}},
      {"envelope",
       {{"suite", m.envelope_suite},
        {"enc", Base64UrlEncode(m.envelope_enc)},
        {"wrapped_key", Base64UrlEncode(m.envelope_wrapped_key)}}},
      {"order_id", m.order_id},
      {"issued_at", m.issued_at},
      {"server_key_id", m.server_key_id},
  };
  return j.dump();
}

Result<Manifest> ParseManifest(ByteView bytes) {
  if (bytes.size() > kMaxManifestJsonSize) return Fail(ErrorCode::kTooLarge, "the manifest is too large");
  json root = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Fail(ErrorCode::kMalformed, "the manifest is not valid JSON");
  return ParseObject(root);
}

Bytes EnvelopeInfo() { return ToBytes("sealdrop package key v1"); }

Bytes EnvelopeAad(const Manifest& m) {
  json j = {{"package_id", m.package_id},
            {"program_id", m.program_id},
            {"device_serial", m.device_serial},
            {"key_id", m.recipient_key_id}};
  return ToBytes(j.dump());
}

}  // namespace sealdrop
