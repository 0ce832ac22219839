// sealdropd: the program distribution server and its admin commands.
#include <pwd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/time_format.h"
#include "base/daemon.h"
#include "base/log.h"
#include "cli/cli_common.h"
#include "server/data_dir.h"
#include "server/http_server.h"

using namespace sealdrop;
namespace fs = std::filesystem;

namespace {
const char* kProg = "sealdropd";

Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Fail(ErrorCode::kInvalidArgument, "--listen must be HOST:PORT, for example 127.0.0.1:8443");
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    size_t used = 0;
    int port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port < 0 || port > 65535) throw std::out_of_range("port");
    return std::make_pair(host, static_cast<uint16_t>(port));
  } catch (const std::exception&) {
    return Fail(ErrorCode::kInvalidArgument, "--listen has no valid port number (0-65535)");
  }
}

std::string Rfc3339(int64_t unix_seconds) {
  return FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds)));
}

// The printed line for `device revoke`: what the store knew of the serial.
std::string RevokeMessage(const RevokeOutcome& r) {
  const DeviceRecord& d = r.device;
  if (r.already_revoked)
    return "processor " + d.serial + " was already revoked on " + Rfc3339(d.revoked_at) + " (" + d.revoke_reason +
           "); nothing changed";
  if (d.deliveries == 0)
    return "no processor with serial " + d.serial +
           " has been seen by this store; it is revoked anyway and will be refused if it connects";
  return "processor " + d.serial + " is revoked (" + std::to_string(d.receipts) + " receipts, " +
         std::to_string(d.deliveries) + " deliveries, last seen " + Rfc3339(d.last_seen) +
         "); it will be refused from now on";
}

// One log line per admin command that changed the data directory, for the
// operator's record of who changed what (the ledger's audit chain keeps the
// money side).
void LogAdmin(std::string_view command, std::initializer_list<LogField> fields) {
  SetLogProgram(kProg);
  std::vector<LogField> all = {{"command", command}};
  // The account that ran the command, from the process's real uid: $USER
  // is whatever the caller's environment says.
  std::string who = "uid " + std::to_string(::getuid());
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_name != nullptr) who = pw->pw_name;
  all.push_back({"operator", who});
  all.insert(all.end(), fields.begin(), fields.end());
  LogFields(LogLevel::kInfo, "admin", all);
}
}  // namespace

