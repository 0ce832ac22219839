// The host's side of one order (the `sealdrop` client's logic), sans I/O.
//
// The host is untrusted by design: this machine only sequences the relay and
// the charging step. It never sees inner plaintext; what it relays between
// server and processor are TLS records it cannot read.
//
// Inputs: control messages and inner records from the server, frames from the
// processor's socket. Outputs: a queue of HostActions for the adapter.
//   [start]   Purchase/Redownload  -> control purchase|redownload to server
//   order                          -> OpenSession to processor   [relay]
//   inner records either way       -> relayed unchanged
//   processor DownloadComplete     -> kCharging, then charge to server (1009) [charging]
//   charged {receipt, release}     -> Release to processor (1010) [releasing]
//   processor PackageEnd (+ fd)    -> store the package (1011)    [done]
// Any error message from either side ends the order with that error.
//
// Thread safety: one per order, one thread.
#pragma once

#include <deque>
#include <optional>
#include <string>

#include "base/error.h"
#include "protocol/frames.h"
#include "protocol/messages.h"

namespace sealdrop {

struct HostAction {
  enum class Kind {
    kControlToServer,  // text
    kInnerToServer,    // binary
    kFrameToTrp,       // frame (type, body)
    kPackageDone,      // step 1011: `text` holds the kPackageEnd JSON; the adapter
                       // sets `fd` to the package descriptor that came with it
    kReceipt,          // `text` holds the receipt JWS, to store at once
    kProgress,         // `number` bytes of `total` relayed
    kCharging,         // the charge comes next: from here on the server may debit,
                       // so a purchase's idempotency key must be kept durably
                       // (a failed Status from the adapter stops the charge)
    kDone,
  };
  Kind kind;
  std::string text;
  Bytes bytes;
  uint8_t frame_type = 0;
  uint64_t number = 0, total = 0;
  int fd = -1;  // set by the I/O adapter, never by the session
};

class HostSession {
 public:
  enum class State { kIdle, kOrdered, kRelay, kCharging, kReleasing, kDone, kFailed };

  // `again`: the user asks for another licence of a version already owned
  // (the server refuses a plain purchase of it with kAlreadyOwned).
  void StartPurchase(const std::string& program, const std::string& version,
                     const std::string& idempotency_key, bool again = false);
  void StartRedownload(const std::string& receipt_jws);

  void OnServerControl(const ControlMessage& message);
  void OnServerInner(ByteView records);
  void OnServerInner(Bytes&& records);  // the same, without a copy
  void OnTrpFrame(const Frame& frame);

  std::optional<HostAction> NextAction();
  // The adapter failed to carry out an action (say, could not store the
  // idempotency key at kCharging): the order ends with `error`, and nothing
  // still queued for the server is handed out, so a charge not yet taken is
  // never sent. The adapter tells the processor itself.
  void Abort(Error error);
  State state() const { return state_; }

  // What became of the charge (step 1009), for a client deciding whether a
  // failed purchase may have been paid for.
  enum class Charge {
    kNotSent,     // nothing can have been debited
    kUnanswered,  // sent, and no definite answer came back: it may have been debited
    kRefused,     // the server answered it with a refusal: nothing was debited
    kCharged,     // the server debited and sent the receipt
  };
  Charge charge() const { return charge_; }
  const std::optional<Error>& error() const { return error_; }
  const ControlMessage& order() const { return order_; }
  const ControlMessage& charged() const { return charged_; }

 private:
  void Push(HostAction a) { actions_.push_back(std::move(a)); }
  void Failed(Error e);

  State state_ = State::kIdle;
  std::deque<HostAction> actions_;
  std::optional<Error> error_;
  ControlMessage order_;
  ControlMessage charged_;
  uint64_t relayed_ = 0;
  Charge charge_ = Charge::kNotSent;
  bool charge_taken_ = false;  // the charge left the queue for the adapter
};

}  // namespace sealdrop
