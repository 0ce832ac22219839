// The server's side of one host session (steps 1001-1012), sans I/O.
//
// The WebSocket adapter feeds it the host's messages (OnControl for text,
// OnInner for binary) and writes whatever NextOutbound() returns, calling it
// again after each write completes. Package data is produced lazily inside
// NextOutbound(), one message of at most ~800 KiB at a time, so the session's
// memory is bounded by the adapter's write pace, whatever the program's size.
//
// Legal sequence per order (docs/protocol.md has the table):
//   login                          -> welcome                        [ready]
//   purchase | redownload          -> order; inner TLS server ready  [handshake]
//     (a purchase the user already owns, or cannot pay for, is refused here;
//     a purchase whose idempotency key was charged before resumes that one)
//   inner handshake (device chain checked by the manufacturer roots, validity,
//   CRL and the ledger's revocation list)                           [capabilities]
//   inner Capabilities             -> key-wrap chain checked, same device,
//                                     revocation and device limit checked,
//                                     package sealed and streamed   [streaming]
//   (stream done)                  -> inner PackageEnd              [await_received]
//   inner Received(digest)         ->                               [await_charge]
//   charge(order_id)               -> ledger: charge or redelivery; charged
//                                     {receipt, release}             [ready]
// balance and receipts are answered in [ready]. Anything else is kWrongState;
// any error sends an error message and ends the session.
//
// Thread safety: one session per connection, one strand. The Ledger is
// called synchronously from inside the handlers.
// Lifetimes: the ServerContext must outlive every session.
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
#include "protocol/login_limiter.h"
#include "protocol/frames.h"
#include "protocol/messages.h"
#include "protocol/tls_channel.h"

namespace sealdrop {

// The most processors one receipt may be delivered to; the data directory
// refuses a configuration above it.
inline constexpr int kMaxDeviceLimit = 100;

struct ServerContext {
  Ledger* ledger = nullptr;
  TlsIdentity identity;             // server certificate chain and key; also signs JWS
  const TrustStore* manufacturers = nullptr;
  std::string server_name = "sealdrop";
  int device_limit = 3;
  int64_t token_lifetime_seconds = 30 * 24 * 3600;
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
  // Failed-login limits shared by all sessions (may be null: no limit).
  LoginLimiter* login_limiter = nullptr;
  // The client's address, for the per-address login limit ("" if unknown).
  std::string peer_address;
  // Names this session in the server's log lines ("" if unset).
  std::string session_id;
  // Called for every state change worth a log line or a metric.
  std::function<void(std::string_view event, std::string_view detail)> observe;
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

  void OnControl(std::string_view text);
  void OnInner(ByteView records);
  // The next message to send, or std::nullopt if there is nothing now.
  std::optional<Outbound> NextOutbound();
  // True once the session has failed or finished and everything is sent.
  bool done() const { return state_ == State::kClosed && out_.empty(); }
  State state() const { return state_; }
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
  Status ProduceStream(bool flush);
  Status CheckDevice(const VerifiedLeaf& leaf);
  Status CheckConfiguration() const;
  Status CheckDeliveryAllowed();
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
};

}  // namespace sealdrop
