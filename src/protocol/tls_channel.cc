#include "protocol/tls_channel.h"

#include <cstring>
#include <mutex>

#include "crypto/ossl_internal.h"
#include "pki/pki_internal.h"
#include "protocol/channel_bio.h"

namespace sealdrop {

struct TlsChannel::Impl {
  UniquePtr<SSL_CTX> ctx;
  UniquePtr<SSL> ssl;
  std::unique_ptr<ChannelBuffers> buffers = std::make_unique<ChannelBuffers>();
  TlsPeerPolicy policy;
  std::optional<VerifiedLeaf> peer;
  std::optional<Error> verify_error;
  std::optional<Error> dead;
  bool handshake_done = false;
  bool peer_closed = false;
  bool is_server = false;
};

namespace {

Result<UniquePtr<X509>> ToX509(const Certificate& cert) {
  Bytes der = cert.ToDer();
  const uint8_t* p = der.data();
  UniquePtr<X509> x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!x) return std::unexpected(OsslError(ErrorCode::kInternal, "cannot load a certificate"));
  return x;
}

// Runs inside the handshake when the peer's Certificate message arrives.
// The context is shared, so the channel is found through the connection.
int VerifyPeerCallback(X509_STORE_CTX* store_ctx, void*) {
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* impl = ssl != nullptr ? static_cast<TlsChannel::Impl*>(SSL_get_app_data(ssl)) : nullptr;
  if (impl == nullptr) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  STACK_OF(X509)* untrusted = X509_STORE_CTX_get0_untrusted(store_ctx);
  X509* leaf = X509_STORE_CTX_get0_cert(store_ctx);
  std::vector<Certificate> chain;
  // The certificates OpenSSL has already parsed are shared, not encoded and
  // parsed again (that was a fifth of the server's CPU per purchase).
  auto add = [&](X509* x) -> bool {
    auto cert = WrapX509(x);
    if (!cert) return false;
    chain.push_back(std::move(*cert));
    return true;
  };
  bool ok = leaf != nullptr && add(leaf);
  int n = untrusted ? sk_X509_num(untrusted) : 0;
  for (int i = 0; ok && i < n; ++i) {
    X509* x = sk_X509_value(untrusted, i);
    if (x == leaf || X509_cmp(x, leaf) == 0) continue;
    ok = add(x);
  }
  if (!ok || chain.size() > kMaxChainLength) {
    impl->verify_error = Error{ErrorCode::kUntrustedPeer,
                               ok ? "the peer's certificate chain is too long"
                                  : "the peer's certificate could not be read"};
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  auto now = impl->policy.now ? impl->policy.now() : std::chrono::system_clock::now();
  auto verified = impl->policy.trust->Verify(chain, impl->policy.profile, impl->policy.role, now);
  if (verified && impl->policy.extra_check) {
    auto extra = impl->policy.extra_check(*verified);
    if (!extra) verified = std::unexpected(extra.error());
  }
  if (!verified) {
    impl->verify_error = verified.error();
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  impl->peer = std::move(*verified);
  return 1;
}

Status ConfigureContext(SSL_CTX* ctx, const TlsIdentity& identity) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384") != 1 ||
      SSL_CTX_set1_groups_list(ctx, "P-256") != 1 ||
      SSL_CTX_set1_sigalgs_list(ctx, "ECDSA+SHA256") != 1 ||
      SSL_CTX_set1_client_sigalgs_list(ctx, "ECDSA+SHA256") != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot configure the inner TLS suite"));
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_max_early_data(ctx, 0);
  if (identity.chain.empty())
    return Fail(ErrorCode::kInvalidArgument, "the TLS identity has no certificate");
  SEALDROP_ASSIGN(UniquePtr<X509> leaf, ToX509(identity.chain[0]));
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot use the TLS certificate"));
  for (size_t i = 1; i < identity.chain.size(); ++i) {
    SEALDROP_ASSIGN(UniquePtr<X509> extra, ToX509(identity.chain[i]));
    if (SSL_CTX_add1_chain_cert(ctx, extra.get()) != 1)
      return std::unexpected(OsslError(ErrorCode::kInternal, "cannot add a chain certificate"));
  }
  if (!identity.key) return Fail(ErrorCode::kInvalidArgument, "the TLS identity has no key");
  if (SSL_CTX_use_PrivateKey(ctx, RawPkey(*identity.key)) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1)
    return std::unexpected(
        OsslError(ErrorCode::kInvalidArgument, "the TLS key does not match its certificate"));
  return Ok();
}

Result<UniquePtr<SSL_CTX>> MakeContext(const TlsIdentity& identity, bool server) {
  UniquePtr<SSL_CTX> ctx(SSL_CTX_new_ex(nullptr, nullptr, TLS_method()));
  if (!ctx) return std::unexpected(OsslError(ErrorCode::kInternal, "SSL_CTX_new failed"));
  SEALDROP_TRY(ConfigureContext(ctx.get(), identity));
  int mode = SSL_VERIFY_PEER;
  if (server) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx.get(), mode, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx.get(), VerifyPeerCallback, nullptr);
  return ctx;
}

}  // namespace

