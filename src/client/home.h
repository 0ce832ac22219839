// The client's files under SEALDROP_HOME (default $XDG_DATA_HOME/sealdrop,
// else ~/.local/share/sealdrop), mode 0700:
//   credentials.json      mode 0600, from login: {"current": URL, "logins": {URL:
//                         {"user","token","vendor_root_sha256"}}}, one login per
//                         server URL (https://HOST:PORT), so a token is only
//                         ever sent to the server that issued it
//   roots/SHA256.pem      the vendor root each login was verified with (--ca at
//                         login), used when --ca is not given
//   server.pem            the server certificate last verified against the
//                         vendor root (for 'sealdrop inspect')
//   receipts/ID.jws       every receipt received, written before anything else
//   packages/NAME.sdpkg   the encrypted package of each program
//   packages/NAME.json    {"name","version","package_id","receipt_id","size"}
//   pending/KEY.json      a purchase the server may have charged:
//                         {"program","version","key","again"}, written just
//                         before the charge is sent and removed once the
//                         purchase is stored or definitely not charged; a
//                         retried `buy` reuses the key, so a crash after the
//                         charge never charges twice
// All writes are atomic (write, rename); everything but package bytes is also
// fsynced (see StorePackage).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace sealdrop {

struct Credentials {
  std::string server;  // normalised: https://HOST:PORT
  std::string user;
  std::string token;
  std::string vendor_root_sha256;  // hex; empty when the login used the system's roots
};

// The form a server URL is kept and compared in ("https://HOST:PORT").
Result<std::string> NormaliseServerUrl(const std::string& url);

struct StoredPackage {
  std::string name;
  std::string version;
  std::string package_id;
  std::string receipt_id;
  uint64_t size = 0;
  std::filesystem::path file;
};

class ClientHome {
 public:
  // Resolves the directory from SEALDROP_HOME / XDG_DATA_HOME / HOME and
  // creates it if missing.
  static Result<ClientHome> Open();
  explicit ClientHome(std::filesystem::path dir) : dir_(std::move(dir)) {}

  const std::filesystem::path& dir() const { return dir_; }

  // Keeps the login for c.server (replacing an earlier one for that server)
  // and makes it the current one; `vendor_root_pem`, if not empty, is kept
  // as the root for that server and c.vendor_root_sha256 is set from it.
  Status SaveLogin(Credentials c, const std::string& vendor_root_pem) const;
  // Kept only when it changed; an empty PEM is ignored.
  Status SaveServerCertificate(const std::string& pem) const;
  std::filesystem::path ServerCertificatePath() const { return dir_ / "server.pem"; }
  // The login for `server` (any URL form), or with "" the current one;
  // kAuthFailed, with a sentence that says to log in, if there is none.
  Result<Credentials> LoadCredentials(const std::string& server = "") const;
  // The vendor root remembered for a login; empty if none was given.
  std::filesystem::path VendorRootPath(const Credentials& c) const;

  Status SaveReceipt(const std::string& receipt_id, const std::string& jws) const;
  Result<std::vector<std::string>> Receipts() const;  // JWS strings

  // Receipt of the newest stored purchase of NAME, if any.
  Result<std::string> ReceiptFor(const std::string& name) const;

  std::filesystem::path PackagePath(const std::string& name) const;
  Status SavePackageInfo(const StoredPackage& p) const;
  // Copies the released package from the processor's descriptor (in the
  // kernel where it can: copy_file_range), checks its size and renames it
  // into place with its info file (atomic; the bytes are not fsynced, see
  // home.cc). Does not close `fd`.
  Status StorePackage(int fd, const StoredPackage& p) const;
  Result<StoredPackage> FindPackage(const std::string& name) const;

  // Pending purchase keys, so a retry after a crash reuses the same key.
  // `again` (buy --again) keeps a deliberate second licence apart from a
  // first purchase of the same version.
  std::string PendingKeyFor(const std::string& program, const std::string& version, bool again = false) const;
  Status SavePending(const std::string& program, const std::string& version, const std::string& key,
                     bool again = false) const;
  void ClearPending(const std::string& key) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace sealdrop
