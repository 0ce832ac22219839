// A complete sealdrop world in one process, for tests, fuzzers and the
// adversarial host: a manufacturer CA and a vendor CA in a temporary
// directory, a server identity, processors, a real SQLite ledger with a user
// and a program, and in-memory staging. Nothing here is used by the products.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "ledger/ledger.h"
#include "pki/ca.h"
#include "protocol/host_session.h"
#include "server/session.h"
#include "protocol/trp_session.h"

namespace sealdrop::testing {

class MemoryStaging : public PackageStaging {
 public:
  Status Begin(uint64_t total) override;
  Status Append(ByteView bytes) override;
  Status Finish() override;
  void Discard() override;
  Bytes data;
  bool finished = false, discarded = false;
};

struct DeviceOptions {
  std::string serial;
  int days = 365;
  int not_before_offset_days = 0;
  std::string ca = "mfr";  // which CA directory under the world issues it
};

struct Device {
  TrpIdentity identity;
  std::optional<EcPrivateKey> wrap_key;
  std::string identity_serial_hex;  // X.509 serial of the identity certificate
};

class World {
 public:
  // Creates CAs "mfr", "mfr2" (an untrusted manufacturer) and "vendor", the
  // server, user "alice" (password "correct horse", credit 1000) and program
  // "hello" (price 100) of `program_size` bytes.
  static std::unique_ptr<World> Create(size_t program_size = 200000);
  ~World();

  Device MakeDevice(const DeviceOptions& options);
  // The program's plaintext.
  Bytes ProgramBytes() const;
  // What the second path's two ends check of each other, as TrpSession and
  // ServerSession set it up (the server asks its revocation list later).
  TlsPeerPolicy ProcessorPolicy() const;  // the processor's view of the server
  TlsPeerPolicy ServerPolicy() const;     // the server's view of a processor
  // A fresh server key and a certificate for it from the vendor CA, as a
  // renewal would make them; `server.identity` is left as it is.
  std::pair<EcPrivateKey, Certificate> NewServerKey(const std::string& common_name);

  std::filesystem::path dir;
  std::unique_ptr<Ledger> ledger;
  TrustStore manufacturers;  // trusts "mfr" only
  TrustStore vendors;        // trusts "vendor" only
  ServerContext server;
  std::filesystem::path program_path;
};

// Drives a server session, a host session and a processor session against
// each other in memory, with a hook to tamper with every relayed message.
class Loop {
 public:
  Loop(World& world, Device& device);

  // Logs in; returns the server's reply type ("welcome" or "error").
  std::string Login(const std::string& user, const std::string& password);
  // Runs a purchase to the end. Returns the error if the order failed.
  Status Buy(const std::string& program, const std::string& idempotency_key);
  Status Redownload(const std::string& receipt);
  // Moves messages until nobody has anything to say.
  void Pump();
  // Hands the server one control message and runs the ledger calls it
  // leaves (a test's stand-in for the server's ledger workers).
  void ServerControl(std::string_view text);

  // Tampering hooks, applied to each relayed inner record batch. Returning
  // std::nullopt drops it.
  std::function<std::optional<Bytes>(Bytes)> to_trp_filter;
  std::function<std::optional<Bytes>(Bytes)> to_server_filter;
  // Replaces the release JWS handed to the processor.
  std::function<std::string(std::string)> release_filter;
  // Stops before the charge step (the host "never sends Charge").
  bool skip_charge = false;

  World& world;
  Device& device;
  ServerSession server;
  HostSession host;
  MemoryStaging staging;
  std::unique_ptr<TrpSession> trp;
  std::optional<Licence> licence;
  std::optional<Error> trp_error;
  std::vector<Bytes> relayed;          // every inner batch the host saw
  std::vector<std::string> controls;   // every control message the host saw
  ControlMessage last_server_control;

 private:
  Status RunOrder(const std::function<void()>& start);
  void DeliverToTrp(HostAction action);
  bool reported_complete_ = false;
};

}  // namespace sealdrop::testing
