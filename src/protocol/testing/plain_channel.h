// A cleartext stand-in for TlsChannel, for the fuzzers and tests only.
//
// The session state machines spend almost all of an input's time in the
// inner TLS handshake (two certificate chains, two signatures, ECDHE: about
// 7 ms under the sanitizers), which holds a fuzzer of their frame logic to
// ~100 executions a second. PlainChannel keeps InnerChannel's contract
// without any cryptography so the fuzzers can reach the states after the
// handshake at thousands of executions a second. It is never linked into
// the product: it lives in sealdrop_protocol_testing, and the product makes
// its channels with MakeTlsChannel.
//
// Behaviour:
//  - Start (client) queues kPlainHello; a server side queues kPlainHello in
//    answer to its first Feed. The first Feed a side receives completes its
//    handshake and its bytes are the peer's handshake flight, not data.
//  - At that point the peer's certificate chain (given at creation or by
//    SetPeerChain before the handshake) is checked as TlsChannel's verify
//    callback checks it: the length bound, the policy's trust store, profile
//    and role at the policy's time, then extra_check. A refusal kills the
//    channel with that error.
//  - After the handshake every Feed is application data, readable by
//    ReadSome/ReadAvailable in order; Write appends to the outgoing bytes.
//  - PeerClose() plays a close_notify: reads then report peer_closed().
//  - ExportKeyingMaterial derives `length` bytes from the label and the
//    channel's `secret` (SHA-256 based; PlainExporter), so a signature bound
//    to one channel's exporter does not verify against another's.
//  - Kill() makes every later call fail, as a broken record stream would.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/tls_channel.h"

namespace sealdrop::testing {

inline constexpr std::string_view kPlainHello = "plain-channel-hello";

class PlainChannel final : public InnerChannel {
 public:
  PlainChannel(bool is_server, TlsPeerPolicy policy, std::vector<Certificate> peer_chain, Bytes secret);
  ~PlainChannel() override;
  PlainChannel(const PlainChannel&) = delete;
  PlainChannel& operator=(const PlainChannel&) = delete;

  Status Feed(ByteView records) override;
  Status Start() override;
  Bytes TakeOutgoing() override;
  bool handshake_done() const override { return handshake_done_; }
  bool peer_closed() const override { return peer_closed_ && read_at_ == in_.size(); }
  Status Write(ByteView plaintext) override;
  Status ReadAvailable(Bytes& out, size_t max) override;
  Status ReadSome(std::span<uint8_t> dst, size_t* got) override;
  Status Close() override;
  const std::optional<VerifiedLeaf>& peer() const override { return verified_peer_; }
  Result<Bytes> ExportKeyingMaterial(std::string_view label, size_t length) const override;

  void SetPeerChain(std::vector<Certificate> chain) { peer_chain_ = std::move(chain); }
  void PeerClose() { peer_closed_ = true; }
  void Kill(Error e) { dead_ = std::move(e); }
  bool closed() const { return closed_; }

 private:
  friend InnerChannelFactory PlainChannelFactory(std::vector<Certificate>, Bytes, PlainChannel**);
  Status CheckPeer();

  bool is_server_;
  TlsPeerPolicy policy_;
  std::vector<Certificate> peer_chain_;
  Bytes secret_;
  PlainChannel** registered_ = nullptr;  // cleared when this channel goes
  std::optional<VerifiedLeaf> verified_peer_;
  std::optional<Error> dead_;
  bool started_ = false;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool closed_ = false;
  Bytes in_;
  size_t read_at_ = 0;
  Bytes out_;
};

// A factory for TrpSession / ServerContext that makes PlainChannels with
// this peer chain and secret. If `made` is not null it points at the newest
// channel while that channel lives, and is null after it is destroyed.
InnerChannelFactory PlainChannelFactory(std::vector<Certificate> peer_chain, Bytes secret, PlainChannel** made);

// What PlainChannel::ExportKeyingMaterial returns for this secret.
Bytes PlainExporter(ByteView secret, std::string_view label, size_t length);

}  // namespace sealdrop::testing
