#include "server/session.h"

#include <algorithm>
#include <memory>
#include <variant>

#include "base/encoding.h"
#include "base/reader.h"
#include "crypto/ec.h"
#include "crypto/hpke.h"
#include "crypto/jws.h"
#include "crypto/random.h"

namespace sealdrop {
namespace {
constexpr size_t kSealedChunk = 64 * 1024 + 16;
constexpr size_t kStreamFrameTarget = 3 * kSealedChunk;  // three sealed chunks
// Frames per outbound message; 4 x ~192 KiB of records stays under the host's
// kMaxInnerRelaySize (1 MiB) per WebSocket message.
constexpr int kStreamFramesPerMessage = 4;
constexpr int kMaxLoginFailuresPerSession = 3;

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

bool ValidToken(const std::string& s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}
}  // namespace

ServerSession::ServerSession(ServerContext& context) : ctx_(context) {}

ServerSession::~ServerSession() {
  if (user_slot_ != nullptr) user_slot_->Release(user_);
}

template <class T>
void ServerSession::AwaitLedger(std::function<Result<T>(Ledger&)> work, std::function<Status(Result<T>)> then) {
  // The call and the continuation share only the outcome's slot: the call
  // runs on another thread while the session keeps serving NextOutbound().
  auto slot = std::make_shared<std::optional<Result<T>>>();
  pending_call_ = [slot, work = std::move(work)](Ledger& ledger) { slot->emplace(work(ledger)); };
  continuation_ = [this, slot, then = std::move(then)] {
    Result<T> outcome = slot->has_value()
                            ? std::move(**slot)
                            : Result<T>(std::unexpected(Error{ErrorCode::kInternal, "a ledger call did not run"}));
    auto st = then(std::move(outcome));
    if (!st) Close(st.error());
  };
}

std::optional<LedgerCall> ServerSession::TakeLedgerCall() {
  std::optional<LedgerCall> call = std::move(pending_call_);
  pending_call_.reset();
  return call;
}

void ServerSession::OnLedgerDone() {
  if (!continuation_) return;
  auto next = std::move(continuation_);
  continuation_ = nullptr;
  next();
  // Frames that arrived with the one that asked the ledger wait in the
  // decoder; they are handled now, in order.
  if (!waiting() && state_ != State::kClosed) DrainFrames();
}

void RunLedgerCallsInline(ServerSession& session, Ledger& ledger) {
  while (auto call = session.TakeLedgerCall()) {
    (*call)(ledger);
    session.OnLedgerDone();
  }
}

void ServerSession::Observe(std::string_view event, std::string_view detail) {
  if (ctx_.observe) ctx_.observe(event, detail);
}

void ServerSession::SendControl(const ControlMessage& m) {
  out_.push_back({Outbound::Kind::kControl, ToBytes(EncodeControl(m))});
  queued_bytes_ += out_.back().data.size();
}

void ServerSession::FlushTls() {
  if (!tls_) return;
  Bytes records = tls_->TakeOutgoing();
  queued_bytes_ += records.size();
  if (!records.empty()) out_.push_back({Outbound::Kind::kInner, std::move(records)});
}

void ServerSession::SendInner(InnerType type, ByteView body) {
  auto st = tls_->Write(EncodeFrame(static_cast<uint8_t>(type), body));
  if (!st) return Close(st.error());
  FlushTls();
}

void ServerSession::Close(const Error& error) {
  if (state_ == State::kClosed) return;
  Observe("session_failed", std::string(ErrorCodeName(error.code)) + ": " + error.message);
  // Internal detail (paths, library messages) and faults of the server's
  // own configuration (a CRL it holds has expired or cannot be used) stay in
  // the server's log: the customer can do nothing about them but wait, and
  // operator advice ("load a fresh CRL") would only confuse. Faults of the
  // device (revoked, expired, wrong CA) are the customer's to hear.
  Error shown = error;
  if (error.code == ErrorCode::kIo || error.code == ErrorCode::kInternal)
    shown.message = "the server could not complete the request; try again later";
  else if (error.code == ErrorCode::kUntrustedPeer && error.message.starts_with(kCrlProblemPrefix))
    shown = {ErrorCode::kUnavailable, "the store cannot sell to this device right now; try again later"};
  // The host hears the reason before any inner alert it will relay, so the
  // user sees why (revoked, expired, ...) rather than a bare TLS alert. Then
  // the processor, when the inner channel is up, so it discards what it holds.
  SendControl(ErrorControl(shown));
  if (tls_ && tls_->handshake_done()) {
    if (tls_->Write(EncodeFrame(static_cast<uint8_t>(InnerType::kError), ErrorJson(shown))))
      FlushTls();
  } else if (tls_) {
    FlushTls();  // a handshake alert, if OpenSSL produced one
  }
  state_ = State::kClosed;
  order_.reset();
}

void ServerSession::OnControl(std::string_view text) {
  if (state_ == State::kClosed) return;
  if (waiting()) return Close({ErrorCode::kInternal, "a message was fed to the session while it waited on the ledger"});
  auto message = ParseControl(text);
  if (!message) return Close(message.error());
  auto st = HandleControl(*message);
  if (!st) Close(st.error());
}

Status ServerSession::HandleControl(const ControlMessage& m) {
  if (m.type == "login") return HandleLogin(m);
  if (state_ == State::kAwaitLogin)
    return Fail(ErrorCode::kWrongState, "log in first");
  if (m.type == "balance" && state_ == State::kReady) {
    AwaitLedger<int64_t>([user = user_](Ledger& ledger) { return ledger.Balance(user); },
                         [this](Result<int64_t> balance) -> Status {
                           if (!balance) return std::unexpected(balance.error());
                           ControlMessage reply{.type = "balance"};
                           reply.balance = *balance;
                           SendControl(reply);
                           return Ok();
                         });
    return Ok();
  }
  if (m.type == "receipts" && state_ == State::kReady) {
    AwaitLedger<std::vector<ReceiptRecord>>(
        [user = user_](Ledger& ledger) { return ledger.Receipts(user); },
        [this](Result<std::vector<ReceiptRecord>> receipts) -> Status {
          if (!receipts) return std::unexpected(receipts.error());
          ControlMessage reply{.type = "receipts"};
          // The newest kMaxReceiptsPerReply, so the reply stays within the limit.
          size_t skip = receipts->size() > kMaxReceiptsPerReply ? receipts->size() - kMaxReceiptsPerReply : 0;
          for (size_t i = skip; i < receipts->size(); ++i) reply.receipts.push_back((*receipts)[i].jws);
          SendControl(reply);
          return Ok();
        });
    return Ok();
  }
  if (m.type == "purchase" && state_ == State::kReady) return HandlePurchase(m);
  if (m.type == "redownload" && state_ == State::kReady) return HandleRedownload(m);
  if (m.type == "charge" && state_ == State::kAwaitCharge) return HandleCharge(m);
  if (m.type == "bye") {
    state_ = State::kClosed;
    order_.reset();
    return Ok();
  }
  return Fail(ErrorCode::kWrongState, "the message \"" + m.type.substr(0, 32) +
                                          "\" is not allowed at this point of the session");
}

struct ServerSession::LoginOutcome {
  Status credentials;  // the password or token check
  int64_t balance = 0;
  std::string token;   // issued when the login asked to be remembered
};

Status ServerSession::HandleLogin(const ControlMessage& m) {
  if (state_ != State::kAwaitLogin) return Fail(ErrorCode::kWrongState, "already logged in");
  if (m.user.empty() || m.user.size() > 64)
    return Fail(ErrorCode::kInvalidArgument, "the login needs a user ID of 1 to 64 characters");
  if (m.password.empty() == m.token.empty())
    return Fail(ErrorCode::kInvalidArgument, "the login needs either a password or a token, not both");
  if (ctx_.login_limiter != nullptr) {
    // Refused before any password check: guessing costs nothing but time.
    if (auto allowed = ctx_.login_limiter->Check(m.user, ctx_.peer_address, ctx_.monotonic_now()); !allowed) {
      Observe("login_limited", m.user);
      return std::unexpected(allowed.error());
    }
  }
  // One ledger call: the credentials, then what the welcome needs.
  AwaitLedger<LoginOutcome>(
      [user = m.user, password = m.password, token = m.token, remember = m.remember && !m.password.empty(),
       lifetime = ctx_.token_lifetime_seconds](Ledger& ledger) -> Result<LoginOutcome> {
        LoginOutcome out;
        out.credentials = password.empty() ? ledger.AuthenticateToken(user, token)
                                           : ledger.Authenticate(user, password);
        if (!out.credentials) return out;
        SEALDROP_ASSIGN(out.balance, ledger.Balance(user));
        if (remember) {
          SEALDROP_ASSIGN(out.token, ledger.IssueToken(user, lifetime));
        }
        return out;
      },
      [this, m](Result<LoginOutcome> outcome) -> Status {
        if (!outcome) return std::unexpected(outcome.error());
        return AfterLogin(m, std::move(*outcome));
      });
  return Ok();
}

Status ServerSession::AfterLogin(const ControlMessage& m, LoginOutcome outcome) {
  if (!outcome.credentials) {
    if (ctx_.login_limiter != nullptr)
      ctx_.login_limiter->RecordFailure(m.user, ctx_.peer_address, ctx_.monotonic_now());
    Observe("login_failed", m.user);
    if (++login_failures_ >= kMaxLoginFailuresPerSession) return std::unexpected(outcome.credentials.error());
    SendControl(ErrorControl(outcome.credentials.error()));
    return Ok();
  }
  if (ctx_.login_limiter != nullptr) ctx_.login_limiter->RecordSuccess(m.user);
  if (ctx_.user_sessions != nullptr) {
    if (!ctx_.user_sessions->Acquire(m.user)) {
      Observe("user_sessions_limited", m.user);
      return Fail(ErrorCode::kUnavailable,
                  "this account already has " + std::to_string(ctx_.user_sessions->max_per_key()) +
                      " sessions open with the store; wait for one to finish and try again");
    }
    user_slot_ = ctx_.user_sessions;
  }
  user_ = m.user;
  state_ = State::kReady;
  ControlMessage reply{.type = "welcome"};
  reply.user = user_;
  reply.balance = outcome.balance;
  reply.token = std::move(outcome.token);
  SendControl(reply);
  Observe("login", user_);
  return Ok();
}

// What the ledger says about a purchase order, gathered in one call.
struct ServerSession::OrderFacts {
  std::optional<ReceiptRecord> paid;   // a receipt already charged under this idempotency key
  std::optional<ProgramRecord> program;
  std::optional<ReceiptRecord> owned;  // the user's receipt for this version (not asked with `again`)
  int64_t balance = 0;
};

Status ServerSession::HandlePurchase(const ControlMessage& m) {
  if (!ValidToken(m.idempotency_key, 16, 64))
    return Fail(ErrorCode::kInvalidArgument, "a purchase needs an idempotency key of 16 to 64 characters");
  if (m.program.empty()) return Fail(ErrorCode::kInvalidArgument, "a purchase needs a program name");
  SEALDROP_TRY(CheckConfiguration());
  AwaitLedger<OrderFacts>(
      [user = user_, key = m.idempotency_key, name = m.program, version = m.version,
       again = m.again](Ledger& ledger) -> Result<OrderFacts> {
        OrderFacts facts;
        SEALDROP_ASSIGN(facts.paid, ledger.FindReceiptByKey(user, key));
        if (facts.paid) {
          SEALDROP_ASSIGN(facts.program, ledger.ProgramById(facts.paid->program_id));
          return facts;
        }
        SEALDROP_ASSIGN(facts.program, ledger.FindProgram(name, version));
        if (!again) {
          SEALDROP_ASSIGN(facts.owned, ledger.FindOwnedReceipt(user, facts.program->id));
        }
        SEALDROP_ASSIGN(facts.balance, ledger.Balance(user));
        return facts;
      },
      [this, m](Result<OrderFacts> facts) -> Status {
        if (!facts) return std::unexpected(facts.error());
        return AfterOrderFacts(m, std::move(*facts));
      });
  return Ok();
}

Status ServerSession::AfterOrderFacts(const ControlMessage& m, OrderFacts facts) {
  Order order;
  order.order_id = RandomHexId(16);
  order.idempotency_key = m.idempotency_key;
  order.again = m.again;
  // A retry of a purchase that was charged (the client kept its key after a
  // crash) completes that purchase: the version paid for, whatever is newest
  // now, and no charge. Without this a newer release would leave the buyer
  // with a key that no order could ever use again.
  if (facts.paid) {
    if (facts.paid->program_name != m.program || (!m.version.empty() && facts.paid->program_version != m.version))
      return Fail(ErrorCode::kRefused,
                  "this idempotency key was already used for another purchase; start a new purchase");
    order.program = std::move(facts.program);
    order.paid = std::move(facts.paid);
    order_ = std::move(order);
    Observe("order_resumed", order_->paid->receipt_id);
    return StartInner();
  }
  const ProgramRecord& program = *facts.program;
  // Refused here, before any handshake or sealing, what the charge would
  // refuse anyway: a user without the money must not make the server seal
  // and stream a whole program. The charge checks both again.
  if (facts.owned)
    return Fail(ErrorCode::kAlreadyOwned,
                "you already own " + program.name + " " + program.version +
                    "; download it again for free with 'sealdrop get " + program.name +
                    "', or buy a second licence with 'sealdrop buy --again " + program.name + "'");
  if (facts.balance < program.price)
    return Fail(ErrorCode::kInsufficientFunds,
                "your balance of " + std::to_string(facts.balance) + " is less than the price " +
                    std::to_string(program.price) + " of " + program.name + " " + program.version +
                    "; add credit and try again");
  order.program = std::move(facts.program);
  order_ = std::move(order);
  return StartInner();
}

Status ServerSession::CheckConfiguration() const {
  // The data directory's loader refuses such values; a context built some
  // other way must not reach the sealing either.
  if (ctx_.device_limit < 1 || ctx_.device_limit > kMaxDeviceLimit)
    return Fail(ErrorCode::kInternal, "the server's device limit " + std::to_string(ctx_.device_limit) +
                                          " is outside 1 to " + std::to_string(kMaxDeviceLimit) +
                                          "; fix device_limit in the data directory's config.json");
  return Ok();
}

Status ServerSession::HandleRedownload(const ControlMessage& m) {
  // The ledger is the authority on receipts this server issued: the receipt
  // must be, byte for byte, the one stored for a receipt of this user. Its
  // signature is checked too when it names the current key; a receipt signed
  // before a key renewal names an older key and stays valid through the
  // ledger, so renewing the server key does not cost users their purchases.
  auto parsed = JwsParse(m.receipt);
  if (!parsed || parsed->typ != kReceiptJwsType)
    return Fail(ErrorCode::kCryptoFailure, "the receipt is not a valid receipt of this server");
  const EcPublicKey current = ctx_.identity.key->PublicKey();
  if (parsed->kid == current.KeyId() && !JwsVerify(*parsed, current))
    return Fail(ErrorCode::kCryptoFailure, "the receipt is not a valid receipt of this server");
  auto claims = ParseReceiptClaims(parsed->payload);
  if (!claims) return Fail(ErrorCode::kCryptoFailure, "the receipt is not a valid receipt of this server");
  SEALDROP_TRY(CheckConfiguration());
  using Found = std::pair<ReceiptRecord, ProgramRecord>;
  AwaitLedger<Found>(
      [user = user_, receipt_id = claims->receipt_id, claimed_user = claims->user,
       jws = m.receipt](Ledger& ledger) -> Result<Found> {
        auto record = ledger.FindReceipt(receipt_id);
        if (!record || record->user != user || claimed_user != user || record->jws != jws)
          return Fail(ErrorCode::kRefused, "this receipt does not belong to the logged-in user");
        SEALDROP_ASSIGN(ProgramRecord program, ledger.ProgramById(record->program_id));
        return Found{std::move(*record), std::move(program)};
      },
      [this](Result<Found> found) -> Status {
        if (!found) return std::unexpected(found.error());
        Order order;
        order.order_id = found->first.receipt_id;
        order.program = std::move(found->second);
        order.redownload = std::move(found->first);
        order_ = std::move(order);
        return StartInner();
      });
  return Ok();
}

Status ServerSession::StartInner() {
  TlsPeerPolicy policy;
  policy.trust = ctx_.manufacturers;
  policy.profile = CertProfile::kDevice;
  policy.role = DeviceKeyRole::kIdentity;
  policy.now = ctx_.now;
  // The handshake checks the chain only; the ledger's revocation list is
  // asked once the processor's Capabilities arrive, before any sealing.
  policy.extra_check = [](const VerifiedLeaf& leaf) -> Status {
    if (leaf.device_serial.empty())
      return Fail(ErrorCode::kUntrustedPeer, "the processor's certificate has no device serial");
    return Ok();
  };
  SEALDROP_ASSIGN(tls_, ctx_.channel ? ctx_.channel(ctx_.identity, std::move(policy), true)
                                      : MakeTlsChannel(ctx_.identity, std::move(policy), true));
  decoder_.emplace(InnerMaxBody);
  state_ = State::kHandshake;
  ControlMessage reply{.type = "order"};
  reply.order_id = order_->order_id;
  reply.program = order_->program->name;
  reply.version = order_->program->version;
  const bool no_charge = order_->redownload || order_->paid;
  reply.price = no_charge ? 0 : order_->program->price;
  reply.charge_required = !no_charge;
  reply.size = order_->program->size;  // the plaintext size: a progress estimate
  SendControl(reply);
  Observe("order", order_->order_id);
  return Ok();
}

void ServerSession::OnInner(ByteView records) {
  if (state_ == State::kClosed) return;
  if (waiting()) return Close({ErrorCode::kInternal, "records were fed to the session while it waited on the ledger"});
  if (!tls_ || state_ == State::kReady || state_ == State::kAwaitLogin)
    return Close({ErrorCode::kWrongState, "inner records arrived outside an order"});
  auto st = tls_->Feed(records);
  if (!st) return Close(st.error());
  if (state_ == State::kHandshake && tls_->handshake_done()) {
    state_ = State::kCapabilities;
    order_->device_serial = tls_->peer()->device_serial;
    Observe("inner_handshake", order_->device_serial);
  }
  Bytes plain;
  st = tls_->ReadAvailable(plain, 4 << 20);
  if (!st) return Close(st.error());
  FlushTls();
  if (!plain.empty()) {
    st = decoder_->Push(plain);
    if (!st) return Close(st.error());
  }
  DrainFrames();
}

void ServerSession::DrainFrames() {
  if (!decoder_ || !tls_) return;
  // Stops at a frame that waits on the ledger; OnLedgerDone() resumes here.
  while (state_ != State::kClosed && !waiting()) {
    auto frame = decoder_->Pop();
    if (!frame) return Close(frame.error());
    if (!*frame) break;
    auto st = HandleInnerFrame(**frame);
    if (!st) return Close(st.error());
  }
  if (state_ != State::kClosed && !waiting() && tls_ && tls_->peer_closed())
    Close({ErrorCode::kUnavailable, "the processor closed the inner channel"});
}

Status ServerSession::HandleInnerFrame(const Frame& f) {
  switch (static_cast<InnerType>(f.type)) {
    case InnerType::kCapabilities:
      if (state_ != State::kCapabilities)
        return Fail(ErrorCode::kWrongState, "capabilities arrived out of order");
      return HandleCapabilities(f.body);
    case InnerType::kReceived: {
      if (state_ != State::kAwaitReceived)
        return Fail(ErrorCode::kWrongState, "a delivery confirmation arrived out of order");
      if (HexEncode(f.body) != order_->digest_hex)
        return Fail(ErrorCode::kCryptoFailure, "the processor confirmed a different package");
      state_ = State::kAwaitCharge;
      Observe("delivered", order_->digest_hex);
      return Ok();
    }
    case InnerType::kError:
      return std::unexpected(ParseErrorJson(f.body));
    default:
      return Fail(ErrorCode::kWrongState, "the processor sent a message only a server may send");
  }
}

Status ServerSession::HandleCapabilities(ByteView body) {
  SEALDROP_ASSIGN(InnerCapabilities caps, ParseCapabilities(body));
  bool suite_ok = false;
  for (const auto& s : caps.package_suites) suite_ok |= s == kHpkeSuiteName;
  if (!suite_ok)
    return Fail(ErrorCode::kRefused, "the processor supports no package suite this server can seal with");
  auto chain = Certificate::AllFromPem(caps.key_wrap_chain_pem);
  if (!chain) return Fail(ErrorCode::kUntrustedPeer, "the processor's key-wrap certificate cannot be read");
  SEALDROP_ASSIGN(VerifiedLeaf wrap, ctx_.manufacturers->Verify(*chain, CertProfile::kDevice,
                                                                 DeviceKeyRole::kKeyWrap, ctx_.now()));
  if (wrap.device_serial != order_->device_serial)
    return Fail(ErrorCode::kUntrustedPeer, "the key-wrap certificate belongs to another processor");
  // The device is known now: its revocation and, for re-downloads and
  // resumed purchases, the receipt's device limit, in one ledger call and
  // before PackageSealer::Create. The charge checks both again.
  const ReceiptRecord* receipt = order_->redownload ? &*order_->redownload
                                 : order_->paid     ? &*order_->paid
                                                    : nullptr;
  AwaitLedger<std::monostate>(
      [user = user_, serial = order_->device_serial, receipt_id = receipt ? receipt->receipt_id : std::string(),
       limit = ctx_.device_limit](Ledger& ledger) -> Result<std::monostate> {
        SEALDROP_ASSIGN(bool revoked, ledger.IsDeviceRevoked(serial));
        if (revoked) return Fail(ErrorCode::kUntrustedPeer, "this processor has been revoked by the vendor");
        if (!receipt_id.empty()) SEALDROP_TRY(ledger.CheckRedelivery({user, receipt_id, serial, "", limit}));
        return std::monostate{};
      },
      [this, wrap](Result<std::monostate> allowed) -> Status {
        if (!allowed) return std::unexpected(allowed.error());
        return SealAndStream(wrap);
      });
  return Ok();
}

Status ServerSession::SealAndStream(const VerifiedLeaf& wrap) {
  SealRequest req;
  req.plaintext_path = order_->program->path;
  req.program_id = order_->program->id;
  req.name = order_->program->name;
  req.version = order_->program->version;
  req.kind = order_->program->kind;
  req.recipient_key = wrap.leaf.PublicKey();
  if (ctx_.fault == ServerFault::kForeignPackage) {
    SEALDROP_ASSIGN(EcPrivateKey stranger, EcPrivateKey::Generate());
    req.recipient_key = stranger.PublicKey();
  }
  req.device_serial = order_->device_serial;
  req.order_id = order_->order_id;
  req.server_key = &*ctx_.identity.key;
  req.issued_at = UnixSeconds(ctx_.now());
  req.rights.export_plaintext = order_->program->may_export;
  req.expected_size = order_->program->size;
  req.expected_sha256 = order_->program->sha256;
  SEALDROP_ASSIGN(PackageSealer sealer, PackageSealer::Create(req));
  uint8_t total[8];
  StoreU64(total, sealer.total_size());
  order_->digest.emplace(
      PackageDigest::For(sealer.total_size() - sealer.manifest().payload_size, sealer.manifest()));
  order_->sealer.emplace(std::move(sealer));
  state_ = State::kStreaming;
  SendInner(InnerType::kPackageBegin, ByteView(total, 8));
  if (state_ == State::kClosed) return Ok();  // SendInner failed and closed the session
  Observe("sealed", order_->order_id);
  return Ok();
}

Status ServerSession::ProduceStream(size_t frame_target, bool flush) {
  // The frame is built in place: header first, then sealed chunks appended
  // by the sealer, so package bytes are copied once into TLS and no more.
  // At least one chunk, however small the target.
  Bytes frame(kFrameHeaderSize);
  frame.reserve(kFrameHeaderSize + std::max(frame_target, kSealedChunk) + 64);
  while (frame.size() == kFrameHeaderSize || frame.size() - kFrameHeaderSize + kSealedChunk <= frame_target) {
    SEALDROP_ASSIGN(bool more, order_->sealer->Next(frame));
    if (!more) {
      order_->sealing_done = true;
      break;
    }
  }
  size_t body = frame.size() - kFrameHeaderSize;
  if (body > 0) {
    order_->digest->Update(ByteView(frame).subspan(kFrameHeaderSize));
    frame[0] = static_cast<uint8_t>(InnerType::kPackageData);
    StoreU32(frame.data() + 1, static_cast<uint32_t>(body));
    if (auto st = tls_->Write(frame); !st) return st;
    if (flush) FlushTls();
  }
  if (order_->sealing_done && state_ == State::kStreaming) {
    SEALDROP_ASSIGN(Digest d, order_->digest->Final());
    order_->digest_hex = HexEncode(d);
    state_ = State::kAwaitReceived;
    SendInner(InnerType::kPackageEnd, d);  // flushes everything written so far
  }
  return Ok();
}

std::optional<Outbound> ServerSession::NextOutbound() {
  // While streaming, several package frames go into one outbound message:
  // fewer, larger WebSocket messages cost the host and the processor far
  // fewer wake-ups per byte. FlushTls() merges the TLS records into one.
  // The budget bounds one message: under many slow downloads the adapter
  // lowers it, down to one sealed chunk, so memory stays bounded.
  const size_t frame_target = std::clamp(stream_budget_, kSealedChunk, kStreamFrameTarget);
  const int frames = static_cast<int>(std::clamp<size_t>(stream_budget_ / frame_target, 1, kStreamFramesPerMessage));
  for (int i = 0; i < frames && state_ == State::kStreaming; ++i) {
    auto st = ProduceStream(frame_target, /*flush=*/i + 1 == frames);
    if (!st) Close(st.error());
  }
  if (out_.empty()) return std::nullopt;
  Outbound o = std::move(out_.front());
  out_.pop_front();
  queued_bytes_ -= o.data.size();
  return o;
}

// The ledger's answer to a charge step.
struct ServerSession::ChargeReply {
  ReceiptRecord receipt;
  int64_t amount = 0;  // debited by this step: 0 for re-downloads and replays
  int64_t balance = 0;
};

Status ServerSession::HandleCharge(const ControlMessage& m) {
  if (m.order_id != order_->order_id)
    return Fail(ErrorCode::kRefused, "the charge names another order");
  const Order& o = *order_;
  if (o.redownload) {
    AwaitLedger<ChargeReply>(
        [d = DeliveryRequest{user_, o.redownload->receipt_id, o.device_serial, o.digest_hex, ctx_.device_limit},
         receipt = *o.redownload](Ledger& ledger) -> Result<ChargeReply> {
          SEALDROP_TRY(ledger.RecordRedelivery(d));
          ChargeReply reply{receipt};
          SEALDROP_ASSIGN(reply.balance, ledger.Balance(d.user));
          return reply;
        },
        [this](Result<ChargeReply> reply) -> Status {
          if (!reply) return std::unexpected(reply.error());
          return AfterCharge(std::move(*reply));
        });
    return Ok();
  }
  ChargeRequest c;
  c.user = user_;
  c.idempotency_key = o.idempotency_key;
  c.program_id = o.program->id;
  c.device_serial = o.device_serial;
  c.package_digest = o.digest_hex;
  c.again = o.again;
  // Signed inside the charge's transaction, on the ledger's thread, from
  // copies: the session may not be touched there.
  c.sign_receipt = [key = *ctx_.identity.key, user = user_, program = *o.program, device = o.device_serial,
                    server_name = ctx_.server_name](const std::string& receipt_id, int64_t issued_at,
                                                    int64_t debited) -> Result<std::string> {
    ReceiptClaims claims{receipt_id, user,   program.id, program.name, program.version,
                         debited,    device, issued_at,  server_name};
    return JwsSign(key, key.PublicKey().KeyId(), kReceiptJwsType, AsBytes(EncodeReceiptClaims(claims)));
  };
  AwaitLedger<ChargeReply>(
      [c = std::move(c), limit = ctx_.device_limit, fault = ctx_.fault](Ledger& ledger) -> Result<ChargeReply> {
        SEALDROP_ASSIGN(ChargeOutcome outcome, ledger.Charge(c));
        if (fault == ServerFault::kDoubleCharge && !outcome.replayed) {
          ChargeRequest twice = c;
          twice.idempotency_key = c.idempotency_key.substr(0, 48) + "-twice";
          twice.again = true;
          SEALDROP_ASSIGN(ChargeOutcome second, ledger.Charge(twice));
          outcome.balance_after = second.balance_after;
        }
        if (outcome.replayed && outcome.receipt.program_id != c.program_id)
          return Fail(ErrorCode::kRefused, "this idempotency key was already used for another purchase");
        if (outcome.replayed) {
          // A retried purchase is a re-download: it counts against the device
          // limit like one, or one key could reach any number of devices.
          SEALDROP_TRY(ledger.RecordRedelivery(
              {c.user, outcome.receipt.receipt_id, c.device_serial, c.package_digest, limit}));
        }
        ChargeReply reply{outcome.receipt, outcome.replayed ? 0 : outcome.receipt.amount, outcome.balance_after};
        return reply;
      },
      [this](Result<ChargeReply> reply) -> Status {
        if (!reply) return std::unexpected(reply.error());
        return AfterCharge(std::move(*reply));
      });
  return Ok();
}

Status ServerSession::AfterCharge(ChargeReply charged) {
  Order& o = *order_;
  SEALDROP_ASSIGN(Bytes exporter, tls_->ExportKeyingMaterial(kReleaseExporterLabel, 32));
  ReleaseClaims rel{o.sealer->manifest().package_id, o.digest_hex, o.device_serial, o.order_id,
                    charged.receipt.receipt_id, Base64UrlEncode(exporter)};
  SEALDROP_ASSIGN(std::string release, JwsSign(*ctx_.identity.key, ctx_.identity.key->PublicKey().KeyId(),
                                               kReleaseJwsType, AsBytes(EncodeReleaseClaims(rel))));
  // close_notify goes out before the reply so that, from the host's view,
  // the inner channel is over before step 1010 begins.
  (void)tls_->Close();
  FlushTls();
  ControlMessage reply{.type = "charged"};
  reply.order_id = o.order_id;
  reply.receipt = charged.receipt.jws;
  if (ctx_.fault == ServerFault::kBadReceipt && !reply.receipt.empty())
    reply.receipt.back() = reply.receipt.back() == 'A' ? 'B' : 'A';
  reply.release = release;
  reply.amount = charged.amount;
  reply.balance = charged.balance;
  reply.package_digest = o.digest_hex;
  SendControl(reply);
  Observe(o.redownload ? "redelivered" : "charged", charged.receipt.receipt_id);
  tls_.reset();
  decoder_.reset();
  order_.reset();
  state_ = State::kReady;
  return Ok();
}

}  // namespace sealdrop
