// sealdropd's data directory: what `sealdropd init/install/...` manage and
// `sealdropd serve` loads.
//
// Layout of DATA (mode 0700):
//   config.json          {"name", "hosts":[...], "device_limit"}
//   server.key           PKCS#8 PEM, mode 0600 (outer TLS, inner TLS, JWS)
//   server.csr           for the vendor CA (profile server)
//   server.pem           the issued certificate, then its issuers
//   manufacturers/N.pem  trusted manufacturer roots
//   crl/N.pem            manufacturer CRLs
//   ledger.db            the SQLite ledger
//   programs/ID.bin      the programs' plaintext, mode 0600
//
// Thread safety: LoadedServer is immutable after LoadServerData except the
// ledger, which is thread-safe.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "ledger/ledger.h"
#include "pki/cert.h"
#include "protocol/tls_channel.h"

namespace sealdrop {

struct ServerConfig {
  std::string name;
  std::vector<std::string> hosts;
  int device_limit = 3;  // 1 to kMaxDeviceLimit (server/session.h)
};

inline constexpr size_t kMaxServerNameSize = 64;  // an X.509 common name's upper bound
inline constexpr size_t kMaxServerHosts = 32;

// Checks every value; `init` checks what it is given and every load checks
// config.json again, which an operator may have edited by hand.
Status ValidateServerConfig(const ServerConfig& config);

Status InitServerData(const std::filesystem::path& data, const ServerConfig& config);
Status InstallServerFiles(const std::filesystem::path& data, const std::filesystem::path& cert,
                          const std::vector<std::filesystem::path>& trust,
                          const std::vector<std::filesystem::path>& crls);

struct LoadedServer {
  std::filesystem::path data;
  ServerConfig config;
  TlsIdentity identity;
  std::string cert_chain_pem;
  TrustStore manufacturers;
  std::unique_ptr<Ledger> ledger;
};

// Opens the ledger only (admin commands that need no certificate).
Result<std::unique_ptr<Ledger>> OpenServerLedger(const std::filesystem::path& data);
// Loads everything `serve` needs; fails with the missing step named, and
// refuses a server.key that group or others may read. Without open_ledger,
// `ledger` stays null: what a reload (SIGHUP) re-reads.
Result<LoadedServer> LoadServerData(const std::filesystem::path& data, bool open_ledger = true);

// Copies FILE into DATA/programs and registers it. Kind is "elf" for ELF
// files, which must be protectable (PlanProtectedElf: 64-bit little-endian
// executables with section headers and no writable code), "data" otherwise.
// `may_export` is for data only.
Result<ProgramRecord> AddProgramFile(const std::filesystem::path& data, Ledger& ledger,
                                     const std::filesystem::path& file, const std::string& name,
                                     const std::string& version, int64_t price, bool may_export = false);

}  // namespace sealdrop