class TlsContextCache {
 public:
  // A reference to the context of this identity and role, made if there is
  // none yet or the identity's chain or key changed since.
  Result<UniquePtr<SSL_CTX>> Get(const TlsIdentity& identity, bool server) {
    std::lock_guard lock(mu_);
    Entry& e = entries_[server ? 1 : 0];
    if (!e.ctx || !e.MadeFrom(identity)) {
      SEALDROP_ASSIGN(UniquePtr<SSL_CTX> made, MakeContext(identity, server));
      e.ctx = std::move(made);
      e.chain = identity.chain;
      e.key = identity.key;
    }
    if (SSL_CTX_up_ref(e.ctx.get()) != 1)
      return std::unexpected(OsslError(ErrorCode::kInternal, "SSL_CTX_up_ref failed"));
    return UniquePtr<SSL_CTX>(e.ctx.get());
  }

 private:
  // A context and copies of the certificate and key objects it was made
  // from. The copies share those objects' state, so holding them keeps their
  // addresses from being reused: the same addresses mean the same objects.
  struct Entry {
    UniquePtr<SSL_CTX> ctx;
    std::vector<Certificate> chain;
    std::optional<EcPrivateKey> key;

    bool MadeFrom(const TlsIdentity& identity) const {
      if (chain.size() != identity.chain.size() || key.has_value() != identity.key.has_value()) return false;
      for (size_t i = 0; i < chain.size(); ++i)
        if (&chain[i].impl() != &identity.chain[i].impl()) return false;
      return !key || RawPkey(*key) == RawPkey(*identity.key);
    }
  };
  std::mutex mu_;
  Entry entries_[2];  // client, server
};

std::shared_ptr<TlsContextCache> NewTlsContextCache() { return std::make_shared<TlsContextCache>(); }

TlsChannel::TlsChannel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsChannel::TlsChannel(TlsChannel&&) noexcept = default;
TlsChannel& TlsChannel::operator=(TlsChannel&&) noexcept = default;
TlsChannel::~TlsChannel() = default;

static Result<std::unique_ptr<TlsChannel::Impl>> MakeImpl(const TlsIdentity& identity,
                                                          TlsPeerPolicy policy, bool server) {
  if (policy.trust == nullptr)
    return Fail(ErrorCode::kInvalidArgument, "the TLS peer policy has no trust store");
  auto impl = std::make_unique<TlsChannel::Impl>();
  impl->policy = std::move(policy);
  impl->is_server = server;
  if (identity.contexts) {
    SEALDROP_ASSIGN(impl->ctx, identity.contexts->Get(identity, server));
  } else {
    SEALDROP_ASSIGN(impl->ctx, MakeContext(identity, server));
  }
  impl->ssl.reset(SSL_new(impl->ctx.get()));
  if (!impl->ssl) return std::unexpected(OsslError(ErrorCode::kInternal, "SSL_new failed"));
  SSL_set_app_data(impl->ssl.get(), impl.get());
  BIO* bio = NewChannelBio(impl->buffers.get());
  if (bio == nullptr) return std::unexpected(OsslError(ErrorCode::kInternal, "BIO_new failed"));
  SSL_set_bio(impl->ssl.get(), bio, bio);  // one reference, used both ways
  if (server)
    SSL_set_accept_state(impl->ssl.get());
  else
    SSL_set_connect_state(impl->ssl.get());
  return impl;
}

Result<TlsChannel> TlsChannel::CreateClient(const TlsIdentity& identity, TlsPeerPolicy policy) {
  SEALDROP_ASSIGN(auto impl, MakeImpl(identity, std::move(policy), false));
  return TlsChannel(std::move(impl));
}

Result<TlsChannel> TlsChannel::CreateServer(const TlsIdentity& identity, TlsPeerPolicy policy) {
  SEALDROP_ASSIGN(auto impl, MakeImpl(identity, std::move(policy), true));
  return TlsChannel(std::move(impl));
}

Result<std::unique_ptr<InnerChannel>> MakeTlsChannel(const TlsIdentity& identity, TlsPeerPolicy policy,
                                                     bool is_server) {
  SEALDROP_ASSIGN(TlsChannel channel, is_server ? TlsChannel::CreateServer(identity, std::move(policy))
                                                : TlsChannel::CreateClient(identity, std::move(policy)));
  return std::unique_ptr<InnerChannel>(std::make_unique<TlsChannel>(std::move(channel)));
}

namespace {
Error ChannelError(TlsChannel::Impl& impl, std::string_view what) {
  if (impl.verify_error) return *impl.verify_error;
  unsigned long e = ERR_peek_last_error();
  std::string detail = OsslErrorString();
  ErrorCode code = ErrorCode::kMalformed;
  if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
    int reason = ERR_GET_REASON(e);
    if (reason == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC ||
        reason == SSL_R_BAD_SIGNATURE || reason == SSL_R_DIGEST_CHECK_FAILED)
      code = ErrorCode::kCryptoFailure;
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED || reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
        (reason >= SSL_AD_REASON_OFFSET))
      code = ErrorCode::kUntrustedPeer;
  }
  return Error{code, std::string(what) + (detail.empty() ? "" : " (" + detail + ")")};
}
}  // namespace

