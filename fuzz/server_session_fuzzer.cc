// The server's session state machine, ServerSession
// (server/session.h), driven by sequences of operations
// (fuzz/session_ops.h): control messages (raw fuzzer text, or logins with
// real tokens, purchases, re-downloads, charges built by the harness), and a
// processor the fuzzer controls, presenting a device certificate chain
// (good, revoked by the ledger, or from an untrusted manufacturer). Once its
// handshake is done the fuzzer chooses what the processor says: genuine or
// fuzzed Capabilities, genuine or fuzzed Received, errors, unknown frames,
// raw bytes, close_notify. So the whole
// order (login -> purchase -> inner handshake -> sealing and streaming ->
// Received -> charge -> re-download) is reachable, and every step can be
// replaced by garbage.
//
// The inner channel is a PlainChannel (protocol/testing/plain_channel.h):
// a TLS handshake per order cost ~7 ms and held this target near 136
// executions a second. The channel still checks the processor's chain
// against the manufacturer roots and the ledger's revocation list, as the
// TLS handshake's verify callback does; the release's session binding uses
// the channel's exporter (PlainExporter).
//
// Each input starts from the same SQLite ledger on /dev/shm (made once, as
// the tests make theirs, through server/testing/world.h: users alice and
// bob, programs "hello" (data) and "tiny" (protected ELF, if
// fuzz/data/tiny.elf exists), login tokens, one completed purchase by
// alice), a fresh ServerSession and LoginLimiter, and the fixed clock. The
// ledger stays open for the whole run; before an input that follows one
// that wrote, a second connection copies the template's rows back into it
// (ResetLedger), and the ledger's connection sees the new content as it
// would another process's commit. Opening and closing a ledger per input
// was more than half of this target's time.
//
// Logins with a password are skipped: argon2id costs 30-100 ms a check and
// would bring the fuzzer under 10 exec/s. Token logins reach the same
// HandleLogin code except for the ledger's password check.
//
// Checks, beyond crashes:
//  - every control message the server sends parses (ParseControl with the
//    server limit), and every inner frame decodes (InnerMaxBody);
//  - the streamed package has the announced size, its manifest verifies
//    under the server key for exactly the device that did the handshake, and
//    PackageEnd carries its digest (recomputed here);
//  - "charged" comes only after the processor confirmed that digest for this
//    order, carries a release signed by the server whose claims name this
//    package, device, order and inner session, and a receipt signed by it;
//  - every balance the server reports equals the starting balance minus the
//    amounts charged in this input; when the input changed the ledger, the
//    ledger agrees at the end and its audit chain verifies.
#include <sqlite3.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "base/files.h"
#include "base/reader.h"
#include "crypto/jws.h"
#include "crypto/sha256.h"
#include "fuzz_util.h"
#include "session_ops.h"
#include "ledger/sqlite_db.h"
#include "ledger/sqlite_ledger.h"
#include "package/digest.h"
#include "package/opener.h"
#include "package/package_file.h"
#include "server/login_limiter.h"
#include "protocol/testing/plain_channel.h"
#include "server/testing/world.h"

using namespace sealdrop;
using namespace sealdrop::fuzz::server_ops;
using fuzz::OpReader;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  std::unique_ptr<testing::World> world;
  std::vector<testing::Device> devices;  // good, revoked, untrusted manufacturer
  std::map<std::string, std::string> tokens;
  std::map<std::string, int64_t> start_balance;
  std::string setup_receipt;
  fs::path dir;  // on /dev/shm
  fs::path template_db, work_db;
  std::unique_ptr<Ledger> ledger;  // on work_db, open for the whole run
  std::optional<sqlite::Db> reset_db;  // a second connection to work_db, the template attached as "tpl"
  std::vector<std::string> tables;
  std::vector<std::string> copy_sql;  // per table: DELETE, then INSERT from tpl
  int64_t clean_version = -1;         // reset_db's data_version when the rows were last the template's
};

Fixture* fixture = nullptr;

void CleanUp() {
  if (fixture == nullptr) return;
  fixture->ledger.reset();
  fixture->reset_db.reset();
  std::error_code ec;
  fs::remove_all(fixture->dir, ec);
  fixture->world.reset();
}

