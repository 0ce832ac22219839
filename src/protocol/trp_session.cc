#include "protocol/trp_session.h"

#include "base/encoding.h"
#include "base/reader.h"
#include "crypto/hpke.h"
#include "crypto/jws.h"
#include "package/opener.h"
#include "package/package_file.h"
#include "protocol/messages.h"

namespace sealdrop {

TrpSession::TrpSession(const TrpIdentity& identity, const TrustStore& vendor_roots,
                       std::function<std::chrono::system_clock::time_point()> now,
                       PackageStaging& staging, InnerChannelFactory channel)
    : identity_(identity),
      vendor_roots_(vendor_roots),
      now_(std::move(now)),
      staging_(staging),
      make_channel_(channel ? std::move(channel) : InnerChannelFactory(MakeTlsChannel)),
      decoder_(InnerMaxBody) {}

Status TrpSession::Fail(Error e) {
  if (state_ != State::kFailed) {
    if (state_ == State::kReceiving || state_ == State::kHeld) staging_.Discard();
    state_ = State::kFailed;
    error_ = e;
  }
  return std::unexpected(std::move(e));
}

void TrpSession::Abort() {
  (void)Fail(Error{ErrorCode::kRefused, "the host ended the session before the release"});
}

Status TrpSession::Start() {
  if (state_ != State::kIdle) return Fail({ErrorCode::kWrongState, "the session was already started"});
  TlsPeerPolicy policy;
  policy.trust = &vendor_roots_;
  policy.profile = CertProfile::kServer;
  policy.now = now_;
  auto tls = make_channel_(identity_.tls, std::move(policy), false);
  if (!tls) return Fail(tls.error());
  tls_ = std::move(*tls);
  state_ = State::kHandshake;
  auto st = tls_->Start();
  if (!st) return Fail(st.error());
  return Ok();
}

Bytes TrpSession::TakeToServer() { return tls_ ? tls_->TakeOutgoing() : Bytes{}; }

Status TrpSession::SendInner(InnerType type, ByteView body) {
  auto st = tls_->Write(EncodeFrame(static_cast<uint8_t>(type), body));
  if (!st) return Fail(st.error());
  return Ok();
}

Status TrpSession::OnInner(ByteView records) {
  if (state_ == State::kFailed) return std::unexpected(*error_);
  if (state_ == State::kIdle) return Fail({ErrorCode::kWrongState, "inner records before the session started"});
  auto st = tls_->Feed(records);
  if (!st) return Fail(st.error());
  if (state_ == State::kHandshake && tls_->handshake_done()) {
    state_ = State::kAwaitPackage;
    InnerCapabilities caps;
    caps.package_suites = {kHpkeSuiteName};
    caps.key_wrap_chain_pem = identity_.key_wrap_chain_pem;
    SEALDROP_TRY(SendInner(InnerType::kCapabilities, EncodeCapabilities(caps)));
  }
  // Plaintext is decrypted straight into the frame decoder's buffer.
  for (;;) {
    size_t got = 0;
    auto room = decoder_.Prepare(64 * 1024);
    st = tls_->ReadSome(room, &got);
    if (!st) return Fail(st.error());
    st = decoder_.Commit(got);
    if (!st) return Fail(st.error());
    if (got == 0) break;
    while (true) {
      auto frame = decoder_.PopView();
      if (!frame) return Fail(frame.error());
      if (!*frame) break;
      SEALDROP_TRY(OnFrame(**frame));
    }
  }
  if (tls_->peer_closed() && state_ != State::kHeld && state_ != State::kReleased)
    return Fail({ErrorCode::kUnavailable, "the server closed the inner channel before the package was complete"});
  return Ok();
}

Status TrpSession::OnFrame(FrameView f) {
  switch (static_cast<InnerType>(f.type)) {
    case InnerType::kError:
      return Fail(ParseErrorJson(f.body));
    case InnerType::kPackageBegin: {
      if (state_ != State::kAwaitPackage)
        return Fail({ErrorCode::kWrongState, "the server sent a second package or sent it out of order"});
      Reader size(f.body);
      uint64_t total = 0;
      if (!size.ReadU64(&total) || !size.empty())
        return Fail({ErrorCode::kMalformed, "the package size field is malformed"});
      expected_total_ = total;
      if (expected_total_ < kPackagePrefixFixedSize || expected_total_ > kMaxPackageSize)
        return Fail({ErrorCode::kMalformed, "the announced package size is out of range"});
      auto st = staging_.Begin(expected_total_);
      if (!st) return Fail(st.error());
      state_ = State::kReceiving;
      return Ok();
    }
    case InnerType::kPackageData:
      if (state_ != State::kReceiving)
        return Fail({ErrorCode::kWrongState, "package data arrived outside a package"});
      return OnPackageBytes(f.body);
    case InnerType::kPackageEnd: {
      if (state_ != State::kReceiving)
        return Fail({ErrorCode::kWrongState, "package end arrived outside a package"});
      if (received_ != expected_total_ || !manifest_)
        return Fail({ErrorCode::kMalformed, "the package is shorter than announced"});
      auto digest = digest_->Final();
      if (!digest) return Fail(digest.error());
      Digest mine = *digest;
      if (f.body.size() != mine.size() || !ConstantTimeEqual(f.body, mine))
        return Fail({ErrorCode::kCryptoFailure, "the package digest does not match what was received"});
      if (manifest_->kind == "elf") {
        auto st = staging_.Append(EncodeElfTrailer(manifest_jws_));
        if (!st) return Fail(st.error());
      }
      auto st = staging_.Finish();
      if (!st) return Fail(st.error());
      HeldPackage held;
      held.manifest = *manifest_;
      held.manifest_jws = manifest_jws_;
      held.digest_hex = DigestHex(mine);
      held.size = received_;
      held.server_key_pem = tls_->peer()->leaf.PublicKey().ToPem();
      held_ = std::move(held);
      state_ = State::kHeld;
      return SendInner(InnerType::kReceived, mine);
    }
    case InnerType::kCapabilities:
    case InnerType::kReceived:
      return Fail({ErrorCode::kWrongState, "the server sent a message only a processor may send"});
  }
  return Fail({ErrorCode::kMalformed, "unknown inner message"});
}

Status TrpSession::OnPackageBytes(ByteView bytes) {
  if (bytes.size() > expected_total_ - received_)
    return Fail({ErrorCode::kMalformed, "the package is longer than announced"});
  if (!manifest_) {
    // Nothing is staged until the manifest has been verified.
    prefix_buffer_.insert(prefix_buffer_.end(), bytes.begin(), bytes.end());
    auto prefix = ParsePackagePrefix(prefix_buffer_);
    if (!prefix) return Fail(prefix.error());
    received_ += bytes.size();
    if (!*prefix) return Ok();
    const EcPublicKey server_key = tls_->peer()->leaf.PublicKey();
    auto m = VerifyManifest((*prefix)->manifest_jws, server_key,
                            Recipient{identity_.device_serial, identity_.key_wrap_key_id});
    if (!m) return Fail(m.error());
    if (expected_total_ != (*prefix)->payload_offset + m->payload_size)
      return Fail({ErrorCode::kMalformed, "the announced size does not match the manifest"});
    manifest_ = std::move(*m);
    manifest_jws_ = (*prefix)->manifest_jws;
    digest_.emplace(PackageDigest::For((*prefix)->payload_offset, *manifest_));
    digest_->Update(prefix_buffer_);
    // A protected ELF is staged ELF first, its manifest in a trailer
    // (package/package_file.h), so the host can read the stored program's
    // plaintext tables with ELF tools.
    ByteView to_stage = prefix_buffer_;
    if (manifest_->kind == "elf") to_stage = to_stage.subspan((*prefix)->payload_offset);
    auto st = staging_.Append(to_stage);
    Bytes().swap(prefix_buffer_);
    if (!st) return Fail(st.error());
    return Ok();
  }
  digest_->Update(bytes);
  received_ += bytes.size();
  auto st = staging_.Append(bytes);
  if (!st) return Fail(st.error());
  return Ok();
}

Result<Licence> TrpSession::Release(std::string_view release_jws, std::string_view receipt_jws) {
  if (state_ != State::kHeld) {
    if (state_ == State::kFailed) return std::unexpected(*error_);
    return std::unexpected(Error{ErrorCode::kWrongState, "there is no held package to release"});
  }
  // A bad release signature does not fail the session: the host may still
  // bring the right one. Nothing leaves until one verifies.
  const EcPublicKey server_key = tls_->peer()->leaf.PublicKey();
  auto payload = JwsVerifyCompact(release_jws, server_key, kReleaseJwsType);
  if (!payload) return std::unexpected(Error{ErrorCode::kCryptoFailure, "the release signature is not valid for this server"});
  SEALDROP_ASSIGN(ReleaseClaims claims, ParseReleaseClaims(*payload));
  SEALDROP_ASSIGN(Bytes exporter, tls_->ExportKeyingMaterial(kReleaseExporterLabel, 32));
  if (claims.package_digest != held_->digest_hex || claims.package_id != held_->manifest.package_id)
    return std::unexpected(Error{ErrorCode::kRefused, "the release signature is for another package"});
  if (claims.device_serial != identity_.device_serial)
    return std::unexpected(Error{ErrorCode::kRefused, "the release signature is for another processor"});
  if (claims.session != Base64UrlEncode(exporter))
    return std::unexpected(Error{ErrorCode::kRefused, "the release signature is from another session"});
  if (claims.order_id != held_->manifest.order_id)
    return std::unexpected(Error{ErrorCode::kRefused, "the release signature is for another order"});
  // The release (signed by this session's server key) names the receipt id;
  // the receipt must name the same id and program. Its own signature is
  // checked when it is by this session's key; a receipt issued before the
  // server renewed its key is by an older one, and the release vouches for it.
  auto receipt = JwsParse(receipt_jws);
  if (!receipt || receipt->typ != kReceiptJwsType ||
      (receipt->kid == server_key.KeyId() && !JwsVerify(*receipt, server_key)))
    return std::unexpected(Error{ErrorCode::kCryptoFailure, "the receipt is not signed by this server"});
  SEALDROP_ASSIGN(ReceiptClaims rc, ParseReceiptClaims(receipt->payload));
  if (rc.receipt_id != claims.receipt_id || rc.program_id != held_->manifest.program_id)
    return std::unexpected(Error{ErrorCode::kRefused, "the receipt does not match the release"});
  state_ = State::kReleased;
  Licence licence;
  licence.package = *held_;
  licence.release_jws = std::string(release_jws);
  licence.receipt_jws = std::string(receipt_jws);
  licence.receipt_id = claims.receipt_id;
  return licence;
}

}  // namespace sealdrop
