#include "protocol/testing/plain_channel.h"

#include <algorithm>
#include <cstring>

#include "crypto/sha256.h"

namespace sealdrop::testing {

PlainChannel::PlainChannel(bool is_server, TlsPeerPolicy policy, std::vector<Certificate> peer_chain, Bytes secret)
    : is_server_(is_server), policy_(std::move(policy)), peer_chain_(std::move(peer_chain)), secret_(std::move(secret)) {}

PlainChannel::~PlainChannel() {
  if (registered_ != nullptr && *registered_ == this) *registered_ = nullptr;
}

Status PlainChannel::CheckPeer() {
  if (peer_chain_.empty() || peer_chain_.size() > kMaxChainLength)
    return Fail(ErrorCode::kUntrustedPeer, peer_chain_.empty() ? "the peer presented no certificate"
                                                               : "the peer's certificate chain is too long");
  if (policy_.trust == nullptr) return Fail(ErrorCode::kInvalidArgument, "the TLS peer policy has no trust store");
  const auto now = policy_.now ? policy_.now() : std::chrono::system_clock::now();
  SEALDROP_ASSIGN(VerifiedLeaf leaf, policy_.trust->Verify(peer_chain_, policy_.profile, policy_.role, now));
  if (policy_.extra_check) SEALDROP_TRY(policy_.extra_check(leaf));
  verified_peer_ = std::move(leaf);
  return Ok();
}

Status PlainChannel::Start() {
  if (dead_) return std::unexpected(*dead_);
  if (is_server_ || started_) return Ok();
  started_ = true;
  out_.insert(out_.end(), kPlainHello.begin(), kPlainHello.end());
  return Ok();
}

Status PlainChannel::Feed(ByteView records) {
  if (dead_) return std::unexpected(*dead_);
  if (handshake_done_) {
    // A real channel keeps unread data until it is read; so does this one.
    if (read_at_ == in_.size()) {
      in_.clear();
      read_at_ = 0;
    }
    in_.insert(in_.end(), records.begin(), records.end());
    return Ok();
  }
  if (!is_server_ && !started_) {
    dead_ = Error{ErrorCode::kMalformed, "the inner TLS handshake failed (records before the ClientHello)"};
    return std::unexpected(*dead_);
  }
  if (auto st = CheckPeer(); !st) {
    dead_ = st.error();
    return std::unexpected(*dead_);
  }
  if (is_server_) out_.insert(out_.end(), kPlainHello.begin(), kPlainHello.end());
  handshake_done_ = true;
  return Ok();
}

Bytes PlainChannel::TakeOutgoing() {
  Bytes out = std::move(out_);
  out_ = Bytes();
  return out;
}

Status PlainChannel::Write(ByteView plaintext) {
  if (dead_) return std::unexpected(*dead_);
  if (!handshake_done_) return Fail(ErrorCode::kWrongState, "the inner TLS handshake is not done");
  if (plaintext.size() > kTlsMaxWrite) return Fail(ErrorCode::kTooLarge, "inner write too large");
  if (closed_) {
    dead_ = Error{ErrorCode::kMalformed, "cannot write to the inner TLS channel (closed)"};
    return std::unexpected(*dead_);
  }
  out_.insert(out_.end(), plaintext.begin(), plaintext.end());
  return Ok();
}

Status PlainChannel::ReadSome(std::span<uint8_t> dst, size_t* got) {
  *got = 0;
  if (dead_) return std::unexpected(*dead_);
  if (!handshake_done_ || dst.empty()) return Ok();
  size_t n = std::min(dst.size(), in_.size() - read_at_);
  if (n > 0) std::memcpy(dst.data(), in_.data() + read_at_, n);
  read_at_ += n;
  *got = n;
  return Ok();
}

Status PlainChannel::ReadAvailable(Bytes& out, size_t max) {
  if (dead_) return std::unexpected(*dead_);
  if (!handshake_done_) return Ok();
  size_t n = std::min(max, in_.size() - read_at_);
  out.insert(out.end(), in_.begin() + static_cast<ptrdiff_t>(read_at_),
             in_.begin() + static_cast<ptrdiff_t>(read_at_ + n));
  read_at_ += n;
  return Ok();
}

Status PlainChannel::Close() {
  closed_ = true;
  return Ok();
}

Result<Bytes> PlainChannel::ExportKeyingMaterial(std::string_view label, size_t length) const {
  if (!handshake_done_) return Fail(ErrorCode::kWrongState, "the inner TLS handshake is not done");
  return PlainExporter(secret_, label, length);
}

Bytes PlainExporter(ByteView secret, std::string_view label, size_t length) {
  Bytes out;
  for (uint8_t counter = 0; out.size() < length; ++counter) {
    Sha256 h;
    h.Update(secret);
    h.Update(AsBytes(label));
    h.Update(ByteView(&counter, 1));
    auto block = h.Final();
    out.insert(out.end(), block.begin(), block.end());
  }
  out.resize(length);
  return out;
}

InnerChannelFactory PlainChannelFactory(std::vector<Certificate> peer_chain, Bytes secret, PlainChannel** made) {
  return [peer_chain = std::move(peer_chain), secret = std::move(secret), made](
             const TlsIdentity&, TlsPeerPolicy policy,
             bool is_server) -> Result<std::unique_ptr<InnerChannel>> {
    auto channel = std::make_unique<PlainChannel>(is_server, std::move(policy), peer_chain, secret);
    if (made != nullptr) {
      *made = channel.get();
      channel->registered_ = made;
    }
    return std::unique_ptr<InnerChannel>(std::move(channel));
  };
}

}  // namespace sealdrop::testing
