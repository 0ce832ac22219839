#include "pki/ca.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "base/encoding.h"
#include "base/files.h"
#include "crypto/random.h"
#include "pki/ca_state.h"
#include "pki/pki_internal.h"

namespace sealdrop {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::system_clock;
using pki_internal::CaState;
using pki_internal::FormatUtc;

constexpr char kKeyFile[] = "ca.key";
constexpr char kCertFile[] = "ca.pem";
constexpr char kCrlFile[] = "crl.pem";
constexpr char kStateFile[] = "state.json";
constexpr char kIssuedDir[] = "issued";
constexpr char kLockFile[] = "lock";
constexpr size_t kMaxKeyFileSize = 64 * 1024;

Clock::duration Days(int days) { return std::chrono::hours(24) * days; }

Status CheckDays(int days, std::string_view what) {
  if (days < 1 || days > kMaxValidityDays)
    return Fail(ErrorCode::kInvalidArgument, std::string(what) + " must be between 1 and " +
                                                 std::to_string(kMaxValidityDays) + " days");
  return Ok();
}

// Held while a command changes DIR; the kernel drops it if the process dies.
class DirLock {
 public:
  static Result<DirLock> Acquire(const fs::path& dir) {
    fs::path path = dir / kLockFile;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
      return Fail(ErrorCode::kIo,
                  "cannot open the lock file " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK)
        return Fail(ErrorCode::kUnavailable, "another sealdrop-ca command is using " +
                                                 dir.string() + "; try again when it has finished");
      return Fail(ErrorCode::kIo, "cannot lock " + path.string() + ": " + std::strerror(err));
    }
    return DirLock(fd);
  }
  DirLock(DirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

Status RequireCaDir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec))
    return Fail(ErrorCode::kNotFound, "there is no CA at " + dir.string() +
                                          " (the directory does not exist); create one with "
                                          "`sealdrop-ca init`");
  if (!fs::is_directory(dir, ec))
    return Fail(ErrorCode::kNotFound, dir.string() + " is not a directory, so it cannot hold a CA");
  if (!fs::exists(dir / kCertFile, ec) || !fs::exists(dir / kStateFile, ec))
    return Fail(ErrorCode::kNotFound, dir.string() + " is not a CA directory (it has no " +
                                          kCertFile + " or " + kStateFile + ")");
  return Ok();
}

struct LoadedCa {
  Certificate cert;
  EcPrivateKey key;
};

Result<EcPrivateKey> LoadCaKey(const fs::path& path) {
  SEALDROP_TRY(CheckPrivateFileMode(path, "the CA key"));
  SEALDROP_ASSIGN(Bytes pem, ReadFile(path, kMaxKeyFileSize));
  SecretBytes secret(pem, SecretAccess{});
  SecureWipe(pem.data(), pem.size());
  auto key = EcPrivateKey::FromPkcs8Pem(secret);
  if (!key)
    return Fail(ErrorCode::kMalformed,
                "the CA key " + path.string() + " is not a P-256 PKCS#8 PEM private key");
  return key;
}

Result<LoadedCa> LoadCa(const fs::path& dir) {
  SEALDROP_ASSIGN(std::string pem, ReadTextFile(dir / kCertFile, kMaxPemFileSize));
  auto cert = Certificate::FromPem(pem);
  if (!cert) return std::unexpected(WithContext(cert.error(), (dir / kCertFile).string()));
  SEALDROP_ASSIGN(EcPrivateKey key, LoadCaKey(dir / kKeyFile));
  if (!(key.PublicKey() == cert->PublicKey()))
    return Fail(ErrorCode::kInvalidArgument,
                (dir / kKeyFile).string() + " is not the key of " + (dir / kCertFile).string());
  return LoadedCa{std::move(*cert), std::move(key)};
}