int64_t DataVersion(Fixture& f) {
  auto v = f.reset_db->QueryInt("PRAGMA data_version");
  FUZZ_CHECK(v.has_value(), "PRAGMA data_version: " + (v ? "" : v.error().message));
  return *v;
}

void Run(sqlite::Db& db, const std::string& sql) {
  auto st = db.Prepare(sql);
  auto done = st ? st->Run() : Status(std::unexpected(st.error()));
  FUZZ_CHECK(done.has_value(), sql.substr(0, 80) + ": " + (done ? "" : done.error().message));
}

// Makes the work ledger's rows the template's again, through the reset
// connection, with the template attached as "tpl". Only rows are copied,
// never the schema: SQLite's online backup rewrites page 1 and bumps the
// schema cookie, which made the ledger's connection re-read the schema and
// re-prepare every cached statement on each input (a fifth of this
// target's time). The reset connection runs with triggers off, since the
// append-only tables refuse DELETE; hidden rowids are copied in order, so
// "ORDER BY rowid" reads as before. Nothing is done when the last input
// wrote nothing (data_version unchanged). The first copy and every 1000th
// after it are compared with the template, table by table, row by row.
// The statements are compiled once (Db's statement cache).
//
// Returns the work ledger's data_version as the reset connection sees it
// afterwards (it changes only when another connection, the ledger's,
// commits).
int64_t ResetLedger(Fixture& f) {
  const int64_t now = DataVersion(f);
  if (now == f.clean_version) return now;
  sqlite::Db& db = *f.reset_db;
  {
    auto tx = sqlite::Transaction::Begin(db, sqlite::Transaction::Mode::kWrite);
    FUZZ_CHECK(tx.has_value(), "resetting the ledger: " + (tx ? "" : tx.error().message));
    for (const std::string& sql : f.copy_sql) Run(db, sql);
    auto done = tx->Commit();
    FUZZ_CHECK(done.has_value(), "resetting the ledger: " + (done ? "" : done.error().message));
  }
  static unsigned resets = 0;
  if (++resets % 1000 == 1) {
    for (const std::string& t : f.tables) {
      const std::string a = "main.\"" + t + "\"", b = "tpl.\"" + t + "\"";
      auto differ = db.QueryInt("SELECT (SELECT count(*) FROM (SELECT rowid, * FROM " + a +
                                " EXCEPT SELECT rowid, * FROM " + b + ")) + (SELECT count(*) FROM (SELECT rowid, * FROM " +
                                b + " EXCEPT SELECT rowid, * FROM " + a + "))");
      FUZZ_CHECK(differ.has_value(), "comparing table " + t + " with the template's: " + (differ ? "" : differ.error().message));
      FUZZ_CHECK(*differ == 0, "resetting the ledger left table " + t + " unlike the template's");
    }
    // Every copy lands in the WAL; empty it now and then so it stays small.
    sqlite3_wal_checkpoint_v2(db.raw(), "main", SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  }
  f.clean_version = DataVersion(f);
  return f.clean_version;
}

#define SETUP_CHECK(expr)                                                              \
  do {                                                                                 \
    auto r_ = (expr);                                                                  \
    FUZZ_CHECK(r_.has_value(), std::string(#expr) + ": " + (r_ ? "" : r_.error().message)); \
  } while (0)

const Fixture& Fix() {
  if (fixture != nullptr) return *fixture;
  auto* f = new Fixture;
  f->world = testing::World::Create(3000);
  testing::World& w = *f->world;
  w.server.now = fuzz::FixedNow;
  f->devices.push_back(w.MakeDevice({"dev-good"}));
  f->devices.push_back(w.MakeDevice({"dev-revoked"}));
  f->devices.push_back(w.MakeDevice({"dev-other", 365, 0, "mfr2"}));
  SETUP_CHECK(w.ledger->RevokeDevice("dev-revoked", "fuzz fixture"));
  const fs::path elf = std::string(SEALDROP_FUZZ_DIR) + "/data/tiny.elf";
  if (fs::exists(elf)) {
    auto bytes = ReadFile(elf, 1 << 20);
    ProgramRecord p;
    p.name = "tiny";
    p.version = "1.0";
    p.price = 50;
    p.kind = "elf";
    p.path = elf.string();
    p.size = bytes->size();
    p.sha256 = Sha256Hex(*bytes);
    SETUP_CHECK(w.ledger->AddProgram(p));
  }
  // One finished purchase, so re-downloads have a receipt to name.
  {
    testing::Loop loop(w, f->devices[0]);
    FUZZ_CHECK(loop.Login("alice", "correct horse") == "welcome", "fixture login");
    SETUP_CHECK(loop.Buy("hello", "fixture-purchase-0001"));
    f->setup_receipt = loop.host.charged().receipt;
  }
  for (const char* user : {"alice", "bob"}) {
    auto token = w.ledger->IssueToken(user, 10LL * 365 * 24 * 3600);
    SETUP_CHECK(token);
    f->tokens[user] = *token;
    f->start_balance[user] = *w.ledger->Balance(user);
  }
  f->dir = fuzz::ScratchDir("server");
  f->template_db = f->dir / "template.db";
  f->work_db = f->dir / "ledger.db";
  const fs::path live = w.dir / "ledger.db";
  w.ledger.reset();  // closing checkpoints the WAL into the file
  fs::copy_file(live, f->template_db, fs::copy_options::overwrite_existing);
  fs::copy_file(live, f->work_db, fs::copy_options::overwrite_existing);
  auto ledger = OpenSqliteLedger(f->work_db, false);
  FUZZ_CHECK(ledger.has_value(), "opening the work ledger: " + (ledger ? "" : ledger.error().message));
  f->ledger = std::move(*ledger);
  auto reset_db = sqlite::Db::Open(f->work_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI);
  FUZZ_CHECK(reset_db.has_value(), "opening the reset connection: " + (reset_db ? "" : reset_db.error().message));
  f->reset_db = std::move(*reset_db);
  sqlite::Db& db = *f->reset_db;
  sqlite3_busy_timeout(db.raw(), 5000);
  int triggers = -1;
  sqlite3_db_config(db.raw(), SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &triggers);
  FUZZ_CHECK(triggers == 0, "cannot turn triggers off on the reset connection");
  SETUP_CHECK(db.Exec("ATTACH 'file:" + f->template_db.string() + "?mode=ro' AS tpl"));
  // The tables, from the template's own schema, so new ones are covered.
  auto list = db.Prepare("SELECT name FROM tpl.sqlite_schema WHERE type = 'table' AND name != 'sqlite_stat1'");
  FUZZ_CHECK(list.has_value(), "listing the template's tables");
  for (auto row = list->Step(); row && *row; row = list->Step()) f->tables.push_back(list->ColumnText(0));
  FUZZ_CHECK(f->tables.size() >= 5, "the template ledger has too few tables");
  for (const std::string& t : f->tables) {
    f->copy_sql.push_back("DELETE FROM main.\"" + t + "\"");
    f->copy_sql.push_back("INSERT INTO main.\"" + t + "\" SELECT * FROM tpl.\"" + t + "\" ORDER BY rowid");
  }
  fixture = f;
  std::atexit(CleanUp);
  return *f;
}

class Harness {
 public:
  Harness() : f_(Fix()), ledger_(f_.ledger.get()), version_(ResetLedger(*fixture)) {
    ctx_ = f_.world->server;
    ctx_.now = fuzz::FixedNow;
    ctx_.login_limiter = &limiter_;
    ctx_.peer_address = "192.0.2.1";
    ctx_.channel = testing::PlainChannelFactory({}, Bytes(kSecret.begin(), kSecret.end()), &channel_);
    server_.emplace(ctx_);
    balance_ = f_.start_balance;
  }

  ~Harness() {
    server_.reset();
    if (DataVersion(*fixture) == version_) return;  // the ledger did not change
    auto audit = ledger_->VerifyAudit();
    FUZZ_CHECK(audit.has_value(), "the audit chain does not verify: " + (audit ? "" : audit.error().message));
    for (const auto& [user, expected] : balance_)
      FUZZ_CHECK(*ledger_->Balance(user) == expected, "the ledger's balance of " + user + " is not what was charged");
  }

  void Step(OpReader& in) {
    const uint8_t op = in.U8() % kOpCount;
    Do(op, in);
    FUZZ_TRACE("server_session: op %u -> state %d\n", op, static_cast<int>(server_->state()));
  }

 private:
  void Do(uint8_t op, OpReader& in) {
    switch (op) {
      case kControlRaw: {
        std::string text = in.Text();
        auto m = ParseControl(text);
        if (m && m->type == "login" && !m->password.empty()) return;  // argon2id: see the header
        Control(text);
        break;
      }
      case kLoginToken: {
        ControlMessage m{.type = "login"};
        switch (in.U8() % 4) {
          case 0: m.user = "alice"; m.token = f_.tokens.at("alice"); break;
          case 1: m.user = "bob"; m.token = f_.tokens.at("bob"); break;
          case 2: m.user = "alice"; m.token = std::string(64, '0'); break;
          default: m.user = "bob"; m.token = f_.tokens.at("alice"); break;
        }
        Send(m);
        break;
      }
      case kPurchase: {
        ControlMessage m{.type = "purchase"};
        uint8_t which = in.U8() % 3;
        m.program = which == 0 ? "hello" : which == 1 ? "tiny" : in.Text();
        m.idempotency_key = in.Text();
        if (m.idempotency_key.empty()) m.idempotency_key = "fuzz-idempotency-key-1";
        Send(m);
        break;
      }
      case kRedownload: {
        ControlMessage m{.type = "redownload"};
        uint8_t which = in.U8() % 3;
        m.receipt = which == 0 ? last_receipt_ : which == 1 ? f_.setup_receipt : in.Text();
        Send(m);
        break;
      }
      case kCharge: {
        ControlMessage m{.type = "charge"};
        m.order_id = in.U8() % 2 == 0 ? order_id_ : in.Text();
        Send(m);
        break;
      }
      case kSimple: {
        static const char* kTypes[] = {"balance", "receipts", "bye", "unknown"};
        Send(ControlMessage{.type = kTypes[in.U8() % 4]});
        break;
      }
      case kProcessorStart: StartProcessor(in.U8() % f_.devices.size()); break;
      case kCapabilitiesValid: {
        InnerCapabilities caps;
        caps.package_suites = {"HPKE-P256-SHA256-A256GCM"};
        // 0: the device's own key-wrap chain; 1: another device's.
        size_t owner = in.U8() % 2 == 0 ? device_ : (device_ + 1) % f_.devices.size();
        caps.key_wrap_chain_pem = f_.devices[owner].identity.key_wrap_chain_pem;
        SendFrame(InnerType::kCapabilities, EncodeCapabilities(caps));
        break;
      }
      case kCapabilitiesBlob: SendFrame(InnerType::kCapabilities, in.Blob()); break;
      case kReceivedValid:
        if (end_digest_) {
          confirmed_ = *end_digest_;
          SendFrame(InnerType::kReceived, *end_digest_);
        }
        break;
      case kReceivedBlob: SendFrame(InnerType::kReceived, in.Blob()); break;
      case kInnerErrorBlob: SendFrame(InnerType::kError, in.Blob()); break;
      case kInnerFrame: {
        uint8_t type = in.U8();
        SendFrame(static_cast<InnerType>(type), in.Blob());
        break;
      }
      case kInnerRaw: {
        Bytes raw = in.Blob();
        server_->OnInner(raw);
        RunLedgerCallsInline(*server_, *ledger_);
        Pump();
        break;
      }
      default:
        if (started_ && channel_ != nullptr) {
          channel_->PeerClose();
          server_->OnInner({});
          RunLedgerCallsInline(*server_, *ledger_);
          Pump();
        }
        break;
    }
  }

  // A message the harness builds around fuzzer strings (program names,
  // keys, receipts), encoded as the host encodes it. EncodeControl replaces
  // invalid UTF-8, so this never throws; the raw operation sends anything.
  void Send(const ControlMessage& m) { Control(EncodeControl(m)); }

  void Control(std::string_view text) {
    server_->OnControl(text);
    RunLedgerCallsInline(*server_, *ledger_);
    Pump();
  }

  // The processor's ClientHello, with this device's chain. Once the order's
  // channel is up, a second hello is just bytes in the inner stream.
  void StartProcessor(size_t device) {
    if (channel_ == nullptr || !channel_->handshake_done()) {
      device_ = device;
      hello_answered_ = false;
      decoder_.emplace(InnerMaxBody);
      package_.clear();
      total_.reset();
      end_digest_.reset();
      if (channel_ != nullptr) channel_->SetPeerChain(f_.devices[device].identity.tls.chain);
    }
    started_ = true;
    server_->OnInner(AsBytes(testing::kPlainHello));
    RunLedgerCallsInline(*server_, *ledger_);
    Pump();
  }

  void SendFrame(InnerType type, ByteView body) {
    if (!started_ || !hello_answered_) return;
    server_->OnInner(EncodeFrame(static_cast<uint8_t>(type), body));
    RunLedgerCallsInline(*server_, *ledger_);
    Pump();
  }

  // Moves the server's messages until nobody has anything to say.
  void Pump() {
    for (int round = 0; round < 10000; ++round) {
      bool progress = false;
      while (auto o = server_->NextOutbound()) {
        progress = true;
        if (o->kind == Outbound::Kind::kControl) {
          OnServerControl(AsString(o->data));
        } else if (started_) {
          ClientReads(o->data);
        }
      }
      if (!progress) return;
    }
  }

  // What the server sent in the inner stream: its hello, then frames.
  void ClientReads(ByteView plain) {
    if (!hello_answered_) {
      const ByteView hello = AsBytes(testing::kPlainHello);
      FUZZ_CHECK(plain.size() >= hello.size() && std::equal(hello.begin(), hello.end(), plain.begin()),
                 "the server's first inner bytes are not its handshake answer");
      hello_answered_ = true;
      plain = plain.subspan(hello.size());
    }
    if (plain.empty()) return;
    FUZZ_CHECK(decoder_->Push(plain).has_value(), "the server sent a malformed inner frame");
    for (;;) {
      auto frame = decoder_->Pop();
      FUZZ_CHECK(frame.has_value(), "the server sent a malformed inner frame");
      if (!*frame) return;
      const Frame& fr = **frame;
      switch (static_cast<InnerType>(fr.type)) {
        case InnerType::kPackageBegin:
          FUZZ_CHECK(!total_ && fr.body.size() == 8, "PackageBegin repeated or malformed");
          total_ = LoadU64(fr.body.data());
          break;
        case InnerType::kPackageData:
          FUZZ_CHECK(total_ && package_.size() + fr.body.size() <= *total_, "package data beyond the announced size");
          package_.insert(package_.end(), fr.body.begin(), fr.body.end());
          break;
        case InnerType::kPackageEnd:
          FUZZ_CHECK(total_ && package_.size() == *total_, "PackageEnd before the announced size was sent");
          CheckPackage(fr.body);
          end_digest_ = fr.body;
          break;
        case InnerType::kError:
          break;
        default:
          FUZZ_CHECK(false, "the server sent inner frame type " + std::to_string(fr.type));
      }
    }
  }

  void CheckPackage(const Bytes& end_digest) {
    auto prefix = ParsePackagePrefix(package_);
    FUZZ_CHECK(prefix && *prefix, "the streamed package has no prefix");
    const testing::Device& dev = f_.devices[device_];
    auto m = VerifyManifest((*prefix)->manifest_jws, f_.world->server.identity.key->PublicKey(),
                            Recipient{dev.identity.device_serial, dev.identity.key_wrap_key_id});
    FUZZ_CHECK(m.has_value(), "the streamed manifest does not verify for the device in the handshake: " +
                                  (m ? "" : m.error().message));
    FUZZ_CHECK((*prefix)->payload_offset + m->payload_size == package_.size(), "package size vs manifest");
    FUZZ_CHECK(m->order_id == order_id_, "the manifest names another order");
    PackageDigest digest = PackageDigest::For((*prefix)->payload_offset, *m);
    digest.Update(package_);
    auto d = digest.Final();
    FUZZ_CHECK(d.has_value() && Bytes(d->begin(), d->end()) == end_digest, "PackageEnd does not carry the digest");
    FUZZ_CHECK(UnwrapContentKey(*m, *dev.wrap_key).has_value(), "the device cannot unwrap its content key");
  }

  void OnServerControl(std::string_view text) {
    auto m = ParseControl(text, kMaxServerControlSize);
    FUZZ_CHECK(m.has_value(), "the server sent an unparseable control message: " + std::string(text.substr(0, 200)));
    FUZZ_TRACE("server_session:   <- %s\n", std::string(text.substr(0, 160)).c_str());
    if (m->type == "welcome") {
      user_ = m->user;
      FUZZ_CHECK(balance_.count(user_) && m->balance == balance_[user_], "welcome balance");
    } else if (m->type == "balance") {
      FUZZ_CHECK(m->balance == balance_[user_], "reported balance");
    } else if (m->type == "order") {
      order_id_ = m->order_id;
      confirmed_.reset();
      started_ = hello_answered_ = false;  // a new order has a new inner channel
    } else if (m->type == "charged") {
      CheckCharged(*m);
    }
  }

  void CheckCharged(const ControlMessage& m) {
    FUZZ_CHECK(!user_.empty() && m.order_id == order_id_, "charged for another order or without a login");
    FUZZ_CHECK(confirmed_ && end_digest_ && *confirmed_ == *end_digest_ && m.package_digest == HexEncode(*confirmed_),
               "charged without the processor confirming this package");
    const EcPublicKey server_key = f_.world->server.identity.key->PublicKey();
    auto release = JwsVerifyCompact(m.release, server_key, kReleaseJwsType);
    FUZZ_CHECK(release.has_value(), "the release does not verify");
    auto claims = ParseReleaseClaims(*release);
    FUZZ_CHECK(claims.has_value(), "the release claims do not parse");
    const Bytes exporter = testing::PlainExporter(AsBytes(kSecret), kReleaseExporterLabel, 32);
    FUZZ_CHECK(claims->package_digest == m.package_digest && claims->order_id == m.order_id &&
                   claims->device_serial == f_.devices[device_].identity.device_serial &&
                   claims->session == Base64UrlEncode(exporter),
               "the release names another package, order, device or session");
    auto receipt = JwsParse(m.receipt);
    FUZZ_CHECK(receipt && receipt->typ == kReceiptJwsType, "the receipt is not a receipt JWS");
    auto rc = ParseReceiptClaims(receipt->payload);
    FUZZ_CHECK(rc && rc->user == user_ && rc->receipt_id == claims->receipt_id, "the receipt names another user or id");
    balance_[user_] -= m.amount;
    FUZZ_CHECK(m.balance == balance_[user_], "the charged balance is not the start minus what was charged");
    last_receipt_ = m.receipt;
    confirmed_.reset();
  }

  const Fixture& f_;
  Ledger* ledger_;
  const int64_t version_;  // the ledger's data_version after the reset
  LoginLimiter limiter_{LoginLimits{3, 10, std::chrono::seconds(600), 1000}};
  ServerContext ctx_;
  std::optional<ServerSession> server_;
  std::map<std::string, int64_t> balance_;
  std::string user_, order_id_, last_receipt_;
  // The processor.
  static constexpr std::string_view kSecret = "server-session-fuzz";
  testing::PlainChannel* channel_ = nullptr;  // the current order's, owned by server_
  bool started_ = false, hello_answered_ = false;
  size_t device_ = 0;
  std::optional<FrameDecoder> decoder_;
  Bytes package_;
  std::optional<uint64_t> total_;
  std::optional<Bytes> end_digest_, confirmed_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)Fix();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  OpReader in(data, size);
  Harness h;
  for (int steps = 0; !in.empty() && steps < 128; ++steps) h.Step(in);
  return 0;
}
