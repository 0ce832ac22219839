// The server's side of one host session (steps 1001-1012), sans I/O.
//
// The WebSocket adapter feeds it the host's messages (OnControl for text,
// OnInner for binary) and writes whatever NextOutbound() returns, calling it
// again after each write completes.
//
// The session never calls the ledger itself. A step that needs the ledger
// leaves a pending ledger call (TakeLedgerCall) and waits, as BoringSSL's
// handshake waits on an asynchronous private-key operation: the adapter runs
// the call wherever blocking is allowed (a worker pool, never an I/O thread,
// so a slow database stalls only the sessions that wait on it) and then calls
// OnLedgerDone() on the session's own thread. The call touches nothing of the
// session; it writes its outcome into storage it shares with the
// continuation that OnLedgerDone() runs. While a call is pending the adapter
// feeds the session nothing (waiting() is true); NextOutbound() stays usable. Package data is produced lazily inside
// NextOutbound(), one message of at most ~800 KiB at a time, so the session's
// memory is bounded by the adapter's write pace, whatever the program's size.
//
// Legal sequence per order (docs/protocol.md has the table):
//   login                          -> ledger: credentials, balance
//                                     (and a token) -> welcome       [ready]
//   purchase | redownload          -> ledger: the order's facts in one call;
//                                     order; inner TLS server ready  [handshake]
//     (a purchase the user already owns, or cannot pay for, is refused here;
//     a purchase whose idempotency key was charged before resumes that one)
//   inner handshake (device chain checked by the manufacturer roots, validity
//   and CRL)                                                         [capabilities]
//   inner Capabilities             -> key-wrap chain checked, same device;
//                                     ledger: revocation list and device
//                                     limit; package sealed and streamed [streaming]
//   (stream done)                  -> inner PackageEnd              [await_received]
//   inner Received(digest)         ->                               [await_charge]
//   charge(order_id)               -> ledger: charge or redelivery; charged
//                                     {receipt, release}             [ready]
// balance and receipts are answered in [ready]. Anything else is kWrongState;
// any error sends an error message and ends the session.
//
// Thread safety: one session per connection, used from one strand; only a
// pending LedgerCall runs elsewhere, and it shares nothing with the session
// but its own outcome.
// Lifetimes: the ServerContext must outlive every session, and a session must
// outlive the ledger call it handed out (the adapter awaits the call).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "base/error.h"
#include "crypto/sha256.h"
#include "ledger/ledger.h"
#include "package/digest.h"
#include "package/sealer.h"
#include "server/login_limiter.h"
#include "server/keyed_slots.h"
#include "protocol/frames.h"
#include "protocol/messages.h"
#include "protocol/tls_channel.h"

namespace sealdrop {

// The most processors one receipt may be delivered to; the data directory
// refuses a configuration above it.
inline constexpr int kMaxDeviceLimit = 100;

// Deliberate server bugs, for the tests that prove the load generator
// (sealdrop-load) and the processor catch a server that misbehaves. Only the
// test executable sealdropd-faulty sets one (from SEALDROP_SERVER_FAULT);
// sealdropd never does.
enum class ServerFault {
  kNone,
  kDoubleCharge,    // every purchase is debited twice, under a second key
  kBadReceipt,      // the receipt sent to the host has a broken signature
  kForeignPackage,  // the package is sealed to a key that is not the processor's
};

// One ledger call a session waits on; see the top of this file.
using LedgerCall = std::function<void(Ledger&)>;

struct ServerContext {
  TlsIdentity identity;             // server certificate chain and key; also signs JWS
  const TrustStore* manufacturers = nullptr;
  std::string server_name = "sealdrop";
  int device_limit = 3;
  int64_t token_lifetime_seconds = 30 * 24 * 3600;
  // Wall time (certificate validity, receipt and release times) and
  // monotonic time (login limits), injectable so expiry is tested for real.
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
  std::function<LoginLimiter::Clock::time_point()> monotonic_now = [] { return LoginLimiter::Clock::now(); };
  // Failed-login limits shared by all sessions (may be null: no limit).
  LoginLimiter* login_limiter = nullptr;
  // Sessions each user may hold at once (may be null: no limit). A login
  // past it is refused; the slot is given back when the session ends.
  KeyedSlots* user_sessions = nullptr;
  // The client's address, for the per-address login limit ("" if unknown).
  std::string peer_address;
  // Names this session in the server's log lines ("" if unset).
  std::string session_id;
  // Called for every state change worth a log line or a metric.
  std::function<void(std::string_view event, std::string_view detail)> observe;
  ServerFault fault = ServerFault::kNone;
  // Makes each order's inner channel; empty means MakeTlsChannel (the
  // fuzzers pass protocol/testing/plain_channel.h).
  InnerChannelFactory channel;
};

struct Outbound {
  enum class Kind { kControl, kInner };
  Kind kind = Kind::kControl;
  Bytes data;
};

class ServerSession {
 public:
  enum class State {
    kAwaitLogin, kReady, kHandshake, kCapabilities, kStreaming, kAwaitReceived, kAwaitCharge, kClosed
  };