Result<std::string> SignCurrentCrl(const LoadedCa& ca, const CaState& state,
                                   Clock::time_point now) {
  std::vector<pki_internal::CrlEntry> revoked;
  for (const CaIssuedCert& c : state.issued)
    if (c.revoked) revoked.push_back({c.serial_hex, c.revoked_at});
  return pki_internal::SignCrlPem(ca.cert, ca.key, revoked, state.crl_number, now - kCaBackdate,
                                  now + Days(state.crl_days));
}

// Writes the new CRL, then the state that describes it. If the state cannot
// be written the old CRL goes back, so DIR stays as it was; a crash between
// the two leaves a CRL that lists one more certificate than the state, which
// errs on the side of the revocation.
Status CommitCrlAndState(const fs::path& dir, const std::string& crl_pem, const CaState& state) {
  auto old_crl =
      ReadTextFile(dir / kCrlFile, kMaxPemFileSize);  // may be gone; then nothing to restore
  SEALDROP_TRY(WriteFileAtomic(dir / kCrlFile, crl_pem, 0644));
  auto saved = pki_internal::SaveCaState(dir / kStateFile, state);
  if (!saved && old_crl) (void)WriteFileAtomic(dir / kCrlFile, *old_crl, 0644);
  return saved;
}

// Strips what openssl and people add to a serial: case, ':' and leading zeros.
Result<std::string> CanonicalSerial(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ':') continue;
    char lower = static_cast<char>((c >= 'A' && c <= 'F') ? c - 'A' + 'a' : c);
    if (!((lower >= '0' && lower <= '9') || (lower >= 'a' && lower <= 'f')) || out.size() > 128)
      return Fail(ErrorCode::kInvalidArgument,
                  "the serial must be hexadecimal, as `sealdrop-ca list` prints it");
    if (out.empty() && lower == '0') continue;
    out += lower;
  }
  if (out.empty())
    return Fail(ErrorCode::kInvalidArgument,
                "the serial must be hexadecimal, as `sealdrop-ca list` prints it");
  return out;
}

Status CheckCsrAgainstProfile(const pki_internal::ParsedCsr& csr, CertProfile profile,
                              DeviceKeyRole* role) {
  if (profile == CertProfile::kDevice) {
    if (csr.serial_number.empty())
      return Fail(ErrorCode::kInvalidArgument,
                  "the CSR has no device serial (subject serialNumber), so it cannot get a device "
                  "certificate");
    if (!csr.hosts.empty())
      return Fail(ErrorCode::kInvalidArgument,
                  "the CSR names hosts, which a device certificate cannot carry; issue it with "
                  "--profile server or make a device CSR");
    if (csr.key_usage == KU_DIGITAL_SIGNATURE) {
      *role = DeviceKeyRole::kIdentity;
    } else if (csr.key_usage == KU_KEY_AGREEMENT) {
      *role = DeviceKeyRole::kKeyWrap;
    } else {
      return Fail(ErrorCode::kInvalidArgument,
                  "a device CSR must ask for exactly one key usage: digitalSignature (identity "
                  "key) or keyAgreement (key-wrap key)");
    }
    return Ok();
  }
  if (csr.hosts.empty())
    return Fail(ErrorCode::kInvalidArgument,
                "the CSR names no hosts (subjectAltName), so it cannot get a server certificate");
  if (!csr.serial_number.empty())
    return Fail(ErrorCode::kInvalidArgument,
                "the CSR has a device serial, which a server certificate cannot carry; issue it "
                "with --profile device or make a server CSR");
  if (csr.key_usage && *csr.key_usage != KU_DIGITAL_SIGNATURE)
    return Fail(ErrorCode::kInvalidArgument,
                "a server CSR may ask only for the digitalSignature key usage");
  *role = DeviceKeyRole::kIdentity;
  return Ok();
}

