#include "server/data_dir.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/files.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "ledger/sqlite_ledger.h"
#include "package/protected_elf.h"
#include "server/session.h"

namespace sealdrop {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
Result<ServerConfig> ReadConfig(const fs::path& data) {
  const fs::path path = data / "config.json";
  // A directory this user may not enter or read is a permission problem, not
  // a missing directory: say which, so the operator fixes the right thing.
  if (::access(path.c_str(), R_OK) != 0) {
    int err = errno;
    if (err == EACCES || err == EPERM)
      return Fail(ErrorCode::kRefused,
                  "permission denied reading " + path.string() +
                      "; run sealdropd as the user that owns " + data.string() +
                      " or give this user read access to it");
    if (err != ENOENT && err != ENOTDIR)
      return Fail(ErrorCode::kIo, "cannot read " + path.string() + ": " + std::strerror(err));
    return Fail(ErrorCode::kNotFound, data.string() + " is not a sealdropd data directory (run 'sealdropd init' first)");
  }
  auto text = ReadTextFile(path, 1 << 20);
  if (!text) return std::unexpected(text.error());
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Fail(ErrorCode::kMalformed, data.string() + "/config.json is damaged");
  ServerConfig c;
  try {
    c.name = j.at("name");
    c.hosts = j.at("hosts").get<std::vector<std::string>>();
    if (auto it = j.find("device_limit"); it != j.end()) {
      // Read wide, so 4294967299 is not taken for 3.
      if (!it->is_number_integer())
        return Fail(ErrorCode::kMalformed, path.string() + ": device_limit must be a whole number from 1 to " +
                                               std::to_string(kMaxDeviceLimit));
      std::string shown = it->is_number_unsigned() ? std::to_string(it->get<uint64_t>())
                                                    : std::to_string(it->get<int64_t>());
      bool in_range = it->is_number_unsigned() ? it->get<uint64_t>() <= uint64_t{kMaxDeviceLimit}
                                               : it->get<int64_t>() >= 1 && it->get<int64_t>() <= kMaxDeviceLimit;
      if (!in_range || it->get<int64_t>() < 1)
        return Fail(ErrorCode::kInvalidArgument,
                    path.string() + ": the device limit " + shown + " is outside the allowed range 1 to " +
                        std::to_string(kMaxDeviceLimit) + "; correct device_limit and start again");
      c.device_limit = static_cast<int>(it->get<int64_t>());
    }
  } catch (const json::exception&) {
    return Fail(ErrorCode::kMalformed, data.string() + "/config.json is damaged");
  }
  if (auto st = ValidateServerConfig(c); !st)
    return Fail(st.error().code, path.string() + ": " + st.error().message);
  return c;
}

bool ValidHost(const std::string& h) {
  // A DNS name (letters, digits, '-', '.', a leading "*." wildcard) or an IP
  // address (digits, hex, '.', ':'), as the certificate request carries it.
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.front() == '-') return false;
  std::string_view rest = h;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  if (rest.empty()) return false;
  for (char c : rest)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == ':')) return false;
  return true;
}

// Names become file names on the client: no leading dot, no separators.
bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.') return false;
  for (char c : s)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '+')) return false;
  return true;
}
}  // namespace

Status ValidateServerConfig(const ServerConfig& c) {
  bool name_ok = !c.name.empty() && c.name.size() <= kMaxServerNameSize;
  for (char ch : c.name) name_ok &= static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f;
  if (!name_ok)
    return Fail(ErrorCode::kInvalidArgument,
                "the server name must be 1 to " + std::to_string(kMaxServerNameSize) +
                    " characters without control characters (it becomes the certificate's common name)");
  if (c.hosts.empty() || c.hosts.size() > kMaxServerHosts)
    return Fail(ErrorCode::kInvalidArgument, "the server needs 1 to " + std::to_string(kMaxServerHosts) +
                                                 " host names (--host), the names clients connect to");
  for (const auto& h : c.hosts)
    if (!ValidHost(h))
      return Fail(ErrorCode::kInvalidArgument,
                  "the host \"" + h.substr(0, 64) +
                      "\" is neither a DNS name nor an IP address; give each --host as, for example, "
                      "store.example.com or 192.0.2.10");
  if (c.device_limit < 1 || c.device_limit > kMaxDeviceLimit)
    return Fail(ErrorCode::kInvalidArgument,
                "the device limit " + std::to_string(c.device_limit) + " is outside the allowed range 1 to " +
                    std::to_string(kMaxDeviceLimit) + " (devices one receipt may be delivered to)");
  return Ok();
}

