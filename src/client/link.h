// The client's network side: the first path to the server (TLS 1.3 +
// WebSocket) and the relay between the server and the processor's socket.
//
// ServerLink verifies the server's certificate against the vendor root given
// with --ca (or SEALDROP_CA), including the host name, before it sends a byte
// of login data. RunOrder drives a HostSession until the order is done or
// failed: one coroutine reads the server and queues for the processor, one
// reads the processor and writes to the server, so neither direction waits
// for the other; at most kRelayWindow bytes wait for the processor before the
// server is read again (backpressure, bounded memory).
//
// Thread safety: one ServerLink per thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/error.h"
#include "protocol/host_session.h"
#include "protocol/messages.h"

namespace sealdrop {

inline constexpr size_t kRelayWindow = 8 << 20;

struct ServerAddress {
  std::string host;
  std::string port;
  static Result<ServerAddress> Parse(const std::string& url);
};

struct LinkOptions {
  std::string server_url;
  std::string ca_file;
};

// Called for each host action the adapter does not handle itself (receipt,
// package begin/data/done, progress). A failed Status aborts the order.
// The descriptor of a kPackageDone action belongs to the adapter: it is open
// for the duration of the call and closed after it returns (dup it to keep it).
using OrderSink = std::function<Status(const HostAction&)>;

class ServerLink {
 public:
  static Result<std::unique_ptr<ServerLink>> Connect(const LinkOptions& options);
  ~ServerLink();

  // Sends one control message and returns the server's next control reply.
  Result<ControlMessage> Request(const ControlMessage& message);
  // Runs an order (the host session must have been started) with the
  // processor at trp_socket.
  Status RunOrder(HostSession& host, const std::string& trp_socket, const OrderSink& sink);
  void Close();
  // The server's certificate (PEM), verified against the vendor root and
  // the host name during Connect.
  std::string ServerCertificatePem() const;

  struct Impl;

 private:
  explicit ServerLink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// GET over HTTPS with the same certificate checks; returns the body.
Result<std::string> HttpsGet(const LinkOptions& options, const std::string& target);

}  // namespace sealdrop