// Creates the CA's files in `tmp`, which becomes DIR once complete.
Status PopulateNewCa(const fs::path& tmp, const CaInitOptions& options) {
  SEALDROP_ASSIGN(EcPrivateKey key, EcPrivateKey::Generate());
  Clock::time_point now = Clock::now();
  pki_internal::CertSpec spec;
  spec.kind = pki_internal::CertSpec::Kind::kCa;
  spec.common_name = options.name;
  spec.not_before = now - kCaBackdate;
  spec.not_after = now + Days(options.days);
  SEALDROP_ASSIGN(Certificate cert,
                  pki_internal::SignCertificate(spec, key.PublicKey(), nullptr, key));

  SecretBytes key_pem = key.ToPkcs8Pem();
  SEALDROP_TRY(WriteFileAtomic(tmp / kKeyFile, key_pem.Reveal(SecretAccess{}), 0600));
  SEALDROP_TRY(WriteFileAtomic(tmp / kCertFile, cert.ToPem(), 0644));
  CaState state;
  LoadedCa ca{cert, key};
  SEALDROP_ASSIGN(std::string crl, SignCurrentCrl(ca, state, now));
  SEALDROP_TRY(WriteFileAtomic(tmp / kCrlFile, crl, 0644));
  SEALDROP_TRY(pki_internal::SaveCaState(tmp / kStateFile, state));
  SEALDROP_TRY(WriteFileAtomic(tmp / kLockFile, std::string_view(), 0600));
  SEALDROP_TRY(EnsureDirectory(tmp / kIssuedDir, 0700));
  return SyncDirectory(tmp);
}

}  // namespace

Status CaInit(const fs::path& dir, const CaInitOptions& options) {
  if (auto st = pki_internal::CheckCommonName(options.name); !st)
    return Fail(ErrorCode::kInvalidArgument, "the CA name is not usable: " + st.error().message);
  SEALDROP_TRY(CheckDays(options.days, "the CA's validity"));

  std::error_code ec;
  fs::path target = fs::absolute(dir, ec).lexically_normal();
  if (ec || target.empty())
    return Fail(ErrorCode::kInvalidArgument, "cannot resolve " + dir.string());
  if (!target.has_filename()) target = target.parent_path();  // "ca/" names "ca"
  if (target == target.root_path())
    return Fail(ErrorCode::kInvalidArgument, "a CA cannot be created at the root directory");

  auto status = fs::symlink_status(target, ec);
  if (fs::is_symlink(status))
    return Fail(ErrorCode::kInvalidArgument,
                dir.string() + " is a symbolic link; give the directory it points to");
  if (fs::exists(status)) {
    if (!fs::is_directory(status))
      return Fail(ErrorCode::kInvalidArgument, dir.string() + " exists and is not a directory");
    if (!fs::is_empty(target, ec) || ec)
      return Fail(ErrorCode::kInvalidArgument,
                  dir.string() + " is not empty; a CA is only created in a new or empty directory");
  }

  fs::path parent = target.parent_path();
  fs::create_directories(parent, ec);
  if (ec)
    return Fail(ErrorCode::kIo,
                "cannot create the directory " + parent.string() + ": " + ec.message());
  fs::path tmp = parent / ("." + target.filename().string() + ".init." + RandomHexId(8));
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return Fail(ErrorCode::kIo, "cannot create " + tmp.string() + ": " + std::strerror(errno));

  auto populated = PopulateNewCa(tmp, options);
  // rename() replaces an empty directory atomically and fails on a non-empty
  // one, so a directory filled in the meantime is never overwritten.
  if (populated && ::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    populated =
        (err == ENOTEMPTY || err == EEXIST)
            ? Fail(ErrorCode::kInvalidArgument,
                   dir.string() + " is not empty; a CA is only created in a new or empty directory")
            : Fail(ErrorCode::kIo,
                   "cannot move the new CA into " + target.string() + ": " + std::strerror(err));
  }
  if (!populated) {
    fs::remove_all(tmp, ec);
    return populated;
  }
  return SyncDirectory(parent);
}

namespace {

// What gets certified, whether it came from a CSR or from a key whose
// possession was proven otherwise.
struct IssueSubject {
  EcPublicKey key;
  std::string common_name;
  std::string serial_number;
  std::vector<std::string> hosts;
  DeviceKeyRole role = DeviceKeyRole::kIdentity;
};

Result<std::string> IssueChecked(const fs::path& dir, const IssueSubject& subject, const CaIssueOptions& options);

}  // namespace

