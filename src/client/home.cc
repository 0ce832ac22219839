#include "client/home.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/files.h"
#include "base/unique_fd.h"
#include "client/link.h"
#include "crypto/jws.h"
#include "crypto/sha256.h"
#include "protocol/messages.h"

namespace sealdrop {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
bool SafeName(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.') return false;
  for (char c : s)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '+')) return false;
  return true;
}
}  // namespace

Result<ClientHome> ClientHome::Open() {
  fs::path dir;
  if (const char* h = std::getenv("SEALDROP_HOME"); h && *h) dir = h;
  else if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) dir = fs::path(x) / "sealdrop";
  else if (const char* home = std::getenv("HOME"); home && *home) dir = fs::path(home) / ".local/share/sealdrop";
  else return Fail(ErrorCode::kInvalidArgument, "set SEALDROP_HOME or HOME so the client knows where to keep its files");
  for (const char* sub : {"", "receipts", "packages", "pending"}) SEALDROP_TRY(EnsureDirectory(dir / sub, 0700));
  return ClientHome(dir);
}

Result<std::string> NormaliseServerUrl(const std::string& url) {
  SEALDROP_ASSIGN(ServerAddress a, ServerAddress::Parse(url));
  const bool v6 = a.host.find(':') != std::string::npos;
  return "https://" + (v6 ? "[" + a.host + "]" : a.host) + ":" + a.port;
}

namespace {
Result<json> ReadLogins(const fs::path& file) {
  auto text = ReadTextFile(file, 1 << 20);
  if (!text) return json{{"logins", json::object()}};
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Fail(ErrorCode::kMalformed, "the stored credentials are damaged; run 'sealdrop login USER' again");
  if (!j.contains("logins") && j.contains("server")) {
    // The one-login layout of earlier versions.
    auto url = NormaliseServerUrl(j.value("server", ""));
    json old = j;
    j = {{"logins", json::object()}};
    if (url) {
      j["current"] = *url;
      j["logins"][*url] = {{"user", old.value("user", "")}, {"token", old.value("token", "")}};
    }
  }
  if (!j.contains("logins") || !j["logins"].is_object())
    return Fail(ErrorCode::kMalformed, "the stored credentials are damaged; run 'sealdrop login USER' again");
  return j;
}
}  // namespace

Status ClientHome::SaveLogin(Credentials c, const std::string& vendor_root_pem) const {
  SEALDROP_ASSIGN(c.server, NormaliseServerUrl(c.server));
  if (!vendor_root_pem.empty()) {
    c.vendor_root_sha256 = Sha256Hex(AsBytes(vendor_root_pem));
    SEALDROP_TRY(EnsureDirectory(dir_ / "roots", 0700));
    SEALDROP_TRY(WriteFileAtomic(dir_ / "roots" / (c.vendor_root_sha256 + ".pem"), vendor_root_pem, 0644));
  }
  auto j = ReadLogins(dir_ / "credentials.json");
  if (!j) j = json{{"logins", json::object()}};  // a damaged file is replaced by this login
  (*j)["current"] = c.server;
  (*j)["logins"][c.server] = {{"user", c.user}, {"token", c.token}, {"vendor_root_sha256", c.vendor_root_sha256}};
  return WriteFileAtomic(dir_ / "credentials.json", j->dump(2) + "\n", 0600);
}

Result<Credentials> ClientHome::LoadCredentials(const std::string& server) const {
  SEALDROP_ASSIGN(json j, ReadLogins(dir_ / "credentials.json"));
  std::string url;
  if (!server.empty()) {
    SEALDROP_ASSIGN(url, NormaliseServerUrl(server));
  } else {
    url = j.value("current", "");
  }
  const json& logins = j["logins"];
  if (url.empty()) return Fail(ErrorCode::kAuthFailed, "not logged in; run 'sealdrop login USER' first");
  if (!logins.contains(url) || !logins[url].is_object())
    return Fail(ErrorCode::kAuthFailed, "not logged in at " + url + "; run 'sealdrop login USER'");
  const json& l = logins[url];
  Credentials c;
  c.server = url;
  c.user = l.value("user", "");
  c.token = l.value("token", "");
  c.vendor_root_sha256 = l.value("vendor_root_sha256", "");
  return c;
}

fs::path ClientHome::VendorRootPath(const Credentials& c) const {
  if (c.vendor_root_sha256.size() != 64 ||
      c.vendor_root_sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    return {};
  return dir_ / "roots" / (c.vendor_root_sha256 + ".pem");
}

Status ClientHome::SaveServerCertificate(const std::string& pem) const {
  if (pem.empty()) return Ok();
  auto old = ReadTextFile(ServerCertificatePath(), 1 << 20);
  if (old && *old == pem) return Ok();
  return WriteFileAtomic(ServerCertificatePath(), pem, 0644);
}

Status ClientHome::SaveReceipt(const std::string& receipt_id, const std::string& jws) const {
  if (!SafeName(receipt_id)) return Fail(ErrorCode::kMalformed, "the server sent a malformed receipt id");
  return WriteFileAtomic(dir_ / "receipts" / (receipt_id + ".jws"), jws + "\n", 0600);
}

Result<std::vector<std::string>> ClientHome::Receipts() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ / "receipts", ec)) {
    if (e.path().extension() != ".jws") continue;
    SEALDROP_ASSIGN(std::string text, ReadTextFile(e.path(), kMaxJwsSize));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    out.push_back(std::move(text));
  }
  return out;
}

