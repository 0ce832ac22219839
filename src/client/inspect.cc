#include "client/inspect.h"

#include <elf.h>
#include <sys/mman.h>

#include <chrono>
#include <sstream>

#include "base/encoding.h"
#include "base/time_format.h"
#include "client/progress.h"
#include "crypto/jws.h"
#include "package/elf.h"
#include "package/manifest.h"
#include "package/package_file.h"
#include "package/protected_elf.h"

namespace sealdrop {
namespace {
using nlohmann::json;

std::string MachineName(uint16_t machine) {
  switch (machine) {
    case EM_X86_64: return "x86-64";
    case EM_AARCH64: return "AArch64";
    case EM_386: return "i386";
    case EM_RISCV: return "RISC-V";
    default: return "machine " + std::to_string(machine);
  }
}

std::string SectionTypeName(uint32_t type) {
  switch (type) {
    case SHT_PROGBITS: return "PROGBITS";
    case SHT_SYMTAB: return "SYMTAB";
    case SHT_STRTAB: return "STRTAB";
    case SHT_RELA: return "RELA";
    case SHT_REL: return "REL";
    case SHT_HASH: return "HASH";
    case SHT_DYNAMIC: return "DYNAMIC";
    case SHT_NOTE: return "NOTE";
    case SHT_NOBITS: return "NOBITS";
    case SHT_DYNSYM: return "DYNSYM";
    case SHT_INIT_ARRAY: return "INIT_ARRAY";
    case SHT_FINI_ARRAY: return "FINI_ARRAY";
    case SHT_GNU_HASH: return "GNU_HASH";
    case SHT_GNU_versym: return "VERSYM";
    case SHT_GNU_verneed: return "VERNEED";
    case SHT_GNU_verdef: return "VERDEF";
    default: return "0x" + HexEncode(Bytes{static_cast<uint8_t>(type >> 24), static_cast<uint8_t>(type >> 16),
                                           static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type)});
  }
}

json SignatureStatus(const std::string& manifest_jws, const Jws& jws,
                     const std::optional<Certificate>& cert) {
  if (!cert)
    return {{"status", "unchecked"},
            {"detail", "no server certificate is known here; connect to the server once (any sealdrop command) or pass --cert"}};
  const EcPublicKey key = cert->PublicKey();
  json j = {{"certificate", cert->SubjectCommonName()}, {"certificate_key_id", key.KeyId()}};
  if (JwsVerifyCompact(manifest_jws, key, kManifestJwsType)) {
    j["status"] = "valid";
    j["detail"] = "signed by the server key in the certificate of " + cert->SubjectCommonName();
  } else if (jws.kid != key.KeyId()) {
    j["status"] = "unknown-key";
    j["detail"] = "signed by a key other than the one in the server certificate known here (renewed server key?)";
  } else {
    j["status"] = "invalid";
    j["detail"] = "the manifest was altered: its signature does not verify";
  }
  return j;
}

json ElfReport(ByteView elf, const Manifest& m) {
  json out;
  auto image = ParseElf(elf);
  if (!image) {
    out["error"] = image.error().message;
    return out;
  }
  out["type"] = image->type == ET_EXEC ? "executable" : image->is_pie ? "PIE executable" : "shared object";
  out["machine"] = MachineName(image->machine);
  out["linking"] = image->is_dynamic ? "dynamic" : "static";
  out["interpreter"] = image->interpreter;
  out["needed"] = image->needed;
  if (!image->runpath.empty()) out["runpath"] = image->runpath;
  if (!image->rpath.empty()) out["rpath"] = image->rpath;
  json imports = json::array();
  for (const ElfSymbol& s : image->imports) {
    json sym = {{"name", s.name}, {"weak", s.binding == STB_WEAK}};
    if (!s.version.empty()) sym["version"] = s.version;
    imports.push_back(std::move(sym));
  }
  out["imports"] = std::move(imports);
  out["exports"] = image->exports;

  std::vector<FileRange> ranges;
  for (const SealedRange& r : m.ranges) ranges.push_back({r.offset, r.size});
  auto covered = [&](const ElfSection& s) {
    for (const FileRange& r : ranges)
      if (s.offset >= r.offset && s.offset + s.size <= r.offset + r.size) return true;
    return false;
  };
  json sections = json::array();
  uint64_t encrypted_bytes = 0;
  for (size_t i = 1; i < image->sections.size(); ++i) {
    const ElfSection& s = image->sections[i];
    bool enc = s.size != 0 && covered(s);
    json sj = {{"name", s.name}, {"type", SectionTypeName(s.type)}, {"offset", s.offset},
               {"size", s.size}, {"encrypted", enc}};
    if (!enc) sj["why_plaintext"] = ClassifySection(*image, i).reason;
    if (!enc && ClassifySection(*image, i).encrypted) sj["why_plaintext"] = "not covered by the manifest's encrypted ranges";
    sections.push_back(std::move(sj));
  }
  for (const FileRange& r : ranges) encrypted_bytes += r.size;
  out["sections"] = std::move(sections);
  out["encrypted_bytes"] = encrypted_bytes;
  Bytes plain = PlainPartsHash(elf, ranges);
  out["plaintext_parts"] = plain == m.plain_sha256 ? "match the signed manifest" : "DO NOT match the signed manifest";
  out["plaintext_parts_match"] = plain == m.plain_sha256;
  return out;
}

}  // namespace