Result<std::string> CaIssue(const fs::path& dir, std::string_view csr_pem,
                            const CaIssueOptions& options) {
  SEALDROP_TRY(CheckDays(options.days, "the certificate's validity"));
  SEALDROP_TRY(RequireCaDir(dir));
  SEALDROP_ASSIGN(auto csr, pki_internal::ParseCsrPem(csr_pem));
  DeviceKeyRole role = DeviceKeyRole::kIdentity;
  SEALDROP_TRY(CheckCsrAgainstProfile(csr, options.profile, &role));
  return IssueChecked(dir, {csr.key, csr.common_name, csr.serial_number, csr.hosts, role}, options);
}

Result<std::string> CaIssueDeviceKey(const fs::path& dir, const EcPublicKey& key, std::string_view common_name,
                                     std::string_view device_serial, DeviceKeyRole role,
                                     const CaIssueOptions& options) {
  SEALDROP_TRY(CheckDays(options.days, "the certificate's validity"));
  if (options.profile != CertProfile::kDevice)
    return Fail(ErrorCode::kInvalidArgument, "CaIssueDeviceKey issues device certificates only");
  if (device_serial.empty()) return Fail(ErrorCode::kInvalidArgument, "a device certificate needs a device serial");
  SEALDROP_TRY(RequireCaDir(dir));
  return IssueChecked(dir, {key, std::string(common_name), std::string(device_serial), {}, role}, options);
}

namespace {

Result<std::string> IssueChecked(const fs::path& dir, const IssueSubject& csr, const CaIssueOptions& options) {
  const DeviceKeyRole role = csr.role;
  if (std::abs(options.not_before_offset_days) > kMaxValidityDays)
    return Fail(ErrorCode::kInvalidArgument, "the validity offset is out of range");
  SEALDROP_ASSIGN(DirLock lock, DirLock::Acquire(dir));
  SEALDROP_ASSIGN(LoadedCa ca, LoadCa(dir));
  SEALDROP_ASSIGN(CaState state, pki_internal::LoadCaState(dir / kStateFile));

  Clock::time_point now = Clock::now();
  if (ca.cert.NotAfter() <= now)
    return Fail(ErrorCode::kRefused, "the CA certificate expired on " +
                                         FormatUtc(ca.cert.NotAfter()) + "; create a new CA");
  if (csr.key == ca.cert.PublicKey())
    return Fail(ErrorCode::kRefused, "the CSR's key is the CA's own key; make a new key for it");
  std::string key_id = csr.key.KeyId();
  for (const CaIssuedCert& c : state.issued) {
    if (c.key_id == key_id && (c.profile != options.profile || c.role != role))
      return Fail(ErrorCode::kRefused,
                  "the CSR's key was already certified by this CA as a " +
                      std::string(pki_internal::ProfileName(c.profile)) +
                      (c.profile == CertProfile::kDevice
                           ? std::string(" ") + pki_internal::RoleName(c.role) + " key"
                           : std::string(" key")) +
                      " (serial " + c.serial_hex + "); each role needs its own key");
  }

  Clock::time_point start = now + Days(options.not_before_offset_days);
  pki_internal::CertSpec spec;
  spec.kind = options.profile == CertProfile::kDevice ? pki_internal::CertSpec::Kind::kDevice
                                                      : pki_internal::CertSpec::Kind::kServer;
  spec.common_name = csr.common_name;
  spec.serial_number = csr.serial_number;
  spec.hosts = csr.hosts;
  spec.role = role;
  if (!options.tpm_ek_certificate_sha256.empty()) {
    if (options.profile != CertProfile::kDevice)
      return Fail(ErrorCode::kInvalidArgument, "only device certificates carry a TPM binding");
    spec.tpm_ek_certificate_sha256 = options.tpm_ek_certificate_sha256;
  }
  spec.not_before = start - kCaBackdate;
  spec.not_after = start + Days(options.days);
  if (spec.not_after > ca.cert.NotAfter())
    return Fail(ErrorCode::kInvalidArgument,
                "the certificate would outlive the CA, which expires on " +
                    FormatUtc(ca.cert.NotAfter()) + "; ask for fewer days");
  SEALDROP_ASSIGN(Certificate cert, pki_internal::SignCertificate(spec, csr.key, &ca.cert, ca.key));

  std::string pem = cert.ToPem();
  fs::path issued_file = dir / kIssuedDir / (cert.SerialHex() + ".pem");
  if (fs::exists(issued_file))
    return Fail(ErrorCode::kInternal,
                "a certificate with serial " + cert.SerialHex() + " exists already");
  SEALDROP_TRY(EnsureDirectory(dir / kIssuedDir, 0700));
  SEALDROP_TRY(WriteFileAtomic(issued_file, pem, 0644));

  CaIssuedCert record;
  record.serial_hex = cert.SerialHex();
  record.profile = options.profile;
  record.role = role;
  record.common_name = csr.common_name;
  record.device_serial = csr.serial_number;
  record.hosts = csr.hosts;
  record.key_id = key_id;
  record.tpm_ek_certificate_sha256 = HexEncode(options.tpm_ek_certificate_sha256);
  record.not_before = cert.NotBefore();
  record.not_after = cert.NotAfter();
  record.issued_at = now;
  state.issued.push_back(std::move(record));
  if (auto saved = pki_internal::SaveCaState(dir / kStateFile, state); !saved) {
    ::unlink(issued_file.c_str());
    return std::unexpected(saved.error());
  }
  return pem;
}

}  // namespace