int main(int argc, char** argv) {
  TuneAllocatorForStreaming();
  cli::EnsureStandardDescriptors();
  CLI::App app{"sealdropd: sells programs and delivers each one sealed for a single processor."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sealdropd ") + std::string(sealdrop::cli::Version()));
  std::string data;

  ServerConfig config;
  auto* init = app.add_subcommand("init", "Create DATA: the ledger, the server key and DATA/server.csr");
  init->add_option("DATA", data, "Data directory (must be new or empty)")->required();
  init->add_option("--name", config.name, "Server name (the certificate's common name)")->required();
  init->add_option("--host", config.hosts, "DNS name or IP address clients use (repeatable; default localhost and 127.0.0.1)");
  init->add_option("--device-limit", config.device_limit, "Devices one receipt may be delivered to")->capture_default_str();

  std::string cert;
  std::vector<std::string> trust, crls;
  auto* install = app.add_subcommand("install", "Install the server certificate, manufacturer roots and CRLs");
  install->add_option("DATA", data, "Data directory")->required();
  install->add_option("--cert", cert, "The certificate the vendor CA issued for DATA/server.csr");
  install->add_option("--trust", trust, "A manufacturer root CA to trust (repeatable)");
  install->add_option("--crl", crls, "A manufacturer CRL (repeatable)");

  auto* user = app.add_subcommand("user", "Manage users");
  user->require_subcommand(1);
  std::string user_name;
  int64_t credit = 0;
  auto* user_add = user->add_subcommand("add", "Add a user; the password is read from standard input");
  user_add->add_option("DATA", data, "Data directory")->required();
  user_add->add_option("USER", user_name, "User ID")->required();
  user_add->add_option("--credit", credit, "Starting balance")->required()->check(cli::WholeNumberAtLeast(0));
  auto* user_credit = user->add_subcommand("credit", "Add to a user's balance");
  user_credit->add_option("DATA", data, "Data directory")->required();
  user_credit->add_option("USER", user_name, "User ID")->required();
  user_credit->add_option("AMOUNT", credit, "Amount")->required()->check(cli::WholeNumberAtLeast(1));

  auto* program = app.add_subcommand("program", "Manage programs");
  program->require_subcommand(1);
  std::string file, name, version;
  int64_t price = 0;
  bool as_json = false, may_export = false;
  auto* program_add = program->add_subcommand(
      "add", "Add a program or data file. ELF executables are sealed as protected programs (code and data "
             "encrypted, imports plaintext); anything else is sealed as data");
  program_add->add_option("DATA", data, "Data directory")->required();
  program_add->add_option("FILE", file, "The program file")->required()->check(CLI::ExistingFile);
  program_add->add_option("--name", name, "Catalogue name")->required();
  program_add->add_option("--version", version, "Version")->required();
  program_add->add_option("--price", price, "Price in the smallest currency unit")->required()->check(cli::WholeNumberAtLeast(0));
  program_add->add_flag("--export", may_export,
                        "Data only: the licence lets 'sealdrop open' write the plaintext to the user's host");
  auto* program_list = program->add_subcommand("list", "List the catalogue");
  program_list->add_option("DATA", data, "Data directory")->required();
  program_list->add_flag("--json", as_json, "Print JSON");

  auto* device = app.add_subcommand("device", "Manage processors");
  device->require_subcommand(1);
  std::string serial, reason = "revoked by the vendor";
  auto* device_revoke = device->add_subcommand("revoke", "Refuse a processor from now on");
  device_revoke->add_option("DATA", data, "Data directory")->required();
  device_revoke->add_option("SERIAL", serial, "Device serial (as printed by 'sealdrop-trp init')")->required();
  device_revoke->add_option("--reason", reason, "Reason kept in the audit log");
  auto* device_list = device->add_subcommand(
      "list", "List the processors seen in deliveries and those revoked, with their counts and status");
  device_list->add_option("DATA", data, "Data directory")->required();
  device_list->add_flag("--json", as_json, "Print JSON (times in RFC 3339 UTC)");

  auto* audit = app.add_subcommand("audit", "Audit log");
  audit->require_subcommand(1);
  auto* audit_verify = audit->add_subcommand("verify", "Recompute the audit hash chain");
  audit_verify->add_option("DATA", data, "Data directory")->required();

  std::string listen = "127.0.0.1:8443", port_file;
  int threads = 2;
  auto* serve = app.add_subcommand(
      "serve", "Serve HTTPS and WebSocket sessions until SIGINT or SIGTERM; SIGHUP reloads the certificate, key, "
               "manufacturer roots, CRLs and configuration. Logs are JSON lines on standard error");
  serve->add_option("DATA", data, "Data directory")->required();
  serve->add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free one)")->capture_default_str();
  serve->add_option("--threads", threads, "I/O threads")->capture_default_str()->check(cli::WholeNumber(1, 64));
  int ledger_threads = 8;
  serve->add_option("--ledger-threads", ledger_threads,
                    "Threads that run ledger calls (the I/O threads never wait on the ledger)")
      ->capture_default_str()
      ->check(cli::WholeNumber(1, 256));
  serve->add_option("--port-file", port_file, "Write the bound port number to this file");
  std::string metrics_listen = "127.0.0.1:9464", metrics_port_file;
  serve->add_option("--metrics-listen", metrics_listen,
                    "HOST:PORT of the plain-HTTP /metrics and /healthz listener (keep it on loopback or a "
                    "private network), or 'none'")
      ->capture_default_str();
  serve->add_option("--metrics-port-file", metrics_port_file, "Write the bound metrics port number to this file");
  int max_connections = 1024;
  serve->add_option("--max-connections", max_connections, "Connections served at once; more are closed at accept")
      ->capture_default_str()
      ->check(cli::WholeNumber(1, 1000000));
  int per_address = 64;
  serve->add_option("--max-connections-per-address", per_address, "Connections one client address may hold at once")
      ->capture_default_str()
      ->check(cli::WholeNumber(1, 1000000));
  int per_user = 16;
  serve->add_option("--max-sessions-per-user", per_user, "Sessions one user may hold at once, from any address")
      ->capture_default_str()
      ->check(cli::WholeNumber(1, 1000000));
  int idle_timeout = 120;
  serve->add_option("--idle-timeout", idle_timeout, "Seconds a session may receive nothing before it is closed")
      ->capture_default_str()
      ->check(cli::WholeNumber(1, 86400));

  if (auto done = cli::Parse(app, argc, argv, kProg)) return *done;

  if (*init) {
    if (config.hosts.empty()) config.hosts = {"localhost", "127.0.0.1"};
    auto st = InitServerData(data, config);
    if (!st) return cli::Report(kProg, st.error());
    std::cerr << "created " << data << "; have the vendor CA issue " << (fs::path(data) / "server.csr").string()
              << " (profile server), then run 'sealdropd install'\n";
    return 0;
  }
  if (*install) {
    if (cert.empty() && trust.empty() && crls.empty())
      return cli::Report(kProg, {ErrorCode::kInvalidArgument, "install needs --cert, --trust or --crl"});
    std::vector<fs::path> t(trust.begin(), trust.end()), c(crls.begin(), crls.end());
    auto st = InstallServerFiles(data, cert, t, c);
    if (!st) return cli::Report(kProg, st.error());
    LogAdmin("install", {{"detail", std::to_string(!cert.empty()) + " certificate(s), " + std::to_string(t.size()) +
                                        " root(s), " + std::to_string(c.size()) +
                                        " CRL(s) installed; send SIGHUP to a running server to use them"}});
    return 0;
  }
  if (*serve) {
    SetLogProgram(kProg);
    const auto& stop = cli::StopFlag();
    const auto& reload = ReloadRequests();
    auto addr = ParseListen(listen);
    if (!addr) return cli::Report(kProg, addr.error());
    ServeOptions options;
    if (metrics_listen == "none") {
      options.metrics_host.clear();
    } else {
      auto metrics_addr = ParseListen(metrics_listen);
      if (!metrics_addr)
        return cli::Report(kProg, {ErrorCode::kInvalidArgument,
                                   "--metrics-listen must be HOST:PORT, for example 127.0.0.1:9464, or none"});
      options.metrics_host = metrics_addr->first;
      options.metrics_port = metrics_addr->second;
    }
    options.metrics_port_file = metrics_port_file;
    options.reload = &reload;
    auto loaded = LoadServerData(data);
    if (!loaded) return cli::Report(kProg, loaded.error());
    options.host = addr->first;
    options.port = addr->second;
    options.threads = threads;
    options.ledger_threads = ledger_threads;
    options.port_file = port_file;
    options.max_connections = max_connections;
    options.idle_timeout = std::chrono::seconds(idle_timeout);
    options.max_connections_per_address = per_address;
    options.max_sessions_per_user = per_user;
#ifdef SEALDROP_FAULTY_SERVER
    // The test build only: a deliberate bug named by the environment.
    if (const char* fault = std::getenv("SEALDROP_SERVER_FAULT")) {
      std::string_view f(fault);
      options.fault = f == "double_charge"     ? ServerFault::kDoubleCharge
                      : f == "bad_receipt"     ? ServerFault::kBadReceipt
                      : f == "foreign_package" ? ServerFault::kForeignPackage
                                               : ServerFault::kNone;
      if (options.fault == ServerFault::kNone)
        return cli::Report(kProg, {ErrorCode::kInvalidArgument, "unknown SEALDROP_SERVER_FAULT " + std::string(f)});
      Log(LogLevel::kWarning, "fault", {{"detail", "this server misbehaves on purpose: " + std::string(f)}});
    }
#endif
    // Each connection holds one descriptor; the ledger, listeners and files a few more.
    if (uint64_t fds = RaiseDescriptorLimit(); fds < static_cast<uint64_t>(options.max_connections) + 64)
      Log(LogLevel::kWarning, "descriptor_limit",
          {{"detail", "the open-file limit is " + std::to_string(fds) + ", too low for --max-connections " +
                          std::to_string(options.max_connections) +
                          "; raise it (LimitNOFILE= in the unit, ulimit -n) or lower --max-connections"}});
    auto st = ServeHttps(*loaded, options, stop);
    if (!st) return cli::Report(kProg, st.error());
    return 0;
  }

  auto ledger = OpenServerLedger(data);
  if (!ledger) return cli::Report(kProg, ledger.error());
  if (*user_add) {
    auto password = cli::ReadSecret("SEALDROPD_PASSWORD", "new user's password");
    if (!password) return cli::Report(kProg, password.error());
    auto st = (*ledger)->AddUser(user_name, *password, credit);
    if (!st) return cli::Report(kProg, st.error());
    LogAdmin("user_add", {{"user", user_name}, {"credit", std::to_string(credit)}});
    return 0;
  }
  if (*user_credit) {
    auto st = (*ledger)->AddCredit(user_name, credit);
    if (!st) return cli::Report(kProg, st.error());
    LogAdmin("user_credit", {{"user", user_name}, {"credit", std::to_string(credit)}});
    return 0;
  }
  if (*program_add) {
    auto p = AddProgramFile(data, **ledger, file, name, version, price, may_export);
    if (!p) return cli::Report(kProg, p.error());
    std::cout << p->name << " " << p->version << " (" << (p->kind == "elf" ? "protected program" : "data")
              << ", " << p->size << " bytes, price " << p->price << (p->may_export ? ", export allowed" : "")
              << ") added\n";
    LogAdmin("program_add", {{"name", p->name}, {"version", p->version}, {"price", std::to_string(p->price)},
                             {"kind", p->kind}});
    return 0;
  }
  if (*program_list) {
    auto catalog = (*ledger)->Catalog();
    if (!catalog) return cli::Report(kProg, catalog.error());
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& p : *catalog) {
      if (as_json)
        arr.push_back({{"id", p.id}, {"name", p.name}, {"version", p.version}, {"price", p.price},
                       {"kind", p.kind}, {"size", p.size}, {"sha256", p.sha256}});
      else
        std::cout << p.name << "\t" << p.version << "\t" << p.price << "\t" << p.kind << "\t" << p.size << "\n";
    }
    if (as_json) std::cout << arr.dump(2) << "\n";
    return 0;
  }
  if (*device_revoke) {
    auto revoked = (*ledger)->RevokeDevice(serial, reason);
    if (!revoked) {
      Error e = revoked.error();
      if (e.code == ErrorCode::kInvalidArgument && e.message.starts_with("the device serial"))
        e.message += "; give the serial as 'sealdrop-trp init' printed it";
      return cli::Report(kProg, e);
    }
    std::cout << RevokeMessage(*revoked) << "\n";
    LogAdmin("device_revoke", {{"device", serial}, {"detail", reason}});
    return 0;
  }
  if (*device_list) {
    auto devices = (*ledger)->Devices();
    if (!devices) return cli::Report(kProg, devices.error());
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& d : *devices) {
      auto when = [](int64_t t) { return t == 0 ? std::string() : Rfc3339(t); };
      if (as_json) {
        nlohmann::json j = {{"serial", d.serial},         {"receipts", d.receipts},
                            {"deliveries", d.deliveries}, {"first_seen", nullptr},
                            {"last_seen", nullptr},       {"revoked", d.revoked}};
        if (d.first_seen != 0) j["first_seen"] = when(d.first_seen);
        if (d.last_seen != 0) j["last_seen"] = when(d.last_seen);
        if (d.revoked) {
          j["revoked_at"] = when(d.revoked_at);
          j["revoke_reason"] = d.revoke_reason;
        }
        arr.push_back(std::move(j));
      } else {
        std::cout << d.serial << "\t" << d.receipts << " receipts\t" << d.deliveries << " deliveries\t"
                  << (d.first_seen ? when(d.first_seen) : "never seen") << "\t"
                  << (d.last_seen ? when(d.last_seen) : "-") << "\t"
                  << (d.revoked ? "revoked " + when(d.revoked_at) + " (" + d.revoke_reason + ")" : "active")
                  << "\n";
      }
    }
    if (as_json) std::cout << arr.dump(2) << "\n";
    return 0;
  }
  if (*audit_verify) {
    auto st = (*ledger)->VerifyAudit();
    if (!st) return cli::Report(kProg, st.error());
    auto log = (*ledger)->AuditLog();
    std::cout << "audit chain verifies (" << (log ? log->size() : 0) << " entries)\n";
    return 0;
  }
  return cli::kExitUsage;
}
