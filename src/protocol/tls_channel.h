// The second path: a TLS 1.3 endpoint that does no I/O.
//
// TlsChannel drives OpenSSL over an in-memory BIO: the caller feeds it the bytes
// that arrived from the peer (Feed), takes the bytes to send (TakeOutgoing),
// and reads and writes application data once the handshake is done. The host
// relays those outgoing bytes as opaque frames; it never holds a key.
//
// Fixed suite, never negotiated down: TLS 1.3 only, TLS_AES_256_GCM_SHA384,
// group P-256, signatures ecdsa_secp256r1_sha256, no session tickets, no
// resumption, no early data, no renegotiation (TLS 1.3 has none).
//
// Roles. The processor is the TLS client: its ClientHello.random is the
// patent's Rc. The server is the TLS server and demands a client certificate.
// Each side checks the other's chain with its own TrustStore inside the
// handshake (OpenSSL's certificate verify callback), so a bad chain ends the
// handshake with an alert before either side sends application data:
//   client (processor) requires  CertProfile::kServer from its vendor roots;
//   server requires              CertProfile::kDevice, role kIdentity, from
//                                its manufacturer roots, plus `extra_check`
//                                (its own revocation list).
//
// Thread safety: none; one TlsChannel per session, used from one thread.
// Lifetimes: the TrustStore passed in must outlive the channel.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/ec.h"
#include "pki/cert.h"

namespace sealdrop {

// Largest plaintext one Write() accepts; callers split bigger messages.
inline constexpr size_t kTlsMaxWrite = 1 << 20;

// The OpenSSL contexts of one identity (tls_channel.cc).
class TlsContextCache;
std::shared_ptr<TlsContextCache> NewTlsContextCache();

struct TlsIdentity {
  std::vector<Certificate> chain;   // leaf first
  std::optional<EcPrivateKey> key;  // required; optional only so holders can be default-constructed
  // The configured SSL_CTX of each role, made by the first channel of that
  // role and shared by later channels and by every copy of this identity,
  // from any thread: making one (loading the chain and the key, checking
  // that they match) was a fifth of a handshake's CPU (make bench-tls). A
  // cached context is used only while `chain` and `key` still hold the
  // objects it was made from; after either is replaced the next channel
  // makes a new one.
  std::shared_ptr<TlsContextCache> contexts = NewTlsContextCache();
};

struct TlsPeerPolicy {
  const TrustStore* trust = nullptr;
  CertProfile profile = CertProfile::kServer;
  DeviceKeyRole role = DeviceKeyRole::kIdentity;
  std::function<std::chrono::system_clock::time_point()> now;
  // Extra check on the verified leaf (server: its device revocation list).
  std::function<Status(const VerifiedLeaf&)> extra_check;
};

// What the session state machines (trp_session.h, server_session.h) use of
// the second path. TlsChannel is the product's only implementation;
// protocol/testing/plain_channel.h has a cleartext stand-in with the same
// contract, so the fuzzers can drive the state machines past the handshake
// without paying for a handshake per input. The contract of each method is
// the one documented on TlsChannel below.
class InnerChannel {
 public:
  virtual ~InnerChannel() = default;
  virtual Status Feed(ByteView records) = 0;
  virtual Status Start() = 0;
  virtual Bytes TakeOutgoing() = 0;
  virtual bool handshake_done() const = 0;
  virtual bool peer_closed() const = 0;
  virtual Status Write(ByteView plaintext) = 0;
  virtual Status ReadAvailable(Bytes& out, size_t max) = 0;
  virtual Status ReadSome(std::span<uint8_t> dst, size_t* got) = 0;
  virtual Status Close() = 0;
  virtual const std::optional<VerifiedLeaf>& peer() const = 0;
  virtual Result<Bytes> ExportKeyingMaterial(std::string_view label, size_t length) const = 0;
};

// Makes the channel of one session: the processor's side (is_server false)
// or the server's. An empty factory means MakeTlsChannel.
using InnerChannelFactory =
    std::function<Result<std::unique_ptr<InnerChannel>>(const TlsIdentity&, TlsPeerPolicy, bool is_server)>;

class TlsChannel final : public InnerChannel {
 public:
  static Result<TlsChannel> CreateClient(const TlsIdentity& identity, TlsPeerPolicy policy);
  static Result<TlsChannel> CreateServer(const TlsIdentity& identity, TlsPeerPolicy policy);
  TlsChannel(TlsChannel&&) noexcept;
  TlsChannel& operator=(TlsChannel&&) noexcept;
  ~TlsChannel() override;

  // Bytes from the peer. Drives the handshake as far as it can go. Fails with
  // kUntrustedPeer if the peer's chain was refused (the reason from the
  // policy), or kCryptoFailure/kMalformed for a broken record stream. After a
  // failure the channel is dead and every call fails.
  Status Feed(ByteView records) override;
  // Starts the handshake (client: produces the ClientHello).
  Status Start() override;
  // Bytes to send to the peer, possibly empty.
  Bytes TakeOutgoing() override;
  bool pending_outgoing() const;
  bool handshake_done() const override;
  bool peer_closed() const override;

  // Application data, only after handshake_done().
  Status Write(ByteView plaintext) override;
  // Appends available application data to `out` (up to max bytes).
  Status ReadAvailable(Bytes& out, size_t max) override;
  // Reads application data into dst; *got == 0 means none is available now.
  Status ReadSome(std::span<uint8_t> dst, size_t* got) override;
  // Sends close_notify.
  Status Close() override;

  // Valid after the handshake.
  const std::optional<VerifiedLeaf>& peer() const override;
  // RFC 8446 section 7.5 exporter, binds signatures to this session.
  Result<Bytes> ExportKeyingMaterial(std::string_view label, size_t length) const override;
  // The handshake randoms (the patent's Rc and Rs), for logs and docs.
  Bytes ClientRandom() const;
  Bytes ServerRandom() const;

  struct Impl;  // opaque; public only so the .cc's OpenSSL callbacks can name it

 private:
  explicit TlsChannel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// TlsChannel::CreateServer or CreateClient, as an InnerChannel.
Result<std::unique_ptr<InnerChannel>> MakeTlsChannel(const TlsIdentity& identity, TlsPeerPolicy policy,
                                                     bool is_server);

}  // namespace sealdrop