Status CaRevoke(const fs::path& dir, std::string_view serial_hex) {
  SEALDROP_ASSIGN(std::string serial, CanonicalSerial(serial_hex));
  SEALDROP_TRY(RequireCaDir(dir));
  SEALDROP_ASSIGN(DirLock lock, DirLock::Acquire(dir));
  SEALDROP_ASSIGN(LoadedCa ca, LoadCa(dir));
  SEALDROP_ASSIGN(CaState state, pki_internal::LoadCaState(dir / kStateFile));

  auto it = std::find_if(state.issued.begin(), state.issued.end(), [&](const CaIssuedCert& c) {
    auto canonical = CanonicalSerial(c.serial_hex);
    return canonical && *canonical == serial;
  });
  if (it == state.issued.end())
    return Fail(ErrorCode::kNotFound, "this CA has issued no certificate with serial " + serial +
                                          "; see `sealdrop-ca list`");
  if (it->revoked)
    return Fail(ErrorCode::kInvalidArgument, "the certificate with serial " + it->serial_hex +
                                                 " was already revoked on " +
                                                 FormatUtc(it->revoked_at));
  Clock::time_point now = Clock::now();
  it->revoked = true;
  it->revoked_at = now;
  ++state.crl_number;
  SEALDROP_ASSIGN(std::string crl, SignCurrentCrl(ca, state, now));
  return CommitCrlAndState(dir, crl, state);
}

Status CaRenewCrl(const fs::path& dir, int days) {
  SEALDROP_TRY(CheckDays(days, "the CRL's validity"));
  SEALDROP_TRY(RequireCaDir(dir));
  SEALDROP_ASSIGN(DirLock lock, DirLock::Acquire(dir));
  SEALDROP_ASSIGN(LoadedCa ca, LoadCa(dir));
  SEALDROP_ASSIGN(CaState state, pki_internal::LoadCaState(dir / kStateFile));
  state.crl_days = days;
  ++state.crl_number;
  SEALDROP_ASSIGN(std::string crl, SignCurrentCrl(ca, state, Clock::now()));
  return CommitCrlAndState(dir, crl, state);
}

Result<std::vector<CaIssuedCert>> CaList(const fs::path& dir) {
  SEALDROP_TRY(RequireCaDir(dir));
  SEALDROP_ASSIGN(CaState state, pki_internal::LoadCaState(dir / kStateFile));
  return std::move(state.issued);
}

}  // namespace sealdrop
