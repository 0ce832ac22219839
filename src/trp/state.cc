#include "trp/state.h"

#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <chrono>
#include <ctime>

#include "base/files.h"
#include "base/time_format.h"
#include "crypto/aead.h"
#include "crypto/random.h"
#include "tpm/enrol.h"
#include "tpm/tpm.h"

namespace sealdrop {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr size_t kMaxStateFile = 1 << 20;

Bytes SealAad(std::string_view role) { return ToBytes("sealdrop trp key v1 " + std::string(role)); }

Result<SecretBytes> LoadRootKey(const fs::path& state) {
  // Every sealed key opens under this one: readable by anyone but the
  // processor's own user, it would give them all away.
  const fs::path path = state / "root.key";
  SEALDROP_TRY(CheckPrivateFileMode(path, "the processor's root key"));
  SEALDROP_ASSIGN(Bytes raw, ReadFile(path, 64));
  if (raw.size() != kAes256KeySize) {
    SecureWipe(raw.data(), raw.size());
    return Fail(ErrorCode::kIo, "the processor's root key is damaged");
  }
  SecretBytes key(raw, SecretAccess{});
  SecureWipe(raw.data(), raw.size());
  return key;
}

Status SealKeyFile(const fs::path& path, const SecretBytes& root, const EcPrivateKey& key,
                   std::string_view role) {
  SEALDROP_ASSIGN(Aes256Gcm aead, Aes256Gcm::Create(root));
  SecretBytes pem = key.ToPkcs8Pem();
  SEALDROP_ASSIGN(Bytes sealed, aead.Encrypt(pem.Reveal(SecretAccess{}), SealAad(role)));
  return WriteFileAtomic(path, sealed, 0600);
}

Result<EcPrivateKey> UnsealKeyFile(const fs::path& path, const SecretBytes& root, std::string_view role) {
  SEALDROP_ASSIGN(Bytes sealed, ReadFile(path, 16 * 1024));
  SEALDROP_ASSIGN(Aes256Gcm aead, Aes256Gcm::Create(root));
  auto pem = aead.Decrypt(sealed, SealAad(role));
  if (!pem) return Fail(ErrorCode::kCryptoFailure, "the sealed key " + path.filename().string() +
                                                       " does not open under this processor's root key");
  return EcPrivateKey::FromPkcs8Pem(*pem);
}

Result<json> ReadDeviceJson(const fs::path& state) {
  auto text = ReadTextFile(state / "device.json", kMaxStateFile);
  if (!text) return Fail(ErrorCode::kNotFound, state.string() + " is not a processor state directory (run 'sealdrop-trp init' first)");
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("serial") || !j["serial"].is_string())
    return Fail(ErrorCode::kMalformed, state.string() + "/device.json is damaged");
  return j;
}

bool IsTpm(const json& device) { return device.value("backend", "soft") == "tpm"; }

std::string TctiOf(const json& device) {
  auto it = device.find("tcti");
  return it != device.end() && it->is_string() ? it->get<std::string>() : std::string(kDefaultTcti);
}

Result<TpmKeyFile> ReadTpmKeyFile(const fs::path& path) {
  SEALDROP_ASSIGN(std::string pem, ReadTextFile(path, 64 * 1024));
  auto key = TpmKeyFile::FromPem(pem);
  if (!key) return Fail(ErrorCode::kMalformed, path.string() + " is damaged: " + key.error().message);
  return std::move(*key);
}

Result<EcPublicKey> TpmPublicKey(const TpmKeyFile& key) {
  SEALDROP_ASSIGN(TpmPublicInfo info, ParseTpmPublic(key.public_area));
  return EcPublicKey::FromPoint(info.point);
}

// The processor's two public keys, without using the private halves.
Result<std::pair<EcPublicKey, EcPublicKey>> PublicKeys(const fs::path& state, const json& device) {
  if (IsTpm(device)) {
    SEALDROP_ASSIGN(TpmKeyFile identity, ReadTpmKeyFile(state / "identity.tss2.pem"));
    SEALDROP_ASSIGN(TpmKeyFile keywrap, ReadTpmKeyFile(state / "keywrap.tss2.pem"));
    SEALDROP_ASSIGN(EcPublicKey id, TpmPublicKey(identity));
    SEALDROP_ASSIGN(EcPublicKey kw, TpmPublicKey(keywrap));
    return std::pair{std::move(id), std::move(kw)};
  }
  SEALDROP_ASSIGN(SecretBytes root, LoadRootKey(state));
  SEALDROP_ASSIGN(EcPrivateKey identity, UnsealKeyFile(state / "identity.key.sealed", root, "identity"));
  SEALDROP_ASSIGN(EcPrivateKey keywrap, UnsealKeyFile(state / "keywrap.key.sealed", root, "keywrap"));
  return std::pair{identity.PublicKey(), keywrap.PublicKey()};
}