  explicit ServerSession(ServerContext& context);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  void OnControl(std::string_view text);
  void OnInner(ByteView records);
  // The ledger call the session now waits on, once; std::nullopt if none.
  std::optional<LedgerCall> TakeLedgerCall();
  // The call handed out by TakeLedgerCall() has returned: continue.
  void OnLedgerDone();
  // A ledger call is pending: feed nothing until OnLedgerDone().
  bool waiting() const { return static_cast<bool>(continuation_); }
  // The next message to send, or std::nullopt if there is nothing now.
  std::optional<Outbound> NextOutbound();
  // True once the session has failed or finished and everything is sent.
  bool done() const { return state_ == State::kClosed && out_.empty(); }
  State state() const { return state_; }
  // The most package bytes one outbound message may carry (at least one
  // sealed chunk is always sent). The default is the largest, four frames of
  // three chunks; the adapter lowers it when many downloads run at once.
  void set_stream_budget(size_t bytes) { stream_budget_ = bytes; }
  static constexpr size_t kMaxStreamBudget = 4 * 3 * (64 * 1024 + 16);
  // Bytes waiting in the outbound queue; the adapter stops reading the host
  // while this is high, so a host that never reads cannot grow it.
  size_t queued_bytes() const { return queued_bytes_; }
  const std::string& user() const { return user_; }

 private:
  struct Order {
    std::string order_id;
    std::string idempotency_key;
    std::optional<ProgramRecord> program;
    std::optional<ReceiptRecord> redownload;  // set for re-downloads
    std::optional<ReceiptRecord> paid;        // a retried purchase that was charged before
    bool again = false;                       // a deliberate second licence
    std::string device_serial;
    std::optional<PackageSealer> sealer;
    std::optional<PackageDigest> digest;
    std::string digest_hex;
    bool sealing_done = false;
  };

  // Leaves `work` as the pending ledger call; `then` runs with its result on
  // the session's thread when the call is done.
  template <class T>
  void AwaitLedger(std::function<Result<T>(Ledger&)> work, std::function<Status(Result<T>)> then);
  void DrainFrames();
  struct LoginOutcome;
  struct OrderFacts;
  struct ChargeReply;
  Status AfterLogin(const ControlMessage& m, LoginOutcome outcome);
  Status AfterOrderFacts(const ControlMessage& m, OrderFacts facts);
  Status AfterCharge(ChargeReply reply);
  void Close(const Error& error);
  void SendControl(const ControlMessage& message);
  void SendInner(InnerType type, ByteView body);
  void FlushTls();
  Status HandleControl(const ControlMessage& message);
  Status HandleLogin(const ControlMessage& message);
  Status HandlePurchase(const ControlMessage& message);
  Status HandleRedownload(const ControlMessage& message);
  Status StartInner();
  Status HandleInnerFrame(const Frame& frame);
  Status HandleCapabilities(ByteView body);
  Status HandleCharge(const ControlMessage& message);
  Status ProduceStream(size_t frame_target, bool flush);
  Status SealAndStream(const VerifiedLeaf& wrap);
  Status CheckConfiguration() const;
  void Observe(std::string_view event, std::string_view detail = {});

  ServerContext& ctx_;
  State state_ = State::kAwaitLogin;
  std::string user_;
  std::deque<Outbound> out_;
  size_t queued_bytes_ = 0;
  std::unique_ptr<InnerChannel> tls_;
  std::optional<FrameDecoder> decoder_;
  std::optional<Order> order_;
  int login_failures_ = 0;
  KeyedSlots* user_slot_ = nullptr;
  size_t stream_budget_ = kMaxStreamBudget;  // where this session's login took its slot
  std::optional<LedgerCall> pending_call_;
  std::function<void()> continuation_;
};

// Runs every ledger call the session leaves, in turn, on this thread, until
// it waits on none: the synchronous adapter of tests, fuzzers and tools.
void RunLedgerCallsInline(ServerSession& session, Ledger& ledger);

}  // namespace sealdrop
