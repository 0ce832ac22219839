// The TLS engine under TlsStream, without I/O: OpenSSL on the project's
// in-memory BIO. The stream above it moves bytes between the socket and
// this engine's buffers in large batches.
//
// Thread safety: one engine per connection, used from one strand.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "base/bytes.h"
#include "base/error.h"

namespace boost::asio::ssl {
class context;
}

namespace sealdrop {

class OuterTls {
 public:
  enum class Step { kDone, kWantRead, kEof, kError };

  // Server side: certificate and key come from `context` (TLS 1.3 only).
  static Result<std::unique_ptr<OuterTls>> Server(boost::asio::ssl::context& context);
  // Client side: the peer must present a certificate valid for `host` (DNS
  // name or IP literal) that `context`'s trust anchors verify.
  static Result<std::unique_ptr<OuterTls>> Client(boost::asio::ssl::context& context, const std::string& host);
  ~OuterTls();

  Step Handshake();
  // Decrypts up to n bytes into dst; kWantRead means more input is needed.
  Step Read(uint8_t* dst, size_t n, size_t* got);
  // Encrypts all of src into the outgoing buffer.
  Step Write(const uint8_t* src, size_t n);
  void Shutdown();

  // Ciphertext for the peer (take it by move) and room for ciphertext from it.
  Bytes TakeOutgoing();
  bool has_outgoing() const;
  std::span<uint8_t> PrepareInput(size_t n);
  void CommitInput(size_t used);

  // The OpenSSL error queue as text, for errors.
  std::string LastError();
  // After the handshake: the peer's certificate (PEM), empty if none.
  std::string PeerCertificatePem() const;

  struct Impl;

 private:
  explicit OuterTls(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealdrop
