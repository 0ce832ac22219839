// sealdrop: the user's client. Buys programs, relays the processor's inner
// channel (which it cannot read), keeps receipts and packages, and runs
// programs through the processor.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/crash_point.h"
#include "base/encoding.h"
#include "base/files.h"
#include "base/time_format.h"
#include "base/unique_fd.h"
#include "cli/cli_common.h"
#include "client/home.h"
#include "client/inspect.h"
#include "client/link.h"
#include "client/progress.h"
#include "client/trp_client.h"
#include "protocol/trp_messages.h"
#include "crypto/jws.h"
#include "crypto/random.h"

using namespace sealdrop;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const char* kProg = "sealdrop";

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string DefaultTrpSocket() {
  std::string runtime = Env("XDG_RUNTIME_DIR");
  if (!runtime.empty()) return runtime + "/sealdrop/trp.sock";
  return "/tmp/sealdrop-trp-" + std::to_string(::getuid()) + ".sock";
}

struct Globals {
  std::string server, ca, trp;
  ClientHome* home = nullptr;
};

// The vendor root for a server: --ca (or SEALDROP_CA) if given, else the one
// remembered when logging in there.
std::string VendorRootFor(const Globals& g, const Credentials* creds) {
  if (!g.ca.empty() || creds == nullptr) return g.ca;
  return g.home->VendorRootPath(*creds).string();
}

// Connects and logs in with the token stored for this server. A token goes
// only to the server that issued it: with --server (or SEALDROP_SERVER)
// naming another server, there is no login to use.
Result<std::unique_ptr<ServerLink>> Session(const Globals& g, Credentials& creds, ControlMessage* welcome = nullptr) {
  SEALDROP_ASSIGN(creds, g.home->LoadCredentials(g.server));
  SEALDROP_ASSIGN(auto link, ServerLink::Connect({creds.server, VendorRootFor(g, &creds)}));
  // Remembered for 'sealdrop inspect'; failing to keep it is no reason to stop.
  (void)g.home->SaveServerCertificate(link->ServerCertificatePem());
  ControlMessage login{.type = "login"};
  login.user = creds.user;
  login.token = creds.token;
  SEALDROP_ASSIGN(ControlMessage reply, link->Request(login));
  if (reply.type == "error") {
    if (reply.code == "auth_failed")
      return Fail(ErrorCode::kAuthFailed, "the stored login at " + creds.server + " is no longer valid; run 'sealdrop login " +
                                              creds.user + "' again");
    return Fail(ErrorCodeFromName(reply.code), reply.message);
  }
  if (welcome) *welcome = reply;
  return link;
}

// The one time format of sealdrop's JSON output.
std::string Rfc3339(int64_t unix_seconds) {
  return FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds)));
}

std::string ReceiptId(const std::string& jws) {
  auto parsed = JwsParse(jws);
  if (!parsed) return "";
  auto claims = ParseReceiptClaims(parsed->payload);
  return claims ? claims->receipt_id : "";
}

// Stores what the order produces: the receipt first, then the package.
class OrderStore {
 public:
  struct PendingPurchase {
    std::string program, version, key;
    bool again = false;
  };
  OrderStore(ClientHome& home, std::string label, std::optional<PendingPurchase> pending)
      : home_(home), progress_(std::move(label)), pending_(std::move(pending)) {}

  Status operator()(const HostAction& a) {
    switch (a.kind) {
      case HostAction::Kind::kCharging:
        // From here on the server may debit: the key must survive a crash so
        // that the retry is recognised and not charged again.
        if (!pending_) return Ok();
        return home_.SavePending(pending_->program, pending_->version, pending_->key, pending_->again);
      case HostAction::Kind::kReceipt: {
        CrashPoint("client.charged");
        receipt_ = a.text;
        auto st = home_.SaveReceipt(ReceiptId(a.text), a.text);
        CrashPoint("client.receipt_saved");
        return st;
      }
      case HostAction::Kind::kProgress:
        progress_.Update(a.number, a.total);
        return Ok();
      case HostAction::Kind::kPackageDone: {
        CrashPoint("client.released");
        progress_.Finish();
        // a.fd stays the relay's: it closes it after this call (OrderSink).
        auto end = ParseTrpPackageEnd({static_cast<uint8_t>(TrpPackageEnd::kType), AsBytes(a.text)});
        if (!end) return Fail(ErrorCode::kMalformed, "the processor sent a malformed package end");
        StoredPackage p;
        p.name = end->name;
        p.version = end->version;
        p.package_id = end->package_id;
        p.receipt_id = ReceiptId(receipt_);
        p.size = end->size;
        auto st = home_.StorePackage(a.fd, p);
        if (!st) return st;
        stored_ = p;
        stored_->file = home_.PackagePath(p.name);
        return Ok();
      }
      default:
        return Ok();
    }
  }
  const std::optional<StoredPackage>& stored() const { return stored_; }
  // Ends the progress bar's line, so an error is printed on its own.
  void StopProgress() { progress_.Interrupt(); }

