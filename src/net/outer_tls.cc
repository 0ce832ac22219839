#include "net/outer_tls.h"

#include <algorithm>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

#include <openssl/pem.h>

#include "crypto/ossl_internal.h"
#include "protocol/channel_bio.h"

namespace sealdrop {

struct OuterTls::Impl {
  UniquePtr<SSL> ssl;
  ChannelBuffers buffers;
};

OuterTls::OuterTls(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OuterTls::~OuterTls() = default;

namespace {
Result<std::unique_ptr<OuterTls::Impl>> MakeImpl(boost::asio::ssl::context& context) {
  auto impl = std::make_unique<OuterTls::Impl>();
  impl->ssl.reset(SSL_new(context.native_handle()));
  if (!impl->ssl) return std::unexpected(OsslError(ErrorCode::kInternal, "SSL_new failed"));
  BIO* bio = NewChannelBio(&impl->buffers);
  if (bio == nullptr) return std::unexpected(OsslError(ErrorCode::kInternal, "BIO_new failed"));
  SSL_set_bio(impl->ssl.get(), bio, bio);
  return impl;
}

OuterTls::Step StepFor(SSL* ssl, int rc) {
  switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ: return OuterTls::Step::kWantRead;
    case SSL_ERROR_ZERO_RETURN: return OuterTls::Step::kEof;
    default: return OuterTls::Step::kError;
  }
}
}  // namespace

Result<std::unique_ptr<OuterTls>> OuterTls::Server(boost::asio::ssl::context& context) {
  SEALDROP_ASSIGN(auto impl, MakeImpl(context));
  SSL_set_accept_state(impl->ssl.get());
  return std::unique_ptr<OuterTls>(new OuterTls(std::move(impl)));
}

Result<std::unique_ptr<OuterTls>> OuterTls::Client(boost::asio::ssl::context& context, const std::string& host) {
  SEALDROP_ASSIGN(auto impl, MakeImpl(context));
  SSL* ssl = impl->ssl.get();
  SSL_set_connect_state(ssl);
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (!ec) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1)
      return Fail(ErrorCode::kInvalidArgument, "cannot check the server's address " + host);
  } else {
    if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1 || SSL_set1_host(ssl, host.c_str()) != 1)
      return Fail(ErrorCode::kInvalidArgument, "cannot check the server's name " + host);
  }
  return std::unique_ptr<OuterTls>(new OuterTls(std::move(impl)));
}

OuterTls::Step OuterTls::Handshake() {
  ERR_clear_error();
  int rc = SSL_do_handshake(impl_->ssl.get());
  return rc == 1 ? Step::kDone : StepFor(impl_->ssl.get(), rc);
}

OuterTls::Step OuterTls::Read(uint8_t* dst, size_t n, size_t* got) {
  ERR_clear_error();
  int rc = SSL_read_ex(impl_->ssl.get(), dst, n, got);
  return rc == 1 ? Step::kDone : StepFor(impl_->ssl.get(), rc);
}

OuterTls::Step OuterTls::Write(const uint8_t* src, size_t n) {
  ERR_clear_error();
  size_t written = 0;
  // The BIO never pushes back, so one call writes everything.
  int rc = SSL_write_ex(impl_->ssl.get(), src, n, &written);
  return rc == 1 && written == n ? Step::kDone : Step::kError;
}

void OuterTls::Shutdown() { SSL_shutdown(impl_->ssl.get()); }

Bytes OuterTls::TakeOutgoing() {
  Bytes out = std::move(impl_->buffers.out);
  impl_->buffers.out = Bytes();
  // Room for the next small write; a large one grows the buffer as it needs.
  // Keeping the last message's size would hold that much per idle connection.
  impl_->buffers.out.reserve(std::min<size_t>(out.size(), 32 * 1024));
  return out;
}

bool OuterTls::has_outgoing() const { return !impl_->buffers.out.empty(); }
std::span<uint8_t> OuterTls::PrepareInput(size_t n) { return impl_->buffers.PrepareInput(n); }
void OuterTls::CommitInput(size_t used) { impl_->buffers.CommitInput(used); }

std::string OuterTls::PeerCertificatePem() const {
  UniquePtr<X509> cert(SSL_get1_peer_certificate(impl_->ssl.get()));
  if (!cert) return "";
  UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert.get()) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string OuterTls::LastError() {
  long verify = SSL_get_verify_result(impl_->ssl.get());
  std::string text = OsslErrorString();
  if (verify != X509_V_OK) text = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  return text.empty() ? "TLS failure" : text;
}

}  // namespace sealdrop