Result<InitResult> InitTpmProcessor(const fs::path& state, const InitOptions& options) {
  const std::string tcti = options.tcti.empty() ? std::string(kDefaultTcti) : options.tcti;
  SEALDROP_ASSIGN(Tpm tpm, Tpm::Open(tcti));
  if (auto ek = tpm.ReadEkCertificate(); !ek)
    return Fail(ErrorCode::kNotFound, "the TPM at " + tcti + " has no EK certificate (NV index 0x01c00002), " +
                                          "so no manufacturer can enrol it: " + ek.error().message);
  InitResult result;
  SEALDROP_TRY(BuildDirectory(state, 0700, [&](const fs::path& tmp) -> Status {
    std::string serial = RandomHexId(8);
    SEALDROP_ASSIGN(TpmKeyFile identity, tpm.CreateKey(TpmKeyRole::kSign));
    SEALDROP_ASSIGN(TpmKeyFile keywrap, tpm.CreateKey(TpmKeyRole::kDecrypt));
    SEALDROP_TRY(WriteFileAtomic(tmp / "identity.tss2.pem", identity.ToPem(), 0600));
    SEALDROP_TRY(WriteFileAtomic(tmp / "keywrap.tss2.pem", keywrap.ToPem(), 0600));
    SEALDROP_ASSIGN(std::string request, MakeTpmEnrolRequest(tpm, serial, identity, keywrap));
    SEALDROP_TRY(WriteFileAtomic(tmp / "enrol-request.json", request));
    SEALDROP_TRY(EnsureDirectory(tmp / "trust", 0700));
    SEALDROP_TRY(EnsureDirectory(tmp / "licences", 0700));
    SEALDROP_TRY(EnsureDirectory(tmp / "staging", 0700));
    SEALDROP_ASSIGN(EcPublicKey id_pub, TpmPublicKey(identity));
    SEALDROP_ASSIGN(EcPublicKey kw_pub, TpmPublicKey(keywrap));
    json device = {{"serial", serial},
                   {"backend", "tpm"},
                   {"tcti", tcti},
                   {"created_at", FormatRfc3339(std::chrono::system_clock::now())},
                   {"identity_key_id", id_pub.KeyId()},
                   {"keywrap_key_id", kw_pub.KeyId()}};
    SEALDROP_TRY(WriteFileAtomic(tmp / "device.json", device.dump(2) + "\n"));
    result.serial = serial;
    result.enrol_request = state / "enrol-request.json";
    return Ok();
  }));
  return result;
}

}  // namespace

Result<std::string> ActivateProcessor(const fs::path& state, std::string_view challenge_json) {
  SEALDROP_ASSIGN(json device, ReadDeviceJson(state));
  if (!IsTpm(device))
    return Fail(ErrorCode::kInvalidArgument, state.string() + " is a soft processor; only TPM processors are activated");
  SEALDROP_ASSIGN(TpmKeyFile identity, ReadTpmKeyFile(state / "identity.tss2.pem"));
  SEALDROP_ASSIGN(TpmKeyFile keywrap, ReadTpmKeyFile(state / "keywrap.tss2.pem"));
  SEALDROP_ASSIGN(Tpm tpm, Tpm::Open(TctiOf(device)));
  return AnswerTpmEnrolChallenge(tpm, device["serial"].get<std::string>(), identity, keywrap, challenge_json);
}