Result<json> InspectPackage(int fd, const std::optional<Certificate>& server_cert) {
  SEALDROP_ASSIGN(PackageLayout layout, ReadPackageLayout(fd));
  SEALDROP_ASSIGN(Jws jws, JwsParse(layout.manifest_jws));
  if (jws.typ != kManifestJwsType) return Fail(ErrorCode::kMalformed, "the package's manifest has the wrong JWS type");
  SEALDROP_ASSIGN(Manifest m, ParseManifest(jws.payload));
  json r;
  r["layout"] = layout.elf_first ? "ELF first, manifest in trailer" : "manifest first";
  r["size"] = layout.payload_offset + layout.payload_size + (layout.elf_first ? layout.manifest_jws.size() + kElfTrailerFixedSize : 0);
  r["program"] = {{"id", m.program_id}, {"name", m.name}, {"version", m.version}, {"kind", m.kind}};
  r["package_id"] = m.package_id;
  r["order_id"] = m.order_id;
  r["issued_at"] = FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(m.issued_at)));
  r["recipient"] = {{"device_serial", m.device_serial}, {"key_id", m.recipient_key_id}};
  r["envelope"] = {{"suite", m.envelope_suite}};
  r["server_key_id"] = m.server_key_id;
  r["signature"] = SignatureStatus(layout.manifest_jws, jws, server_cert);
  r["rights"] = {{"run", m.kind == "elf"}, {"export", m.rights.export_plaintext}};
  r["payload"] = {{"suite", m.payload_suite}, {"size", m.payload_size}, {"plaintext_size", m.plaintext_size}};
  bool size_ok = layout.payload_size == m.payload_size && layout.elf_first == (m.kind == "elf");
  r["payload"]["size_matches_manifest"] = size_ok;
  if (m.kind == "data") {
    r["payload"]["chunks"] = m.chunks;
  } else if (size_ok) {
    void* map = ::mmap(nullptr, m.payload_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) return Fail(ErrorCode::kIo, "cannot map the package");
    r["payload"]["ranges"] = m.ranges.size();
    r["elf"] = ElfReport(ByteView(static_cast<const uint8_t*>(map), m.payload_size), m);
    ::munmap(map, m.payload_size);
  }
  return r;
}

std::string FormatInspection(const json& r) {
  std::ostringstream o;
  const json& p = r["program"];
  const bool elf = p["kind"] == "elf";
  o << "program      " << p["name"].get<std::string>() << " " << p["version"].get<std::string>() << " ("
    << (elf ? "protected program" : "data") << ", id " << p["id"].get<int64_t>() << ")\n";
  o << "package      " << r["package_id"].get<std::string>() << ", " << HumanBytes(r["size"].get<double>()) << ", "
    << r["layout"].get<std::string>() << "\n";
  o << "sealed for   processor " << r["recipient"]["device_serial"].get<std::string>() << " (key-wrap key "
    << r["recipient"]["key_id"].get<std::string>().substr(0, 16) << "...)\n";
  o << "order        " << r["order_id"].get<std::string>() << ", issued " << r["issued_at"].get<std::string>() << "\n";
  o << "signature    " << r["signature"]["status"].get<std::string>() << ": " << r["signature"]["detail"].get<std::string>() << "\n";
  o << "rights       " << (elf ? "run on this processor" : r["rights"]["export"].get<bool>() ? "open; export to the host allowed" : "open with a program the processor runs; no export")
    << "\n";
  const json& pl = r["payload"];
  o << "payload      " << pl["suite"].get<std::string>() << ", " << HumanBytes(pl["size"].get<double>())
    << (pl["size_matches_manifest"].get<bool>() ? "" : " (SIZE DOES NOT MATCH THE MANIFEST)") << "\n";
  if (!r.contains("elf")) return o.str();
  const json& e = r["elf"];
  if (e.contains("error")) {
    o << "elf          unreadable: " << e["error"].get<std::string>() << "\n";
    return o.str();
  }
  o << "elf          " << e["type"].get<std::string>() << ", " << e["machine"].get<std::string>() << ", "
    << e["linking"].get<std::string>() << "ally linked";
  if (!e["interpreter"].get<std::string>().empty()) o << ", interpreter " << e["interpreter"].get<std::string>();
  o << "\n";
  o << "plaintext    headers and import tables " << e["plaintext_parts"].get<std::string>() << "\n";
  o << "encrypted    " << HumanBytes(e["encrypted_bytes"].get<double>()) << " in " << pl["ranges"].get<size_t>()
    << " range(s)\n";
  o << "needs        ";
  if (e["needed"].empty()) o << "(no shared libraries)";
  for (size_t i = 0; i < e["needed"].size(); ++i) o << (i ? ", " : "") << e["needed"][i].get<std::string>();
  o << "\nimports      " << e["imports"].size() << " symbol(s)\n";
  for (const json& s : e["imports"]) {
    o << "  " << s["name"].get<std::string>();
    if (s.contains("version")) o << "@" << s["version"].get<std::string>();
    if (s["weak"].get<bool>()) o << " (weak)";
    o << "\n";
  }
  o << "sections\n";
  for (const json& s : e["sections"]) {
    std::string name = s["name"].get<std::string>();
    o << "  " << name << std::string(name.size() < 22 ? 22 - name.size() : 1, ' ')
      << (s["encrypted"].get<bool>() ? "encrypted" : "plaintext");
    if (s.contains("why_plaintext")) o << "  " << s["why_plaintext"].get<std::string>();
    o << "\n";
  }
  return o.str();
}

}  // namespace sealdrop