Result<std::string> ClientHome::ReceiptFor(const std::string& name) const {
  SEALDROP_ASSIGN(auto receipts, Receipts());
  std::string best;
  int64_t best_time = -1;
  for (const auto& jws : receipts) {
    auto parsed = JwsParse(jws);
    if (!parsed) continue;
    auto claims = ParseReceiptClaims(parsed->payload);
    if (!claims || claims->program != name) continue;
    if (claims->issued_at > best_time) {
      best_time = claims->issued_at;
      best = jws;
    }
  }
  if (best.empty())
    return Fail(ErrorCode::kNotFound, "no receipt for \"" + name + "\" here; buy it first, or run 'sealdrop receipts --from-server'");
  return best;
}

fs::path ClientHome::PackagePath(const std::string& name) const { return dir_ / "packages" / (name + ".sdpkg"); }

Status ClientHome::SavePackageInfo(const StoredPackage& p) const {
  if (!SafeName(p.name)) return Fail(ErrorCode::kMalformed, "the package name is not a safe file name");
  json j = {{"name", p.name}, {"version", p.version}, {"package_id", p.package_id},
            {"receipt_id", p.receipt_id}, {"size", p.size}};
  return WriteFileAtomic(dir_ / "packages" / (p.name + ".json"), j.dump(2) + "\n", 0600);
}

Status ClientHome::StorePackage(int fd, const StoredPackage& p) const {
  // The name comes from the processor: validated (by SavePackageInfo's
  // rules) before it becomes a path.
  if (!SafeName(p.name)) return Fail(ErrorCode::kMalformed, "the package name is not a safe file name");
  fs::path tmp = TempPathFor(PackagePath(p.name));
  // When the processor runs under this user's uid and on this filesystem,
  // the released file (already unlinked by the processor) is linked into
  // place: no copy at all. Under its own uid, as recommended, the file is not
  // ours to keep and is copied below.
  struct stat released {};
  if (::fstat(fd, &released) == 0 && released.st_uid == ::getuid() &&
      static_cast<uint64_t>(released.st_size) == p.size) {
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) == 0) {
      SEALDROP_TRY(SavePackageInfo(p));
      auto committed = CommitRename(tmp, PackagePath(p.name));
      if (!committed) ::unlink(tmp.c_str());
      return committed;
    }
  }
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out) return Fail(ErrorCode::kIo, "cannot create a file in " + (dir_ / "packages").string());
  auto fail = [&](Error e) -> Status {
    out.reset();
    ::unlink(tmp.c_str());
    return std::unexpected(std::move(e));
  };
  constexpr size_t kStep = 64 << 20;
  uint64_t copied = 0;
  off_t in_off = 0;
  bool kernel_copy = true;
  Bytes buf;
  while (true) {
    ssize_t n;
    if (kernel_copy) {
      n = ::copy_file_range(fd, &in_off, out.get(), nullptr, kStep, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        kernel_copy = false;  // another filesystem or an old kernel
        continue;
      }
    } else {
      buf.resize(1 << 20);
      n = ::pread(fd, buf.data(), buf.size(), in_off);
      if (n > 0) {
        for (ssize_t w = 0; w < n;) {
          ssize_t m = ::write(out.get(), buf.data() + w, static_cast<size_t>(n - w));
          if (m < 0 && errno == EINTR) continue;
          if (m <= 0) return fail({ErrorCode::kIo, "cannot store the package (disk full?)"});
          w += m;
        }
        in_off += n;
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail({ErrorCode::kIo, "cannot store the package (disk full?)"});
    if (n == 0) break;
    copied += static_cast<uint64_t>(n);
  }
  if (copied != p.size) return fail({ErrorCode::kMalformed, "the package arrived incomplete"});
  // The package's bytes are not fsynced; the rename and the directory are.
  // What must survive a power loss is the receipt (written and synced before
  // the release was even asked for): it re-downloads the package at no
  // charge, and a package torn by a power loss fails its authentication at
  // run time with a message that says to run 'sealdrop get'. Syncing 1 GiB
  // would add about 0.4 s to every download for nothing the receipt does not
  // already give.
  out.reset();
  SEALDROP_TRY(SavePackageInfo(p));
  auto st = CommitRename(tmp, PackagePath(p.name));
  if (!st) ::unlink(tmp.c_str());
  return st;
}

Result<StoredPackage> ClientHome::FindPackage(const std::string& name) const {
  if (!SafeName(name)) return Fail(ErrorCode::kInvalidArgument, "\"" + name + "\" is not a program name");
  auto text = ReadTextFile(dir_ / "packages" / (name + ".json"), 64 * 1024);
  if (!text) return Fail(ErrorCode::kNotFound, "\"" + name + "\" is not installed here; buy it or run 'sealdrop get " + name + "'");
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Fail(ErrorCode::kMalformed, "the package record of \"" + name + "\" is damaged");
  StoredPackage p;
  p.name = j.value("name", "");
  p.version = j.value("version", "");
  p.package_id = j.value("package_id", "");
  p.receipt_id = j.value("receipt_id", "");
  p.size = j.value("size", uint64_t{0});
  p.file = PackagePath(name);
  return p;
}

std::string ClientHome::PendingKeyFor(const std::string& program, const std::string& version, bool again) const {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ / "pending", ec)) {
    auto text = ReadTextFile(e.path(), 64 * 1024);
    if (!text) continue;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    if (j.value("program", "") == program && j.value("version", "") == version && j.value("again", false) == again)
      return j.value("key", "");
  }
  return "";
}

Status ClientHome::SavePending(const std::string& program, const std::string& version, const std::string& key,
                               bool again) const {
  json j = {{"program", program}, {"version", version}, {"key", key}, {"again", again}};
  return WriteFileAtomic(dir_ / "pending" / (key + ".json"), j.dump() + "\n", 0600);
}

void ClientHome::ClearPending(const std::string& key) const {
  std::error_code ec;
  fs::remove(dir_ / "pending" / (key + ".json"), ec);
}

}  // namespace sealdrop
