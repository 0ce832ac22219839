// The processor's side of one download (steps 1003-1011), sans I/O.
//
// The host feeds it inner TLS records from the server (OnInner) and sends
// whatever TakeToServer() returns back to the server; the session never
// touches a socket or a file, only a PackageStaging it is given.
//
// Legal sequence (anything else fails the session with kWrongState):
//   Start                      -> ClientHello out                  [handshake]
//   inner handshake completes  -> Capabilities out                 [await_package]
//   PackageBegin(total)        -> staging.Begin                    [receiving]
//   PackageData*               -> prefix parsed, manifest verified against the
//                                 server key of this handshake and this
//                                 recipient; bytes hashed and staged
//   PackageEnd(digest)         -> digest and size checked, staging.Finish,
//                                 Received(digest) out             [held]
//   Release(jws)               -> signature by this session's server key,
//                                 package digest, device, order and the TLS
//                                 exporter of this session checked -> Licence
//                                                                  [released]
// Before `released` the package cannot leave the processor and cannot run;
// on any failure the staging is discarded.
//
// Thread safety: one session per connection, one thread.
// Lifetimes: identity, trust and staging must outlive the session.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "base/error.h"
#include "crypto/sha256.h"
#include "package/digest.h"
#include "package/manifest.h"
#include "protocol/frames.h"
#include "protocol/messages.h"
#include "protocol/tls_channel.h"

namespace sealdrop {

// Largest package the processor accepts (1 TiB).
inline constexpr uint64_t kMaxPackageSize = uint64_t{1} << 40;

struct TrpIdentity {
  TlsIdentity tls;                 // identity certificate chain and signing key
  std::string key_wrap_chain_pem;  // key-wrap certificate, then its issuers
  std::string device_serial;
  std::string key_wrap_key_id;
};

class PackageStaging {
 public:
  virtual ~PackageStaging() = default;
  virtual Status Begin(uint64_t total_size) = 0;
  virtual Status Append(ByteView bytes) = 0;
  virtual Status Finish() = 0;  // complete; need not be durable (held packages die with a crash)
  virtual void Discard() = 0;
};

struct HeldPackage {
  Manifest manifest;
  std::string manifest_jws;
  std::string digest_hex;
  uint64_t size = 0;
  std::string server_key_pem;  // the key this session's server proved it holds
};

struct Licence {
  HeldPackage package;
  std::string release_jws;
  std::string receipt_jws;
  std::string receipt_id;
};

class TrpSession {
 public:
  enum class State { kIdle, kHandshake, kAwaitPackage, kReceiving, kHeld, kReleased, kFailed };

  // `channel` makes the inner channel at Start; empty means MakeTlsChannel
  // (the fuzzers pass protocol/testing/plain_channel.h).
  TrpSession(const TrpIdentity& identity, const TrustStore& vendor_roots,
             std::function<std::chrono::system_clock::time_point()> now, PackageStaging& staging,
             InnerChannelFactory channel = {});

  Status Start();
  Status OnInner(ByteView records);
  Bytes TakeToServer();
  // Checks the release signature; on success the package is released.
  Result<Licence> Release(std::string_view release_jws, std::string_view receipt_jws);
  // Fails the session (host gave up); discards staging.
  void Abort();

  State state() const { return state_; }
  const std::optional<HeldPackage>& held() const { return held_; }
  // The first error that failed the session.
  const std::optional<Error>& error() const { return error_; }

 private:
  Status Fail(Error e);
  Status OnFrame(FrameView frame);
  Status OnPackageBytes(ByteView bytes);
  Status SendInner(InnerType type, ByteView body);

  const TrpIdentity& identity_;
  const TrustStore& vendor_roots_;
  std::function<std::chrono::system_clock::time_point()> now_;
  PackageStaging& staging_;
  InnerChannelFactory make_channel_;
  std::unique_ptr<InnerChannel> tls_;
  FrameDecoder decoder_;
  State state_ = State::kIdle;
  std::optional<Error> error_;

  uint64_t expected_total_ = 0;
  uint64_t received_ = 0;
  Bytes prefix_buffer_;
  std::optional<Manifest> manifest_;
  std::string manifest_jws_;
  std::optional<PackageDigest> digest_;
  std::optional<HeldPackage> held_;
};

}  // namespace sealdrop
