// What the processor keeps: staged packages before release, licences after.
//
// FileStaging writes a held package to a nameless file (O_TMPFILE) in
// STATE/staging/, mode 0600: it has no path anyone could open, and it
// vanishes by itself when the processor crashes or the session ends without a
// release. Only the release path of the same session reads it, handing the
// host a read-only descriptor (which the host may link into its own store
// when uid and filesystem allow). Filesystems without O_TMPFILE get a named
// STATE/staging/ID.part instead, deleted at release and at the next start.
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
#include "base/unique_fd.h"
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
  // After Finish: a new read-only descriptor of the held file (step 1011);
  // the held file's own name, if it has one, is removed.
  Result<UniqueFd> OpenForRelease();

 private:
  std::filesystem::path dir_;
  std::filesystem::path path_;
  UniqueFd fd_;
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
