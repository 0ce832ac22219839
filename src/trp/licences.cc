#include "trp/licences.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/files.h"
#include "crypto/random.h"

namespace sealdrop {
namespace fs = std::filesystem;
using nlohmann::json;

FileStaging::FileStaging(fs::path dir) : dir_(std::move(dir)) {}
FileStaging::~FileStaging() = default;

Status FileStaging::Begin(uint64_t) {
  if (fd_) return Fail(ErrorCode::kWrongState, "staging already begun");
  // Not O_EXCL: a nameless file opened without it may be linked later.
  fd_.reset(::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd_ && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    path_ = dir_ / (RandomHexId(16) + ".part");
    fd_.reset(::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  }
  if (!fd_) return Fail(ErrorCode::kIo, "cannot create a staging file: " + std::string(std::strerror(errno)));
  return Ok();
}

Result<UniqueFd> FileStaging::OpenForRelease() {
  if (!fd_) return Fail(ErrorCode::kWrongState, "there is no held package");
  std::string self = "/proc/self/fd/" + std::to_string(fd_.get());
  UniqueFd ro(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ro) return Fail(ErrorCode::kIo, "the held package cannot be reopened: " + std::string(std::strerror(errno)));
  if (!path_.empty()) ::unlink(path_.c_str());
  return ro;
}

Status FileStaging::Append(ByteView bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(ErrorCode::kIo, "cannot write the staging file: " + std::string(std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Status FileStaging::Finish() {
  // No fsync: a held package never outlives a crash of the processor, so
  // durability would buy nothing. The descriptor stays open: for a nameless
  // file it is the only way to the data.
  return Ok();
}

void FileStaging::Discard() {
  fd_.reset();
  if (!path_.empty()) ::unlink(path_.c_str());
  path_.clear();
}

void CleanStaging(const fs::path& state) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state / "staging", ec))
    if (e.path().extension() == ".part") fs::remove(e.path(), ec);
}

namespace {
bool SafeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<LicenceRecord> FromJson(const json& j) {
  try {
    LicenceRecord r;
    r.package_id = j.at("package_id");
    r.program_id = j.at("program_id");
    r.name = j.at("name");
    r.version = j.at("version");
    r.kind = j.at("kind");
    r.package_digest = j.at("package_digest");
    r.size = j.at("size");
    r.server_key_pem = j.at("server_key_pem");
    r.receipt_id = j.at("receipt_id");
    r.receipt_jws = j.at("receipt_jws");
    r.release_jws = j.at("release_jws");
    r.released_at = j.at("released_at");
    return r;
  } catch (const json::exception&) {
    return Fail(ErrorCode::kMalformed, "a licence file is damaged");
  }
}
}  // namespace

Status SaveLicence(const fs::path& state, const Licence& l) {
  const Manifest& m = l.package.manifest;
  json j = {{"package_id", m.package_id},
            {"program_id", m.program_id},
            {"name", m.name},
            {"version", m.version},
            {"kind", m.kind},
            {"package_digest", l.package.digest_hex},
            {"size", l.package.size},
            {"server_key_pem", l.package.server_key_pem},
            {"receipt_id", l.receipt_id},
            {"receipt_jws", l.receipt_jws},
            {"release_jws", l.release_jws},
            {"released_at", std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()}};
  return WriteFileAtomic(state / "licences" / (m.package_id + ".json"), j.dump(2) + "\n", 0600);
}

Result<LicenceRecord> FindLicence(const fs::path& state, std::string_view package_id) {
  if (!SafeId(package_id)) return Fail(ErrorCode::kMalformed, "the package id is malformed");
  auto text = ReadTextFile(state / "licences" / (std::string(package_id) + ".json"), 1 << 20);
  if (!text) return Fail(ErrorCode::kRefused, "this processor holds no licence for that package");
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return Fail(ErrorCode::kMalformed, "a licence file is damaged");
  return FromJson(j);
}

Result<std::vector<LicenceRecord>> ListLicences(const fs::path& state) {
  std::vector<LicenceRecord> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state / "licences", ec)) {
    if (e.path().extension() != ".json") continue;
    SEALDROP_ASSIGN(LicenceRecord r, FindLicence(state, e.path().stem().string()));
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.released_at < b.released_at; });
  return out;
}

}  // namespace sealdrop