Status InitServerData(const fs::path& data, const ServerConfig& config) {
  SEALDROP_TRY(ValidateServerConfig(config));
  return BuildDirectory(data, 0700, [&](const fs::path& tmp) -> Status {
    SEALDROP_ASSIGN(EcPrivateKey key, EcPrivateKey::Generate());
    SecretBytes pem = key.ToPkcs8Pem();
    SEALDROP_TRY(WriteFileAtomic(tmp / "server.key", pem.Reveal(SecretAccess{}), 0600));
    CsrRequest req;
    req.common_name = config.name;
    req.hosts = config.hosts;
    SEALDROP_ASSIGN(std::string csr, MakeCsrPem(key, req));
    SEALDROP_TRY(WriteFileAtomic(tmp / "server.csr", csr));
    SEALDROP_TRY(EnsureDirectory(tmp / "manufacturers", 0700));
    SEALDROP_TRY(EnsureDirectory(tmp / "crl", 0700));
    SEALDROP_TRY(EnsureDirectory(tmp / "programs", 0700));
    SEALDROP_ASSIGN(auto ledger, OpenSqliteLedger(tmp / "ledger.db", true));
    // config.json last: it is what marks a directory as a data directory.
    json j = {{"name", config.name}, {"hosts", config.hosts}, {"device_limit", config.device_limit}};
    return WriteFileAtomic(tmp / "config.json", j.dump(2) + "\n");
  });
}

Status InstallServerFiles(const fs::path& data, const fs::path& cert, const std::vector<fs::path>& trust,
                          const std::vector<fs::path>& crls) {
  SEALDROP_ASSIGN(ServerConfig config, ReadConfig(data));
  std::vector<std::pair<fs::path, std::string>> writes;
  if (!cert.empty()) {
    SEALDROP_ASSIGN(std::string pem, ReadTextFile(cert, kMaxPemFileSize));
    auto chain = Certificate::AllFromPem(pem);
    if (!chain) return Fail(ErrorCode::kInvalidArgument, cert.string() + " holds no readable certificate");
    SEALDROP_ASSIGN(SecretBytes key_pem, [&]() -> Result<SecretBytes> {
      SEALDROP_ASSIGN(Bytes raw, ReadFile(data / "server.key", 64 * 1024));
      SecretBytes s(raw, SecretAccess{});
      SecureWipe(raw.data(), raw.size());
      return s;
    }());
    SEALDROP_ASSIGN(EcPrivateKey key, EcPrivateKey::FromPkcs8Pem(key_pem));
    if (!((*chain)[0].PublicKey() == key.PublicKey()))
      return Fail(ErrorCode::kInvalidArgument, cert.string() + " does not certify this server's key (issue it from " +
                                                   (data / "server.csr").string() + ")");
    writes.emplace_back(data / "server.pem", pem);
  }
  auto next_free = [&](const fs::path& dir) {
    size_t n = 0;
    while (fs::exists(dir / (std::to_string(n) + ".pem"))) ++n;
    return n;
  };
  size_t n = next_free(data / "manufacturers");
  TrustStore probe;
  for (const auto& t : trust) {
    SEALDROP_ASSIGN(std::string pem, ReadTextFile(t, kMaxPemFileSize));
    if (auto st = probe.AddRootsPem(pem); !st)
      return Fail(ErrorCode::kInvalidArgument, t.string() + " is not a CA certificate: " + st.error().message);
    writes.emplace_back(data / "manufacturers" / (std::to_string(n++) + ".pem"), pem);
  }
  // CRLs must be signed by a manufacturer root, installed now or before.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data / "manufacturers", ec)) {
    if (e.path().extension() != ".pem") continue;
    auto pem = ReadTextFile(e.path(), kMaxPemFileSize);
    if (!pem) return std::unexpected(pem.error());
    (void)probe.AddRootsPem(*pem);
  }
  size_t c = next_free(data / "crl");
  for (const auto& path : crls) {
    SEALDROP_ASSIGN(std::string pem, ReadTextFile(path, 16 << 20));
    if (auto st = probe.AddCrlPem(pem); !st)
      return Fail(ErrorCode::kInvalidArgument, path.string() + " is not a CRL of a trusted manufacturer: " + st.error().message);
    writes.emplace_back(data / "crl" / (std::to_string(c++) + ".pem"), pem);
  }
  for (const auto& [path, pem] : writes) SEALDROP_TRY(WriteFileAtomic(path, pem));
  (void)config;
  return Ok();
}

Result<std::unique_ptr<Ledger>> OpenServerLedger(const fs::path& data) {
  SEALDROP_ASSIGN(ServerConfig config, ReadConfig(data));
  (void)config;
  return OpenSqliteLedger(data / "ledger.db", false);
}

