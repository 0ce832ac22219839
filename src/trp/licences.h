// What the processor keeps: staged packages before release, licences after.
//
// FileStaging writes a held package to STATE/staging/ID.part (mode 0600,
// created exclusively). Nothing ever reads a staging file except the release
// path of the same session, which hands it to the host and deletes it; a
// crash leaves a .part file that the next start of the processor deletes.
//
// A licence (STATE/licences/PACKAGE_ID.json, written atomically) holds what
// running the package later needs: the server key that signed its manifest
// (the one proven in the inner handshake), the receipt and the release.
//
// Thread safety: functions on distinct files are safe from several threads.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/trp_session.h"

namespace sealdrop {

class FileStaging : public PackageStaging {
 public:
  explicit FileStaging(std::filesystem::path dir);
  ~FileStaging() override;
  Status Begin(uint64_t total_size) override;
  Status Append(ByteView bytes) override;
  Status Finish() override;
  void Discard() override;
  // After Finish: the held file, for the release path.
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path dir_;
  std::filesystem::path path_;
  int fd_ = -1;
};

// Deletes staging files a crashed process left behind.
void CleanStaging(const std::filesystem::path& state);

struct LicenceRecord {
  std::string package_id;
  int64_t program_id = 0;
  std::string name;
  std::string version;
  std::string kind;
  std::string package_digest;
  uint64_t size = 0;
  std::string server_key_pem;
  std::string receipt_id;
  std::string receipt_jws;
  std::string release_jws;
  int64_t released_at = 0;
};

Status SaveLicence(const std::filesystem::path& state, const Licence& licence);
Result<LicenceRecord> FindLicence(const std::filesystem::path& state, std::string_view package_id);
Result<std::vector<LicenceRecord>> ListLicences(const std::filesystem::path& state);

}  // namespace sealdrop
