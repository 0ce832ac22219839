#include "protocol/host_session.h"

#include "protocol/trp_messages.h"

namespace sealdrop {
namespace {
// An error in answer to the charge is a definite "not debited" when it is a
// decision (funds, policy, ownership, a bad request); a masked internal or
// I/O failure may have come after the debit committed.
HostSession::Charge ChargeAfterError(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInternal:
    case ErrorCode::kIo:
    case ErrorCode::kUnavailable: return HostSession::Charge::kUnanswered;
    default: return HostSession::Charge::kRefused;
  }
}
}  // namespace

void HostSession::Failed(Error e) {
  if (state_ == State::kFailed) return;
  state_ = State::kFailed;
  error_ = std::move(e);
  // Tell the processor to drop anything it holds for this order.
  Push({HostAction::Kind::kFrameToTrp, {}, {}, static_cast<uint8_t>(TrpType::kAbort)});
}

void HostSession::StartPurchase(const std::string& program, const std::string& version,
                                const std::string& idempotency_key, bool again) {
  ControlMessage m{.type = "purchase"};
  m.program = program;
  m.version = version;
  m.idempotency_key = idempotency_key;
  m.again = again;
  state_ = State::kOrdered;
  Push({HostAction::Kind::kControlToServer, EncodeControl(m)});
}

void HostSession::StartRedownload(const std::string& receipt_jws) {
  ControlMessage m{.type = "redownload"};
  m.receipt = receipt_jws;
  state_ = State::kOrdered;
  Push({HostAction::Kind::kControlToServer, EncodeControl(m)});
}

void HostSession::OnServerControl(const ControlMessage& m) {
  if (state_ == State::kFailed || state_ == State::kDone) return;
  if (m.type == "error") {
    if (state_ == State::kCharging) charge_ = ChargeAfterError(ErrorCodeFromName(m.code));
    return Failed(Error{ErrorCodeFromName(m.code), m.message});
  }
  if (m.type == "order" && state_ == State::kOrdered) {
    order_ = m;
    state_ = State::kRelay;
    Push({HostAction::Kind::kFrameToTrp, {}, {}, static_cast<uint8_t>(TrpType::kOpenSession)});
    return;
  }
  if (m.type == "charged" && state_ == State::kCharging) {
    charged_ = m;
    charge_ = Charge::kCharged;
    state_ = State::kReleasing;
    // The receipt is stored before anything else, so a crash from here on
    // still lets the user download again without paying.
    Push({HostAction::Kind::kReceipt, m.receipt});
    HostAction a{HostAction::Kind::kFrameToTrp};
    a.frame_type = static_cast<uint8_t>(TrpRelease::kType);
    a.bytes = Encode(TrpRelease{.release = m.release, .receipt = m.receipt});
    Push(std::move(a));
    return;
  }
  Failed(Error{ErrorCode::kWrongState, "the server sent \"" + m.type.substr(0, 32) + "\" out of order"});
}

void HostSession::OnServerInner(ByteView records) { OnServerInner(Bytes(records.begin(), records.end())); }

void HostSession::OnServerInner(Bytes&& records) {
  if (state_ == State::kFailed || state_ == State::kDone) return;
  if (state_ != State::kRelay && state_ != State::kCharging)
    return Failed(Error{ErrorCode::kWrongState, "the server sent inner records outside an order"});
  relayed_ += records.size();
  HostAction a{HostAction::Kind::kFrameToTrp};
  a.frame_type = static_cast<uint8_t>(TrpType::kInnerIn);
  a.bytes = std::move(records);
  Push(std::move(a));
  Push({HostAction::Kind::kProgress, {}, {}, 0, relayed_, order_.size});
}

void HostSession::OnTrpFrame(const Frame& f) {
  if (state_ == State::kFailed || state_ == State::kDone) return;
  switch (static_cast<TrpType>(f.type)) {
    case TrpType::kError:
      return Failed(ParseErrorJson(f.body));
    case TrpType::kInnerOut:
      if (state_ != State::kRelay && state_ != State::kCharging)
        return Failed(Error{ErrorCode::kWrongState, "the processor sent inner records outside an order"});
      Push({HostAction::Kind::kInnerToServer, {}, f.body});
      return;
    case TrpType::kDownloadComplete: {
      if (state_ != State::kRelay)
        return Failed(Error{ErrorCode::kWrongState, "the processor reported a download out of order"});
      ControlMessage charge{.type = "charge"};
      charge.order_id = order_.order_id;
      state_ = State::kCharging;
      charge_ = Charge::kUnanswered;
      Push({HostAction::Kind::kCharging});
      Push({HostAction::Kind::kControlToServer, EncodeControl(charge)});
      return;
    }
    case TrpType::kPackageEnd:
      if (state_ != State::kReleasing)
        return Failed(Error{ErrorCode::kWrongState, "the processor handed over a package before the release"});
      state_ = State::kDone;
      Push({HostAction::Kind::kPackageDone, ToString(f.body)});
      Push({HostAction::Kind::kDone});
      return;
    default:
      return Failed(Error{ErrorCode::kWrongState, "the processor sent an unexpected message"});
  }
}

std::optional<HostAction> HostSession::NextAction() {
  if (actions_.empty()) return std::nullopt;
  HostAction a = std::move(actions_.front());
  actions_.pop_front();
  // From kCharging on, the only control message queued is the charge.
  if (a.kind == HostAction::Kind::kControlToServer && charge_ == Charge::kUnanswered) charge_taken_ = true;
  return a;
}

void HostSession::Abort(Error error) {
  if (state_ == State::kFailed || state_ == State::kDone) return;
  state_ = State::kFailed;
  error_ = std::move(error);
  std::erase_if(actions_, [](const HostAction& a) {
    return a.kind == HostAction::Kind::kControlToServer || a.kind == HostAction::Kind::kInnerToServer;
  });
  if (charge_ == Charge::kUnanswered && !charge_taken_) charge_ = Charge::kNotSent;
}

}  // namespace sealdrop