Result<LoadedServer> LoadServerData(const fs::path& data, bool open_ledger) {
  LoadedServer s;
  s.data = data;
  SEALDROP_ASSIGN(s.config, ReadConfig(data));
  auto chain_pem = ReadTextFile(data / "server.pem", kMaxPemFileSize);
  if (!chain_pem)
    return Fail(ErrorCode::kNotFound, "the server has no certificate yet; have the vendor CA issue " +
                                          (data / "server.csr").string() + " and run 'sealdropd install " +
                                          data.string() + " --cert SERVER.pem'");
  s.cert_chain_pem = *chain_pem;
  SEALDROP_ASSIGN(auto chain, Certificate::AllFromPem(*chain_pem));
  SEALDROP_TRY(CheckPrivateFileMode(data / "server.key", "the server key"));
  SEALDROP_ASSIGN(Bytes raw, ReadFile(data / "server.key", 64 * 1024));
  SecretBytes key_pem(raw, SecretAccess{});
  SecureWipe(raw.data(), raw.size());
  SEALDROP_ASSIGN(EcPrivateKey key, EcPrivateKey::FromPkcs8Pem(key_pem));
  s.identity = TlsIdentity{std::move(chain), std::move(key)};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data / "manufacturers", ec))
    if (e.path().extension() == ".pem")
      {
        SEALDROP_ASSIGN(std::string pem, ReadTextFile(e.path(), kMaxPemFileSize));
        SEALDROP_TRY(s.manufacturers.AddRootsPem(pem));
      }
  if (s.manufacturers.root_count() == 0)
    return Fail(ErrorCode::kNotFound, "the server trusts no manufacturer yet; run 'sealdropd install " +
                                          data.string() + " --trust MANUFACTURER_ROOT.pem'");
  for (const auto& e : fs::directory_iterator(data / "crl", ec))
    if (e.path().extension() == ".pem") {
      SEALDROP_ASSIGN(std::string pem, ReadTextFile(e.path(), 16 << 20));
      SEALDROP_TRY(s.manufacturers.AddCrlPem(pem));
    }
  if (open_ledger) {
    SEALDROP_ASSIGN(s.ledger, OpenSqliteLedger(data / "ledger.db", false));
  }
  return s;
}

namespace {
// An ELF program is sealed as a protected ELF at every purchase; refuse now,
// with the reason, one that could never be.
Status CheckProtectable(int fd, uint64_t size, const fs::path& file) {
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) return Fail(ErrorCode::kIo, "cannot map the program copy");
  auto plan = PlanProtectedElf(ByteView(static_cast<const uint8_t*>(map), size));
  ::munmap(map, size);
  if (!plan)
    return Fail(plan.error().code, file.string() + " cannot be sealed as a protected program: " + plan.error().message);
  return Ok();
}
}  // namespace

Result<ProgramRecord> AddProgramFile(const fs::path& data, Ledger& ledger, const fs::path& file,
                                     const std::string& name, const std::string& version, int64_t price,
                                     bool may_export) {
  if (!ValidName(name)) return Fail(ErrorCode::kInvalidArgument, "the program name must be 1-64 letters, digits, '-', '_', '.' or '+', not starting with '.'");
  if (!ValidName(version)) return Fail(ErrorCode::kInvalidArgument, "the version must be 1-64 letters, digits, '-', '_', '.' or '+', not starting with '.'");
  if (price < 0) return Fail(ErrorCode::kInvalidArgument, "the price cannot be negative");
  int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Fail(ErrorCode::kIo, "cannot open " + file.string() + ": " + std::strerror(errno));
  fs::path dest = data / "programs" / (RandomHexId(16) + ".bin");
  fs::path tmp = TempPathFor(dest);
  int out = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    ::close(in);
    return Fail(ErrorCode::kIo, "cannot write into " + (data / "programs").string());
  }
  Sha256 hash;
  Bytes buf(1 << 20);
  uint64_t size = 0;
  bool elf = false;
  Status st = Ok();
  while (true) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { st = Fail(ErrorCode::kIo, "cannot read " + file.string()); break; }
    if (n == 0) break;
    if (size == 0 && n >= 4) elf = buf[0] == 0x7f && buf[1] == 'E' && buf[2] == 'L' && buf[3] == 'F';
    hash.Update(ByteView(buf.data(), static_cast<size_t>(n)));
    size += static_cast<uint64_t>(n);
    if (::write(out, buf.data(), static_cast<size_t>(n)) != n) { st = Fail(ErrorCode::kIo, "cannot copy the program (disk full?)"); break; }
  }
  ::close(in);
  if (st && elf && may_export)
    st = Fail(ErrorCode::kInvalidArgument, "--export is for data files; a program's plaintext never leaves the processor");
  if (st && elf) st = CheckProtectable(out, size, file);
  if (st && ::fsync(out) != 0) st = Fail(ErrorCode::kIo, "cannot sync the program copy");
  ::close(out);
  if (st) st = CommitRename(tmp, dest);
  if (!st) {
    ::unlink(tmp.c_str());
    return std::unexpected(st.error());
  }
  ProgramRecord p;
  p.name = name;
  p.version = version;
  p.price = price;
  p.kind = elf ? "elf" : "data";
  p.may_export = may_export;
  p.path = fs::absolute(dest).string();
  p.size = size;
  p.sha256 = HexEncode(hash.Final());
  auto added = ledger.AddProgram(p);
  if (!added) ::unlink(dest.c_str());
  return added;
}

}  // namespace sealdrop