Result<InitResult> InitProcessorState(const fs::path& state, const InitOptions& options) {
  if (options.backend == "tpm") return InitTpmProcessor(state, options);
  if (options.backend != "soft")
    return Fail(ErrorCode::kInvalidArgument, "unknown backend \"" + options.backend + "\" (soft or tpm)");
  InitResult result;
  SEALDROP_TRY(BuildDirectory(state, 0700, [&](const fs::path& tmp) -> Status {
    std::string serial = RandomHexId(8);
    SecretBytes root = RandomSecret(kAes256KeySize);
    SEALDROP_TRY(WriteFileAtomic(tmp / "root.key", root.Reveal(SecretAccess{}), 0600));
    SEALDROP_ASSIGN(EcPrivateKey identity, EcPrivateKey::Generate());
    SEALDROP_ASSIGN(EcPrivateKey keywrap, EcPrivateKey::Generate());
    SEALDROP_TRY(SealKeyFile(tmp / "identity.key.sealed", root, identity, "identity"));
    SEALDROP_TRY(SealKeyFile(tmp / "keywrap.key.sealed", root, keywrap, "keywrap"));
    CsrRequest id_req{"sealdrop processor " + serial, serial, {}, DeviceKeyRole::kIdentity};
    CsrRequest wrap_req{"sealdrop processor " + serial + " key-wrap", serial, {}, DeviceKeyRole::kKeyWrap};
    SEALDROP_ASSIGN(std::string id_csr, MakeCsrPem(identity, id_req));
    SEALDROP_ASSIGN(std::string wrap_csr, MakeCsrPem(keywrap, wrap_req));
    SEALDROP_TRY(WriteFileAtomic(tmp / "identity.csr", id_csr));
    SEALDROP_TRY(WriteFileAtomic(tmp / "keywrap.csr", wrap_csr));
    SEALDROP_TRY(EnsureDirectory(tmp / "trust", 0700));
    SEALDROP_TRY(EnsureDirectory(tmp / "licences", 0700));
    SEALDROP_TRY(EnsureDirectory(tmp / "staging", 0700));
    // device.json last: it is what marks a directory as a processor.
    json device = {{"serial", serial},
                   {"backend", "soft"},
                   {"created_at", FormatRfc3339(std::chrono::system_clock::now())},
                   {"identity_key_id", identity.PublicKey().KeyId()},
                   {"keywrap_key_id", keywrap.PublicKey().KeyId()}};
    SEALDROP_TRY(WriteFileAtomic(tmp / "device.json", device.dump(2) + "\n"));
    result = InitResult{serial, state / "identity.csr", state / "keywrap.csr"};
    return Ok();
  }));
  return result;
}

Status InstallProcessorFiles(const fs::path& state, const std::vector<fs::path>& certs,
                             const std::vector<fs::path>& trust) {
  SEALDROP_ASSIGN(json device, ReadDeviceJson(state));
  std::string serial = device["serial"];
  SEALDROP_ASSIGN(auto keys, PublicKeys(state, device));
  const auto& [identity_public, keywrap_public] = keys;

  // Check everything first, write afterwards: a bad file leaves no trace.
  std::vector<std::pair<fs::path, std::string>> writes;
  for (const auto& path : certs) {
    SEALDROP_ASSIGN(std::string pem, ReadTextFile(path, kMaxPemFileSize));
    auto chain = Certificate::AllFromPem(pem);
    if (!chain) return Fail(ErrorCode::kInvalidArgument, path.string() + " holds no readable certificate");
    const Certificate& leaf = (*chain)[0];
    if (leaf.SubjectSerialNumber() != serial)
      return Fail(ErrorCode::kInvalidArgument, path.string() + " is for processor " +
                                                   leaf.SubjectSerialNumber() + ", not " + serial);
    if (leaf.PublicKey() == identity_public)
      writes.emplace_back(state / "identity.pem", pem);
    else if (leaf.PublicKey() == keywrap_public)
      writes.emplace_back(state / "keywrap.pem", pem);
    else
      return Fail(ErrorCode::kInvalidArgument, path.string() + " does not certify a key of this processor");
  }
  size_t next = 0;
  while (fs::exists(state / "trust" / ("vendor-" + std::to_string(next) + ".pem"))) ++next;
  for (const auto& path : trust) {
    SEALDROP_ASSIGN(std::string pem, ReadTextFile(path, kMaxPemFileSize));
    TrustStore probe;
    if (auto st = probe.AddRootsPem(pem); !st)
      return Fail(ErrorCode::kInvalidArgument, path.string() + " is not a CA certificate: " + st.error().message);
    writes.emplace_back(state / "trust" / ("vendor-" + std::to_string(next++) + ".pem"), pem);
  }
  for (const auto& [path, pem] : writes) SEALDROP_TRY(WriteFileAtomic(path, pem));
  return Ok();
}