 private:
  ClientHome& home_;
  Progress progress_;
  std::optional<PendingPurchase> pending_;
  std::string receipt_;
  std::optional<StoredPackage> stored_;
};

// What a failed purchase means for the money, said in the error itself.
Error PurchaseFailure(Error e, const std::string& name, HostSession::Charge charge, bool resumed) {
  if (e.code == ErrorCode::kAlreadyOwned)
    return Error{e.code, "you already own " + name + "; run 'sealdrop get " + name +
                             "' to download it again at no charge, or 'sealdrop buy --again " + name +
                             "' to pay for another licence"};
  std::string retry = "run 'sealdrop buy " + name + "' again to finish it (it will not be charged twice)";
  switch (charge) {
    case HostSession::Charge::kUnanswered:
      e.message += "; the purchase may have been charged: " + retry;
      break;
    case HostSession::Charge::kCharged:
      e.message += "; the purchase was charged and its receipt is stored: " + retry;
      break;
    case HostSession::Charge::kNotSent:
      if (resumed) e.message += "; the earlier purchase may still have been charged: " + retry;
      break;
    case HostSession::Charge::kRefused:
      break;
  }
  return e;
}

int Order(const Globals& g, bool purchase, const std::string& name, const std::string& version, bool again,
          bool as_json, const std::string& receipt_file) {
  Credentials creds;
  std::string key, receipt;
  bool resumed = false;
  if (purchase) {
    key = g.home->PendingKeyFor(name, version, again);
    resumed = !key.empty();
    // With --json the same fact is the result's "resumed".
    if (!resumed)
      key = RandomHexId(16);
    else if (!as_json)
      std::cerr << "resuming an earlier purchase of " << name << " that may have been charged; it will not be charged twice\n";
  } else {
    auto r = receipt_file.empty() ? g.home->ReceiptFor(name) : ReadTextFile(receipt_file, kMaxJwsSize);
    if (!r) return cli::Report(kProg, r.error());
    receipt = *r;
    while (!receipt.empty() && (receipt.back() == '\n' || receipt.back() == '\r')) receipt.pop_back();
  }
  HostSession host;
  auto fail = [&](Error e) {
    if (!purchase) return cli::Report(kProg, e);
    const HostSession::Charge charge = host.charge();
    // Keep the key only while the server may hold a charge under it.
    const bool may_be_charged = charge == HostSession::Charge::kUnanswered || charge == HostSession::Charge::kCharged ||
                                (resumed && charge == HostSession::Charge::kNotSent);
    if (!may_be_charged) g.home->ClearPending(key);
    return cli::Report(kProg, PurchaseFailure(std::move(e), name, charge, resumed));
  };
  auto link = Session(g, creds);
  if (!link) return fail(link.error());
  if (purchase) host.StartPurchase(name, version, key, again);
  else host.StartRedownload(receipt);
  std::optional<OrderStore::PendingPurchase> pending;
  if (purchase) pending = OrderStore::PendingPurchase{name, version, key, again};
  OrderStore store(*g.home, name, pending);
  auto st = (*link)->RunOrder(host, g.trp, std::ref(store));
  if (!st) {
    store.StopProgress();
    return fail(st.error());
  }
  if (purchase) g.home->ClearPending(key);
  const ControlMessage& charged = host.charged();
  if (as_json) {
    std::cout << json{{"name", store.stored()->name}, {"version", store.stored()->version},
                      {"amount", charged.amount}, {"balance", charged.balance},
                      {"receipt_id", store.stored()->receipt_id}, {"package", store.stored()->file.string()},
                      {"size", store.stored()->size}, {"resumed", resumed}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << (purchase ? "bought " : "downloaded ") << store.stored()->name << " " << store.stored()->version
              << (charged.amount > 0 ? " for " + std::to_string(charged.amount) : std::string(" (no charge)"))
              << "; balance " << charged.balance << "; receipt " << store.stored()->receipt_id << "\n";
  }
  return 0;
}

int Inspect(const ClientHome& home, const std::string& what, const std::string& cert_file, bool as_json) {
  // A bare name is a stored program first (a file of that name in the
  // working directory, such as the program's own unsealed build, does not
  // hide it); a path, or a bare name no program has, is a file.
  fs::path file = what;
  std::error_code ec;
  std::optional<fs::path> stored;
  if (what.find('/') == std::string::npos)
    if (auto found = home.FindPackage(what)) stored = found->file;
  if (stored) {
    file = *stored;
  } else if (!fs::exists(file, ec)) {
    return cli::Report(kProg, {ErrorCode::kNotFound, "no package file or stored program named \"" + what + "\""});
  }
  std::optional<Certificate> cert;
  fs::path cert_path = cert_file.empty() ? home.ServerCertificatePath() : fs::path(cert_file);
  if (!cert_file.empty() || fs::exists(cert_path, ec)) {
    auto pem = ReadTextFile(cert_path, 1 << 20);
    if (!pem) return cli::Report(kProg, pem.error());
    auto parsed = Certificate::FromPem(*pem);
    if (!parsed) return cli::Report(kProg, {ErrorCode::kInvalidArgument, cert_path.string() + " is not a PEM certificate"});
    cert = std::move(*parsed);
  }
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return cli::Report(kProg, {ErrorCode::kIo, "cannot open " + file.string() + ": " + std::strerror(errno)});
  auto report = InspectPackage(fd.get(), cert);
  fd.reset();
  if (!report) return cli::Report(kProg, {report.error().code, file.string() + ": " + report.error().message});
  (*report)["file"] = file.string();
  if (as_json) std::cout << report->dump(2) << "\n";
  else std::cout << "file         " << file.string() << "\n" << FormatInspection(*report);
  std::cout.flush();
  const std::string status = (*report)["signature"]["status"];
  const std::string again = stored ? "; download it again with 'sealdrop get " + what + "'" : "";
  // A package that is visibly damaged or forged is reported, and fails.
  if (status == "invalid" || status == "unknown-key")
    return cli::Report(kProg, {ErrorCode::kCryptoFailure,
                               file.string() + ": the manifest's signature does not verify against the server "
                               "certificate " + cert_path.string() +
                               (status == "unknown-key" ? " (it names another key)" : " (the manifest was altered)") +
                               "; give the certificate of the server that sold it with --cert" + again});
  bool plain_ok = !report->contains("elf") || (*report)["elf"].value("plaintext_parts_match", false);
  if (!plain_ok || !(*report)["payload"]["size_matches_manifest"].get<bool>())
    return cli::Report(kProg, {ErrorCode::kCryptoFailure,
                               file.string() + " is damaged or forged: it does not match its signed manifest" + again});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocatorForStreaming();
  cli::EnsureStandardDescriptors();
  CLI::App app{"sealdrop: buy programs, download them sealed for your processor, and run them."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sealdrop ") + std::string(sealdrop::cli::Version()));
  Globals g;
  app.add_option("--server", g.server, "Server URL, https://HOST:PORT (env SEALDROP_SERVER)");
  app.add_option("--ca", g.ca, "Vendor root CA that certifies the server (env SEALDROP_CA)");
  app.add_option("--trp", g.trp, "The processor's socket (env SEALDROP_TRP)");

  std::string user, name, version, receipt_file;
  bool as_json = false, from_server = false, again = false;
  std::vector<std::string> run_args;
  auto* login = app.add_subcommand(
      "login", "Log in and remember the login and the vendor root (--ca) for this server; the password is asked "
               "for on a terminal, else read from stdin or SEALDROP_PASSWORD");
  login->add_option("USER", user, "User ID")->required();
  login->add_flag("--json", as_json, "Print JSON");
  auto* catalog = app.add_subcommand("catalog", "List the programs for sale");
  catalog->add_flag("--json", as_json, "Print JSON");
  auto* buy = app.add_subcommand("buy", "Buy a program; it arrives sealed for your processor");
  buy->add_option("NAME", name, "Program name")->required();
  buy->add_option("--version", version, "Version (default: newest)");
  buy->add_flag("--again", again, "Buy another licence of a version you already own (charged again)");
  buy->add_flag("--json", as_json, "Print JSON");
  auto* get = app.add_subcommand("get", "Download a program again with its stored receipt, without charge");
  get->add_option("NAME", name, "Program name")->required();
  get->add_option("--receipt", receipt_file, "Use this receipt file instead of the stored one");
  get->add_flag("--json", as_json, "Print JSON");
  auto* receipts = app.add_subcommand("receipts", "List receipts");
  receipts->add_flag("--json", as_json, "Print JSON");
  receipts->add_flag("--from-server", from_server, "Fetch the list from the server and store any missing ones");
  auto* balance = app.add_subcommand("balance", "Show the account balance");
  balance->add_flag("--json", as_json, "Print JSON");
  auto* run = app.add_subcommand("run", "Run a program through the processor: sealdrop run NAME [-- ARGS...]");
  run->add_option("NAME", name, "Program name")->required();
  run->add_option("ARGS", run_args, "Arguments for the program (after --)");
  auto* list = app.add_subcommand("list", "List the programs this processor holds licences for");
  list->add_flag("--json", as_json, "Print JSON");
  run->prefix_command(false);
  std::string with_program;
  auto* open = app.add_subcommand(
      "open", "Open a data package through the processor: sealdrop open NAME --with PROGRAM [-- ARGS...] feeds "
              "its content to a program the processor runs; without --with it is written to standard output, "
              "if the licence allows export");
  open->add_option("NAME", name, "Data package name")->required();
  open->add_option("--with", with_program, "A program bought for this processor, run with the content on its stdin");
  open->add_option("ARGS", run_args, "Arguments for the program (after --)");
  open->prefix_command(false);
  std::string package_arg, cert_file;
  auto* inspect = app.add_subcommand(
      "inspect", "Show what a package holds without any key: manifest, signature, and for a program its imports "
                 "and which sections are encrypted");
  inspect->add_option("PACKAGE", package_arg, "The name of a stored program, or a package file (a path: ./FILE for one in this directory)")->required();
  inspect->add_option("--cert", cert_file, "Server certificate to check the signature with (default: the one "
                                           "verified at the last connection)");
  inspect->add_flag("--json", as_json, "Print JSON");

  if (auto done = cli::Parse(app, argc, argv, kProg)) return *done;
  if (g.server.empty()) g.server = Env("SEALDROP_SERVER");
  if (g.ca.empty()) g.ca = Env("SEALDROP_CA");
  if (g.trp.empty()) g.trp = Env("SEALDROP_TRP", DefaultTrpSocket());
  auto home = ClientHome::Open();
  if (!home) return cli::Report(kProg, home.error());
  g.home = &*home;
  std::signal(SIGPIPE, SIG_IGN);

  cli::SetJsonErrors(as_json);
  if (*inspect) return Inspect(*home, package_arg, cert_file, as_json);
  if (*login) {
    std::string server = g.server;
    std::optional<Credentials> earlier;
    if (server.empty()) {
      auto current = home->LoadCredentials();
      server = current ? current->server : "https://localhost:8443";
    }
    if (auto c = home->LoadCredentials(server)) earlier = *c;
    // The root this login is verified with is remembered for the server.
    const std::string ca = VendorRootFor(g, earlier ? &*earlier : nullptr);
    std::string root_pem;
    if (!ca.empty()) {
      auto pem = ReadTextFile(ca, 1 << 20);
      if (pem) root_pem = *pem;
    }
    auto link = ServerLink::Connect({server, ca});
    if (!link) return cli::Report(kProg, link.error());
    auto password = cli::ReadSecret("SEALDROP_PASSWORD", "password");
    if (!password) return cli::Report(kProg, password.error());
    ControlMessage m{.type = "login"};
    m.user = user;
    m.password = *password;
    m.remember = true;
    auto reply = (*link)->Request(m);
    if (!reply) return cli::Report(kProg, reply.error());
    if (reply->type == "error") return cli::Report(kProg, {ErrorCodeFromName(reply->code), reply->message});
    if (reply->token.empty()) return cli::Report(kProg, {ErrorCode::kInternal, "the server issued no login token"});
    if (auto st = home->SaveLogin({server, user, reply->token, ""}, root_pem); !st) return cli::Report(kProg, st.error());
    (void)home->SaveServerCertificate((*link)->ServerCertificatePem());
    const std::string shown = NormaliseServerUrl(server).value_or(server);
    if (as_json)
      std::cout << json{{"user", user}, {"server", shown}, {"balance", reply->balance}}.dump() << "\n";
    else
      std::cout << "logged in as " << user << " at " << shown << " (balance " << reply->balance << ")\n";
    return 0;
  }
  if (*catalog) {
    std::string server = g.server;
    std::optional<Credentials> creds;
    if (auto c = home->LoadCredentials(server)) creds = *c;
    if (server.empty()) server = creds ? creds->server : "https://localhost:8443";
    auto body = HttpsGet({server, VendorRootFor(g, creds ? &*creds : nullptr)}, "/v1/catalog");
    if (!body) return cli::Report(kProg, body.error());
    json j = json::parse(*body, nullptr, false);
    if (j.is_discarded() || !j.contains("programs")) return cli::Report(kProg, {ErrorCode::kMalformed, "the server sent a malformed catalogue"});
    if (as_json) {
      std::cout << j["programs"].dump(2) << "\n";
    } else {
      for (const auto& p : j["programs"])
        std::cout << p.value("name", "") << "\t" << p.value("version", "") << "\t" << p.value("price", 0) << "\t"
                  << HumanBytes(static_cast<double>(p.value("size", uint64_t{0}))) << "\n";
    }
    return 0;
  }
  if (*buy) return Order(g, true, name, version, again, as_json, "");
  if (*get) return Order(g, false, name, "", false, as_json, receipt_file);
  if (*balance || (*receipts && from_server)) {
    Credentials creds;
    auto link = Session(g, creds);
    if (!link) return cli::Report(kProg, link.error());
    ControlMessage m{.type = *balance ? "balance" : "receipts"};
    auto reply = (*link)->Request(m);
    if (!reply) return cli::Report(kProg, reply.error());
    if (reply->type == "error") return cli::Report(kProg, {ErrorCodeFromName(reply->code), reply->message});
    if (*balance) {
      if (as_json) std::cout << json{{"user", creds.user}, {"balance", reply->balance}}.dump() << "\n";
      else std::cout << reply->balance << "\n";
      return 0;
    }
    for (const auto& r : reply->receipts)
      if (auto st = home->SaveReceipt(ReceiptId(r), r); !st) return cli::Report(kProg, st.error());
  }
  if (*receipts) {
    auto all = home->Receipts();
    if (!all) return cli::Report(kProg, all.error());
    json arr = json::array();
    for (const auto& r : *all) {
      auto parsed = JwsParse(r);
      if (!parsed) continue;
      auto c = ParseReceiptClaims(parsed->payload);
      if (!c) continue;
      if (as_json)
        arr.push_back({{"receipt_id", c->receipt_id}, {"program", c->program}, {"version", c->version},
                       {"amount", c->amount}, {"issued_at", Rfc3339(c->issued_at)}, {"user", c->user}, {"jws", r}});
      else
        std::cout << c->receipt_id << "\t" << c->program << "\t" << c->version << "\t" << c->amount << "\n";
    }
    if (as_json) std::cout << arr.dump(2) << "\n";
    return 0;
  }
  if (*list) {
    auto reply = TrpRequest(g.trp, TrpType::kList, "");
    if (!reply) return cli::Report(kProg, reply.error());
    auto list = ParseTrpLicenceList({static_cast<uint8_t>(reply->first), AsBytes(reply->second)});
    if (!list) return cli::Report(kProg, {ErrorCode::kMalformed, "the processor sent a malformed list of licences"});
    if (as_json) {
      json arr = json::array();
      for (const auto& l : list->licences)
        arr.push_back({{"package_id", l.package_id}, {"name", l.name}, {"version", l.version},
                       {"kind", l.kind}, {"receipt_id", l.receipt_id}, {"size", l.size},
                       {"released_at", Rfc3339(l.released_at)}});
      std::cout << json{{"licences", arr}}.dump(2) << "\n";
    } else {
      for (const auto& l : list->licences) std::cout << l.name << "\t" << l.version << "\t" << l.receipt_id << "\n";
    }
    return 0;
  }
  if (*run || *open) {
    // The program's own exit status is passed on; sealdrop's own failures
    // use 125-127 (cli_common.h), as env(1) does.
    auto run_failure = [](const Error& e) {
      cli::Report(kProg, e);
      return cli::RunExitCodeFor(e.code);
    };
    auto open_package = [&](const std::string& n) -> Result<UniqueFd> {
      SEALDROP_ASSIGN(StoredPackage pkg, home->FindPackage(n));
      UniqueFd fd(::open(pkg.file.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return Fail(ErrorCode::kIo, "cannot open " + pkg.file.string() + ": " + std::strerror(errno));
      return fd;
    };
    if (*open && with_program.empty() && !run_args.empty())
      return cli::UsageError(kProg, "arguments after -- are for the program given with --with");
    const std::string& program = *run ? name : with_program;
    // fds lists what is sent, in order (our own stdio among them); the
    // packages' descriptors are owned by `packages`.
    std::vector<int> fds;
    std::vector<UniqueFd> packages;
    if (!program.empty()) {
      auto fd = open_package(program);
      if (!fd) return run_failure(fd.error());
      fds = {0, 1, 2, fd->get()};
      packages.push_back(std::move(*fd));
    } else {
      fds = {1};
    }
    if (*open) {
      auto fd = open_package(name);
      if (!fd) return run_failure(fd.error());
      fds.push_back(fd->get());
      packages.push_back(std::move(*fd));
    }
    // Only what the processor passes on to the program (trp/runner.h,
    // kPassedEnvironment) is sent: the rest would be dropped there anyway,
    // and a large environment would not fit in one request.
    static const char* const kPassedEnvironment[] = {"LANG", "LC_ALL", "TERM", "TZ"};
    std::vector<std::string> env;
    for (const char* var : kPassedEnvironment)
      if (const char* v = std::getenv(var); v != nullptr && std::strlen(v) < 4000 && IsValidUtf8(v))
        env.push_back(std::string(var) + "=" + v);
    std::error_code ec;
    const std::string cwd = fs::current_path(ec).string();
    for (const auto& a : run_args)
      if (!IsValidUtf8(a))
        return run_failure({ErrorCode::kInvalidArgument, "the program's arguments must be valid UTF-8 text"});
    if (!IsValidUtf8(cwd))
      return run_failure({ErrorCode::kInvalidArgument, "the working directory's path is not valid UTF-8; run from another directory"});
    const TrpRun run_request{.args = run_args, .cwd = cwd, .env = env};
    const Bytes request =
        *open ? Encode(TrpOpen{.with = !program.empty(), .program = run_request}) : Encode(run_request);
    if (request.size() > TrpMaxBody(static_cast<uint8_t>(TrpType::kRun)).value_or(0))
      return run_failure({ErrorCode::kTooLarge, "the program's arguments are too long for the processor (at most " +
                                                    HumanBytes(static_cast<double>(*TrpMaxBody(static_cast<uint8_t>(TrpType::kRun)))) +
                                                    " in all); pass large input on standard input or in a file"});
    auto reply = TrpRequest(g.trp, *run ? TrpType::kRun : TrpType::kOpen, AsString(request), fds);
    packages.clear();
    if (!reply) return run_failure(reply.error());
    auto exit = ParseTrpExit({static_cast<uint8_t>(reply->first), AsBytes(reply->second)});
    if (!exit) return run_failure({ErrorCode::kMalformed, "the processor sent a malformed exit status"});
    if (exit->signal != 0) return 128 + exit->signal;
    return exit->exit_code;
  }
  return cli::kExitUsage;
}