Status TlsChannel::Start() {
  if (impl_->dead) return std::unexpected(*impl_->dead);
  if (impl_->is_server) return Ok();
  return Feed({});
}

Status TlsChannel::Feed(ByteView records) {
  Impl& im = *impl_;
  if (im.dead) return std::unexpected(*im.dead);
  if (!records.empty()) im.buffers->AppendInput(records);
  if (im.handshake_done) return Ok();
  ERR_clear_error();
  int rc = SSL_do_handshake(im.ssl.get());
  if (rc == 1) {
    im.handshake_done = true;
    if (!im.peer) {
      im.dead = Error{ErrorCode::kUntrustedPeer, "the peer presented no certificate"};
      return std::unexpected(*im.dead);
    }
    return Ok();
  }
  int err = SSL_get_error(im.ssl.get(), rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Ok();
  im.dead = ChannelError(im, "the inner TLS handshake failed");
  return std::unexpected(*im.dead);
}

Bytes TlsChannel::TakeOutgoing() {
  Bytes out = std::move(impl_->buffers->out);
  impl_->buffers->out = Bytes();
  // The next batch is likely the size of this one: reserve it, so the
  // buffer does not grow (and copy) its way up again.
  impl_->buffers->out.reserve(out.size());
  return out;
}

bool TlsChannel::pending_outgoing() const { return !impl_->buffers->out.empty(); }
bool TlsChannel::handshake_done() const { return impl_->handshake_done; }
bool TlsChannel::peer_closed() const { return impl_->peer_closed; }
const std::optional<VerifiedLeaf>& TlsChannel::peer() const { return impl_->peer; }

Status TlsChannel::Write(ByteView plaintext) {
  Impl& im = *impl_;
  if (im.dead) return std::unexpected(*im.dead);
  if (!im.handshake_done) return Fail(ErrorCode::kWrongState, "the inner TLS handshake is not done");
  if (plaintext.size() > kTlsMaxWrite) return Fail(ErrorCode::kTooLarge, "inner write too large");
  if (plaintext.empty()) return Ok();
  ERR_clear_error();
  size_t written = 0;
  if (SSL_write_ex(im.ssl.get(), plaintext.data(), plaintext.size(), &written) != 1 ||
      written != plaintext.size()) {
    im.dead = ChannelError(im, "cannot write to the inner TLS channel");
    return std::unexpected(*im.dead);
  }
  return Ok();
}

Status TlsChannel::ReadAvailable(Bytes& out, size_t max) {
  // Straight into the tail of `out`, a record (16 KiB) at a time.
  constexpr size_t kRecord = 16384;
  while (max > 0) {
    size_t at = out.size();
    size_t want = std::min(kRecord, max);
    if (out.capacity() < at + want) out.reserve(std::max(out.capacity() * 2, at + want));
    out.resize(at + want);
    size_t got = 0;
    auto st = ReadSome(std::span<uint8_t>(out.data() + at, want), &got);
    out.resize(at + got);
    if (!st) return st;
    if (got == 0) break;
    max -= got;
  }
  return Ok();
}

Status TlsChannel::ReadSome(std::span<uint8_t> dst, size_t* got) {
  Impl& im = *impl_;
  *got = 0;
  if (im.dead) return std::unexpected(*im.dead);
  if (!im.handshake_done || dst.empty()) return Ok();
  ERR_clear_error();
  if (SSL_read_ex(im.ssl.get(), dst.data(), dst.size(), got) == 1) return Ok();
  *got = 0;
  int err = SSL_get_error(im.ssl.get(), 0);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Ok();
  if (err == SSL_ERROR_ZERO_RETURN) {
    im.peer_closed = true;
    return Ok();
  }
  im.dead = ChannelError(im, "the inner TLS channel failed");
  return std::unexpected(*im.dead);
}

Status TlsChannel::Close() {
  if (impl_->dead || !impl_->handshake_done) return Ok();
  SSL_shutdown(impl_->ssl.get());
  return Ok();
}

Result<Bytes> TlsChannel::ExportKeyingMaterial(std::string_view label, size_t length) const {
  if (!impl_->handshake_done) return Fail(ErrorCode::kWrongState, "the inner TLS handshake is not done");
  Bytes out(length);
  if (SSL_export_keying_material(impl_->ssl.get(), out.data(), out.size(), label.data(),
                                 label.size(), nullptr, 0, 0) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot export keying material"));
  return out;
}

Bytes TlsChannel::ClientRandom() const {
  Bytes out(32);
  out.resize(SSL_get_client_random(impl_->ssl.get(), out.data(), out.size()));
  return out;
}

Bytes TlsChannel::ServerRandom() const {
  Bytes out(32);
  out.resize(SSL_get_server_random(impl_->ssl.get(), out.data(), out.size()));
  return out;
}

}  // namespace sealdrop
