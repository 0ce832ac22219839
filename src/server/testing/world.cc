#include "server/testing/world.h"

#include <nlohmann/json.hpp>

#include "base/files.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "ledger/sqlite_ledger.h"

namespace sealdrop::testing {
namespace fs = std::filesystem;

#define WORLD_CHECK(expr)                                                                 \
  do {                                                                                    \
    const auto& r_ = (expr);                                                                     \
    if (!r_) {                                                                            \
      fprintf(stderr, "world setup failed at %s: %s\n", #expr, r_.error().message.c_str()); \
      abort();                                                                            \
    }                                                                                     \
  } while (0)

Status MemoryStaging::Begin(uint64_t) {
  data.clear();
  finished = discarded = false;
  return Ok();
}
Status MemoryStaging::Append(ByteView bytes) {
  data.insert(data.end(), bytes.begin(), bytes.end());
  return Ok();
}
Status MemoryStaging::Finish() {
  finished = true;
  return Ok();
}
void MemoryStaging::Discard() {
  data.clear();
  discarded = true;
}

std::unique_ptr<World> World::Create(size_t program_size) {
  auto w = std::make_unique<World>();
  w->dir = fs::temp_directory_path() / ("sealdrop-world-" + RandomHexId(8));
  fs::create_directories(w->dir);
  WORLD_CHECK(CaInit(w->dir / "mfr", {"Test Manufacturer CA"}));
  WORLD_CHECK(CaInit(w->dir / "mfr2", {"Other Manufacturer CA"}));
  WORLD_CHECK(CaInit(w->dir / "vendor", {"Test Vendor CA"}));
  WORLD_CHECK(w->manufacturers.AddRootsPem(*ReadTextFile(w->dir / "mfr" / "ca.pem", 1 << 20)));
  WORLD_CHECK(w->vendors.AddRootsPem(*ReadTextFile(w->dir / "vendor" / "ca.pem", 1 << 20)));

  auto [server_key, server_cert] = w->NewServerKey("sealdropd test");
  w->server.identity = TlsIdentity{{server_cert}, server_key};
  w->server.manufacturers = &w->manufacturers;
  w->server.server_name = "test-vendor";

  auto ledger = OpenSqliteLedger(w->dir / "ledger.db", true);
  WORLD_CHECK(ledger);
  w->ledger = std::move(*ledger);
  WORLD_CHECK(w->ledger->AddUser("alice", "correct horse", 1000));
  WORLD_CHECK(w->ledger->AddUser("bob", "battery staple", 1000));

  Bytes program(program_size);
  for (size_t i = 0; i < program.size(); ++i) program[i] = static_cast<uint8_t>((i * 131) ^ (i >> 9));
  w->program_path = w->dir / "hello.bin";
  WORLD_CHECK(WriteFileAtomic(w->program_path, program));
  ProgramRecord p;
  p.name = "hello";
  p.version = "1.0";
  p.price = 100;
  p.kind = "data";
  p.path = w->program_path.string();
  p.size = program.size();
  p.sha256 = Sha256Hex(program);  // the sealer checks the file against it
  WORLD_CHECK(w->ledger->AddProgram(p));
  return w;
}

World::~World() {
  ledger.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

Bytes World::ProgramBytes() const { return *ReadFile(program_path, 1 << 30); }

TlsPeerPolicy World::ProcessorPolicy() const {
  TlsPeerPolicy p;
  p.trust = &vendors;
  p.profile = CertProfile::kServer;
  return p;
}

TlsPeerPolicy World::ServerPolicy() const {
  TlsPeerPolicy p;
  p.trust = &manufacturers;
  p.profile = CertProfile::kDevice;
  p.role = DeviceKeyRole::kIdentity;
  return p;
}

std::pair<EcPrivateKey, Certificate> World::NewServerKey(const std::string& common_name) {
  auto key = EcPrivateKey::Generate();
  WORLD_CHECK(key);
  CsrRequest req;
  req.common_name = common_name;
  req.hosts = {"localhost", "127.0.0.1"};
  auto csr = MakeCsrPem(*key, req);
  WORLD_CHECK(csr);
  auto pem = CaIssue(dir / "vendor", *csr, {CertProfile::kServer, 30});
  WORLD_CHECK(pem);
  return {*key, *Certificate::FromPem(*pem)};
}

Device World::MakeDevice(const DeviceOptions& o) {
  Device d;
  auto id_key = EcPrivateKey::Generate();
  auto wrap_key = EcPrivateKey::Generate();
  WORLD_CHECK(id_key);
  WORLD_CHECK(wrap_key);
  CaIssueOptions issue{CertProfile::kDevice, o.days, o.not_before_offset_days};
  CsrRequest id_req{"sealdrop device " + o.serial, o.serial, {}, DeviceKeyRole::kIdentity};
  CsrRequest wrap_req{"sealdrop device " + o.serial + " key-wrap", o.serial, {}, DeviceKeyRole::kKeyWrap};
  auto id_pem = CaIssue(dir / o.ca, *MakeCsrPem(*id_key, id_req), issue);
  auto wrap_pem = CaIssue(dir / o.ca, *MakeCsrPem(*wrap_key, wrap_req), issue);
  WORLD_CHECK(id_pem);
  WORLD_CHECK(wrap_pem);
  auto id_cert = *Certificate::FromPem(*id_pem);
  d.identity_serial_hex = id_cert.SerialHex();
  d.identity.tls = TlsIdentity{{id_cert}, *id_key};
  d.identity.key_wrap_chain_pem = *wrap_pem;
  d.identity.device_serial = o.serial;
  d.identity.key_wrap_key_id = wrap_key->PublicKey().KeyId();
  d.wrap_key = *wrap_key;
  return d;
}

Loop::Loop(World& w, Device& d) : world(w), device(d), server(w.server) {}

std::string Loop::Login(const std::string& user, const std::string& password) {
  ControlMessage m{.type = "login"};
  m.user = user;
  m.password = password;
  ServerControl(EncodeControl(m));
  Pump();
  return last_server_control.type;
}

Status Loop::Buy(const std::string& program, const std::string& key) {
  return RunOrder([&] { host.StartPurchase(program, "", key); });
}

Status Loop::Redownload(const std::string& receipt) {
  return RunOrder([&] { host.StartRedownload(receipt); });
}

Status Loop::RunOrder(const std::function<void()>& start) {
  host = HostSession();
  licence.reset();
  trp_error.reset();
  start();
  Pump();
  if (host.error()) return std::unexpected(*host.error());
  if (trp_error) return std::unexpected(*trp_error);
  if (host.state() != HostSession::State::kDone)
    return Fail(ErrorCode::kWrongState, "the order did not finish");
  return Ok();
}

void Loop::DeliverToTrp(HostAction a) {
  auto reply = [&](TrpType t, ByteView body) {
    Frame f{static_cast<uint8_t>(t), Bytes(body.begin(), body.end())};
    host.OnTrpFrame(f);
  };
  auto flush = [&] {
    Bytes out = trp->TakeToServer();
    if (out.empty()) return;
    if (to_server_filter) {
      auto f = to_server_filter(out);
      if (!f) return;
      out = std::move(*f);
    }
    relayed.push_back(out);
    reply(TrpType::kInnerOut, out);
  };
  auto fail = [&](const Error& e) {
    trp_error = e;
    reply(TrpType::kError, ErrorJson(e));
  };
  switch (static_cast<TrpType>(a.frame_type)) {
    case TrpType::kOpenSession: {
      trp = std::make_unique<TrpSession>(device.identity, world.vendors, world.server.now, staging);
      reported_complete_ = false;
      auto st = trp->Start();
      if (!st) return fail(st.error());
      flush();
      return;
    }
    case TrpType::kInnerIn: {
      Bytes in = a.bytes;
      if (to_trp_filter) {
        auto f = to_trp_filter(in);
        if (!f) return;
        in = std::move(*f);
      }
      relayed.push_back(in);
      auto st = trp->OnInner(in);
      flush();
      if (!st) return fail(st.error());
      if (trp->state() == TrpSession::State::kHeld && !reported_complete_) {
        reported_complete_ = true;
        if (skip_charge) return;
        nlohmann::json j = {{"package_digest", trp->held()->digest_hex}, {"size", trp->held()->size}};
        reply(TrpType::kDownloadComplete, ToBytes(j.dump()));
      }
      return;
    }
    case TrpType::kRelease: {
      auto j = nlohmann::json::parse(AsString(a.bytes));
      std::string release = j["release"];
      if (release_filter) release = release_filter(release);
      auto lic = trp->Release(release, j["receipt"].get<std::string>());
      if (!lic) return fail(lic.error());
      licence = *lic;
      reply(TrpType::kPackageEnd, ToBytes("{}"));
      return;
    }
    case TrpType::kAbort:
      if (trp) trp->Abort();
      return;
    default:
      return fail(Error{ErrorCode::kWrongState, "unexpected frame"});
  }
}

void Loop::ServerControl(std::string_view text) {
  server.OnControl(text);
  RunLedgerCallsInline(server, *world.ledger);
}

void Loop::Pump() {
  for (int rounds = 0; rounds < 1000000; ++rounds) {
    bool progress = false;
    while (auto o = server.NextOutbound()) {
      progress = true;
      if (o->kind == Outbound::Kind::kControl) {
        auto m = ParseControl(AsString(o->data), kMaxServerControlSize);
        if (!m) abort();
        controls.push_back(ToString(o->data));
        last_server_control = *m;
        if (m->type == "welcome" || m->type == "balance" || m->type == "receipts") continue;
        if (m->type == "error" && host.state() == HostSession::State::kIdle) continue;
        host.OnServerControl(*m);
      } else {
        host.OnServerInner(o->data);
      }
    }
    while (auto a = host.NextAction()) {
      progress = true;
      switch (a->kind) {
        case HostAction::Kind::kControlToServer:
          ServerControl(a->text);
          break;
        case HostAction::Kind::kInnerToServer:
          server.OnInner(a->bytes);
          RunLedgerCallsInline(server, *world.ledger);
          break;
        case HostAction::Kind::kFrameToTrp:
          DeliverToTrp(std::move(*a));
          break;
        default:
          break;
      }
    }
    if (!progress) return;
  }
}

}  // namespace sealdrop::testing