Result<ProcessorInfo> ReadProcessorInfo(const fs::path& state) {
  SEALDROP_ASSIGN(json device, ReadDeviceJson(state));
  ProcessorInfo info;
  info.serial = device["serial"];
  info.backend = device.value("backend", "soft");
  info.identity_key_id = device.value("identity_key_id", "");
  info.keywrap_key_id = device.value("keywrap_key_id", "");
  if (IsTpm(device)) info.tcti = TctiOf(device);
  std::error_code ec;
  info.identity_installed = fs::exists(state / "identity.pem", ec);
  info.keywrap_installed = fs::exists(state / "keywrap.pem", ec);
  for (const auto& e : fs::directory_iterator(state / "trust", ec))
    if (e.path().extension() == ".pem") ++info.vendor_roots;
  if (info.identity_installed) {
    auto pem = ReadTextFile(state / "identity.pem", kMaxPemFileSize);
    if (pem) {
      auto cert = Certificate::FromPem(*pem);
      if (cert) info.identity_not_after = FormatRfc3339(cert->NotAfter());
    }
  }
  return info;
}

Result<ProcessorState> ProcessorState::Load(const fs::path& state, const fs::path& display) {
  const fs::path& shown = display.empty() ? state : display;
  auto device_json = ReadDeviceJson(state);
  if (!device_json)
    return Fail(device_json.error().code, shown.string() + " is not a processor state directory (run 'sealdrop-trp init' first)");
  json device = std::move(*device_json);
  ProcessorState ps;
  ps.dir_ = state;
  ps.identity_.device_serial = device["serial"];
  std::optional<EcPrivateKey> identity_key, keywrap_key;
  if (IsTpm(device)) {
    SEALDROP_ASSIGN(TpmKeyFile id_file, ReadTpmKeyFile(state / "identity.tss2.pem"));
    SEALDROP_ASSIGN(TpmKeyFile kw_file, ReadTpmKeyFile(state / "keywrap.tss2.pem"));
    const std::string tcti = TctiOf(device);
    auto cannot = [&](const Error& e) {
      return Fail(e.code, "the TPM at " + tcti + " cannot load this processor's keys (" + e.message +
                              "); they were made by another TPM, or this one was cleared since");
    };
    auto id = LoadTpmKey(id_file, tcti);
    if (!id) return cannot(id.error());
    auto kw = LoadTpmKey(kw_file, tcti);
    if (!kw) return cannot(kw.error());
    identity_key = std::move(*id);
    keywrap_key = std::move(*kw);
  } else {
    SEALDROP_ASSIGN(SecretBytes root, LoadRootKey(state));
    SEALDROP_ASSIGN(identity_key, UnsealKeyFile(state / "identity.key.sealed", root, "identity"));
    SEALDROP_ASSIGN(keywrap_key, UnsealKeyFile(state / "keywrap.key.sealed", root, "keywrap"));
  }
  EcPrivateKey identity = std::move(*identity_key);
  EcPrivateKey keywrap = std::move(*keywrap_key);
  auto id_pem = ReadTextFile(state / "identity.pem", kMaxPemFileSize);
  auto wrap_pem = ReadTextFile(state / "keywrap.pem", kMaxPemFileSize);
  if (!id_pem || !wrap_pem)
    return Fail(ErrorCode::kNotFound, "the processor has no certificates yet; run 'sealdrop-trp install " +
                                          shown.string() + " --cert ...' with both issued certificates");
  SEALDROP_ASSIGN(auto chain, Certificate::AllFromPem(*id_pem));
  ps.identity_.tls = TlsIdentity{std::move(chain), std::move(identity)};
  ps.identity_.key_wrap_chain_pem = *wrap_pem;
  ps.identity_.key_wrap_key_id = keywrap.PublicKey().KeyId();
  ps.keywrap_key_ = std::move(keywrap);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state / "trust", ec)) {
    if (e.path().extension() != ".pem") continue;
    SEALDROP_ASSIGN(std::string pem, ReadTextFile(e.path(), kMaxPemFileSize));
    SEALDROP_TRY(ps.vendor_roots_.AddRootsPem(pem));
  }
  if (ps.vendor_roots_.root_count() == 0)
    return Fail(ErrorCode::kNotFound, "the processor pins no vendor root yet; run 'sealdrop-trp install " +
                                          shown.string() + " --trust VENDOR_ROOT.pem'");
  return ps;
}

}  // namespace sealdrop
