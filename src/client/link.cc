#include "client/link.h"

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <array>
#include <deque>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include "base/unique_fd.h"
#include "net/tls_stream.h"
#include "protocol/frames.h"

namespace sealdrop {
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using local = net::local::stream_protocol;
using namespace std::chrono_literals;
using WsStream = websocket::stream<TlsStream>;

Result<ServerAddress> ServerAddress::Parse(const std::string& url) {
  std::string rest = url;
  for (const char* scheme : {"https://", "wss://"})
    if (rest.rfind(scheme, 0) == 0) rest = rest.substr(std::strlen(scheme));
  if (rest.find("://") != std::string::npos)
    return Fail(ErrorCode::kInvalidArgument, "the server URL must start with https:// (got \"" + url + "\")");
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos)
    return Fail(ErrorCode::kInvalidArgument, "the server URL must look like https://HOST:PORT (got \"" + url + "\")");
  ServerAddress a;
  if (rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return Fail(ErrorCode::kInvalidArgument, "the server URL has a broken IPv6 address");
    a.host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    a.port = rest.empty() ? "443" : rest.substr(1);
  } else {
    auto colon = rest.rfind(':');
    a.host = colon == std::string::npos ? rest : rest.substr(0, colon);
    a.port = colon == std::string::npos ? "443" : rest.substr(colon + 1);
  }
  if (a.host.empty() || a.port.empty() || a.port.find_first_not_of("0123456789") != std::string::npos)
    return Fail(ErrorCode::kInvalidArgument, "the server URL must look like https://HOST:PORT (got \"" + url + "\")");
  return a;
}

namespace {

// OpenSSL names why a certificate failed ("certificate verify failed:
// certificate has expired"); each reason a user can act on gets its own
// sentence.
Error NetError(const std::exception& e, std::string_view what) {
  std::string detail = e.what();
  if (detail.find("certificate verify failed") != std::string::npos) {
    if (detail.find("certificate has expired") != std::string::npos)
      return Error{ErrorCode::kUntrustedPeer,
                   "the server's certificate has expired; ask the server's operator to renew it"};
    if (detail.find("certificate is not yet valid") != std::string::npos)
      return Error{ErrorCode::kUntrustedPeer,
                   "the server's certificate is not valid yet; check this computer's clock, or ask the server's "
                   "operator"};
    if (detail.find("hostname mismatch") != std::string::npos || detail.find("Hostname mismatch") != std::string::npos ||
        detail.find("IP address mismatch") != std::string::npos)
      return Error{ErrorCode::kUntrustedPeer,
                   "the server's certificate is not for this host name; check the server URL"};
    return Error{ErrorCode::kUntrustedPeer,
                 "the server's certificate is not trusted; give the vendor root with --ca or SEALDROP_CA"};
  }
  return Error{ErrorCode::kUnavailable, std::string(what) + ": " + detail};
}

// Runs a coroutine to completion on ioc and returns its result.
template <typename T>
Result<T> RunSync(net::io_context& ioc, net::awaitable<Result<T>> work, std::string_view what) {
  std::optional<Result<T>> out;
  ioc.restart();
  net::co_spawn(ioc, std::move(work), [&](std::exception_ptr e, Result<T> r) {
    if (!e) {
      out = std::move(r);
      return;
    }
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out = std::unexpected(NetError(ex, what));
    }
  });
  ioc.run();
  if (!out) return Fail(ErrorCode::kInternal, "the network loop ended without a result");
  return std::move(*out);
}

Status ConfigureTls(ssl::context& tls, const LinkOptions& options) {
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_3_VERSION);
  tls.set_verify_mode(ssl::verify_peer);
  boost::system::error_code ec;
  if (!options.ca_file.empty()) {
    std::error_code fs_ec;
    if (!std::filesystem::is_regular_file(options.ca_file, fs_ec))
      return Fail(ErrorCode::kNotFound, "the vendor root " + options.ca_file +
                                            " (--ca or SEALDROP_CA) does not exist; give the vendor's CA certificate");
    tls.load_verify_file(options.ca_file, ec);
    if (ec)
      return Fail(ErrorCode::kInvalidArgument,
                  "cannot read the vendor root " + options.ca_file + "; give the vendor's CA certificate in PEM");
  } else {
    tls.set_default_verify_paths(ec);
  }
  return Ok();
}

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

template <typename Stream>
net::awaitable<void> ConnectTls(Stream& stream, const ServerAddress& addr) {
  auto ex = co_await net::this_coro::executor;
  tcp::resolver resolver(ex);
  auto results = co_await resolver.async_resolve(addr.host, addr.port, net::use_awaitable);
  beast::get_lowest_layer(stream).expires_after(15s);
  co_await beast::get_lowest_layer(stream).async_connect(results, net::use_awaitable);
  // OpenSSL's own name check (as OuterTls::Client does), so a mismatch is
  // reported as one in the verify result rather than as a bare failure.
  X509_VERIFY_PARAM* param = SSL_get0_param(stream.native_handle());
  if (IsIpLiteral(addr.host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, addr.host.c_str()) != 1)
      throw std::runtime_error("cannot check the server's address " + addr.host);
  } else if (SSL_set_tlsext_host_name(stream.native_handle(), addr.host.c_str()) != 1 ||
             SSL_set1_host(stream.native_handle(), addr.host.c_str()) != 1) {
    throw std::runtime_error("cannot check the server's name " + addr.host);
  }
  try {
    co_await stream.async_handshake(ssl::stream_base::client, net::use_awaitable);
  } catch (const boost::system::system_error&) {
    // Asio's message drops OpenSSL's reason; NetError needs it.
    long verify = SSL_get_verify_result(stream.native_handle());
    if (verify != X509_V_OK)
      throw std::runtime_error(std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify));
    throw;
  }
  beast::get_lowest_layer(stream).expires_never();
}

}  // namespace

struct ServerLink::Impl {
  net::io_context ioc;
  ssl::context tls{ssl::context::tls_client};
  std::unique_ptr<WsStream> ws;
  ServerAddress addr;
};

ServerLink::ServerLink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServerLink::~ServerLink() { Close(); }

Result<std::unique_ptr<ServerLink>> ServerLink::Connect(const LinkOptions& options) {
  auto impl = std::make_unique<Impl>();
  SEALDROP_ASSIGN(impl->addr, ServerAddress::Parse(options.server_url));
  SEALDROP_TRY(ConfigureTls(impl->tls, options));
  Impl* im = impl.get();
  auto work = [](Impl* im) -> net::awaitable<Status> {
    auto ex = co_await net::this_coro::executor;
    tcp::resolver resolver(ex);
    auto results = co_await resolver.async_resolve(im->addr.host, im->addr.port, net::use_awaitable);
    beast::tcp_stream tcp(ex);
    tcp.expires_after(15s);
    co_await tcp.async_connect(results, net::use_awaitable);
    auto engine = OuterTls::Client(im->tls, im->addr.host);
    if (!engine) co_return std::unexpected(engine.error());
    im->ws = std::make_unique<WsStream>(TlsStream(std::move(tcp), std::move(*engine)));
    co_await im->ws->next_layer().Handshake();
    beast::get_lowest_layer(*im->ws).expires_never();
    im->ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    im->ws->read_message_max(kMaxServerControlSize);
    im->ws->auto_fragment(false);
    co_await im->ws->async_handshake(im->addr.host + ":" + im->addr.port, "/v1/session", net::use_awaitable);
    co_return Ok();
  };
  SEALDROP_TRY(RunSync<void>(im->ioc, work(im), "cannot connect to " + options.server_url));
  return std::unique_ptr<ServerLink>(new ServerLink(std::move(impl)));
}

std::string ServerLink::ServerCertificatePem() const {
  return impl_ && impl_->ws ? impl_->ws->next_layer().engine().PeerCertificatePem() : std::string();
}

void ServerLink::Close() {
  if (!impl_ || !impl_->ws) return;
  boost::system::error_code ec;
  beast::get_lowest_layer(*impl_->ws).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(*impl_->ws).socket().close(ec);
  impl_->ws.reset();
}

Result<ControlMessage> ServerLink::Request(const ControlMessage& message) {
  if (!impl_->ws) return Fail(ErrorCode::kWrongState, "not connected");
  auto work = [](Impl* im, std::string text) -> net::awaitable<Result<ControlMessage>> {
    im->ws->text(true);
    co_await im->ws->async_write(net::buffer(text), net::use_awaitable);
    beast::flat_buffer buffer;
    for (;;) {
      buffer.clear();
      co_await im->ws->async_read(buffer, net::use_awaitable);
      if (!im->ws->got_text()) co_return Fail(ErrorCode::kWrongState, "the server sent inner records outside an order");
      auto data = buffer.data();
      co_return ParseControl(std::string_view(static_cast<const char*>(data.data()), data.size()),
                             kMaxServerControlSize);
    }
  };
  return RunSync<ControlMessage>(impl_->ioc, work(impl_.get(), EncodeControl(message)), "the server connection failed");
}

namespace {

// The relay for one order. Everything runs on one thread; the queues are
// touched only between co_awaits.
struct Relay {
  Relay(net::io_context& ioc, WsStream& ws, HostSession& host, const OrderSink& sink)
      : ws(ws), trp(ioc), host(host), sink(sink), wake_server(ioc), wake_trp(ioc), wake_reader(ioc),
        decoder(TrpMaxBody) {}

  WsStream& ws;
  local::socket trp;
  HostSession& host;
  const OrderSink& sink;
  net::steady_timer wake_server, wake_trp, wake_reader;
  std::deque<std::pair<bool, Bytes>> to_server;  // (is_text, payload)
  // Frames for the processor as (header, body), written with one gathered
  // write so a relayed body is never copied into a frame buffer.
  std::deque<std::pair<std::array<uint8_t, kFrameHeaderSize>, Bytes>> to_trp;
  size_t to_trp_bytes = 0;
  bool finished = false;
  std::optional<Error> error;
  FrameDecoder decoder;
  std::deque<UniqueFd> fds;  // descriptors from the processor, in arrival order
  int live = 0;

  // SEALDROP_RELAY_TRACE=FILE appends every relayed inner record to FILE,
  // for inspecting what the host sees.
  FILE* trace = nullptr;

  void Trace(ByteView bytes) {
    if (trace != nullptr) std::fwrite(bytes.data(), 1, bytes.size(), trace);
  }

  void Finish(std::optional<Error> e) {
    if (e && !error) error = std::move(e);
    finished = true;
    Wake();
  }
  void Wake() {
    wake_server.cancel();
    wake_trp.cancel();
    wake_reader.cancel();
  }
  void MaybeClose() {
    if (!finished || !to_server.empty() || !to_trp.empty()) return;
    boost::system::error_code ec;
    trp.close(ec);
    beast::get_lowest_layer(ws).socket().cancel(ec);
  }

  void QueueToTrp(uint8_t type, Bytes body) {
    to_trp_bytes += kFrameHeaderSize + body.size();
    to_trp.emplace_back(EncodeFrameHeader(type, body.size()), std::move(body));
  }

  void Dispatch() {
    while (auto a = host.NextAction()) {
      switch (a->kind) {
        case HostAction::Kind::kControlToServer:
          to_server.emplace_back(true, ToBytes(a->text));
          break;
        case HostAction::Kind::kInnerToServer:
          Trace(a->bytes);
          to_server.emplace_back(false, std::move(a->bytes));
          break;
        case HostAction::Kind::kFrameToTrp:
          if (a->frame_type == static_cast<uint8_t>(TrpType::kInnerIn)) Trace(a->bytes);
          QueueToTrp(a->frame_type, std::move(a->bytes));
          break;
        case HostAction::Kind::kDone:
          Finish(std::nullopt);
          break;
        default: {
          UniqueFd handed;  // open for the sink's call only (see OrderSink)
          if (a->kind == HostAction::Kind::kPackageDone) {
            if (fds.empty()) {
              Finish(Error{ErrorCode::kMalformed, "the processor released the package without handing it over"});
              break;
            }
            handed = std::move(fds.front());
            fds.pop_front();
            a->fd = handed.get();
          }
          if (auto st = sink(*a); !st) {
            host.Abort(st.error());
            Finish(st.error());
            // Let the processor drop what it holds.
            QueueToTrp(static_cast<uint8_t>(TrpType::kAbort), {});
          }
        }
      }
    }
    if (host.state() == HostSession::State::kFailed) Finish(host.error());
    Wake();
  }

  template <typename Pred>
  net::awaitable<void> WaitUntil(net::steady_timer& timer, Pred ready) {
    while (!ready()) {
      timer.expires_at(net::steady_timer::time_point::max());
      boost::system::error_code ec;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
  }

  net::awaitable<void> ServerReader() {
    // A flat_buffer, not a vector: Beast's prepare() on a vector zero-fills
    // more than each read fills, which cost more than the one copy below.
    beast::flat_buffer buffer;
    try {
      while (!finished) {
        buffer.clear();
        co_await ws.async_read(buffer, net::use_awaitable);
        auto data = buffer.data();
        const auto* p = static_cast<const uint8_t*>(data.data());
        Bytes message(p, p + data.size());
        if (ws.got_text()) {
          auto m = ParseControl(AsString(message), kMaxServerControlSize);
          if (!m) {
            Finish(m.error());
            break;
          }
          host.OnServerControl(*m);
        } else {
          host.OnServerInner(std::move(message));
        }
        Dispatch();
        co_await WaitUntil(wake_reader, [&] { return finished || to_trp_bytes < kRelayWindow; });
      }
    } catch (const std::exception& e) {
      if (!finished) Finish(Error{ErrorCode::kUnavailable, "the server closed the connection during the order"});
    }
    Done();
  }

  // Reads with recvmsg so the package descriptor of step 1011 arrives too.
  size_t ReceiveFromTrp(Bytes& buf) {
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(trp.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (n <= 0) throw std::runtime_error("the processor closed the connection");
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.emplace_back(fd);
      }
    }
    return static_cast<size_t>(n);
  }

  net::awaitable<void> TrpReader() {
    Bytes buf(256 * 1024);
    try {
      while (!finished) {
        co_await trp.async_wait(local::socket::wait_read, net::use_awaitable);
        size_t n = ReceiveFromTrp(buf);
        if (n == 0) continue;
        if (auto st = decoder.Push(ByteView(buf.data(), n)); !st) {
          Finish(st.error());
          break;
        }
        while (true) {
          auto f = decoder.Pop();
          if (!f) {
            Finish(f.error());
            break;
          }
          if (!*f) break;
          host.OnTrpFrame(**f);
        }
        Dispatch();
      }
    } catch (const std::exception&) {
      if (!finished) Finish(Error{ErrorCode::kUnavailable, "the processor closed the connection during the order"});
    }
    Done();
  }

  net::awaitable<void> ServerWriter() {
    try {
      for (;;) {
        co_await WaitUntil(wake_server, [&] { return finished || !to_server.empty(); });
        if (to_server.empty()) break;
        auto [text, bytes] = std::move(to_server.front());
        to_server.pop_front();
        ws.text(text);
        co_await ws.async_write(net::buffer(bytes), net::use_awaitable);
      }
    } catch (const std::exception&) {
      if (!finished) Finish(Error{ErrorCode::kUnavailable, "the server connection failed during the order"});
      to_server.clear();
    }
    Done();
  }

  net::awaitable<void> TrpWriter() {
    try {
      for (;;) {
        co_await WaitUntil(wake_trp, [&] { return finished || !to_trp.empty(); });
        if (to_trp.empty()) break;
        auto [header, body] = std::move(to_trp.front());
        to_trp.pop_front();
        std::array<net::const_buffer, 2> parts = {net::buffer(header), net::buffer(body)};
        co_await net::async_write(trp, parts, net::use_awaitable);
        to_trp_bytes -= kFrameHeaderSize + body.size();
        wake_reader.cancel();
      }
    } catch (const std::exception&) {
      if (!finished) Finish(Error{ErrorCode::kUnavailable, "the processor connection failed during the order"});
      to_trp.clear();
    }
    Done();
  }

  void Done() {
    --live;
    Wake();
    MaybeClose();
  }
};

}  // namespace

Status ServerLink::RunOrder(HostSession& host, const std::string& trp_socket, const OrderSink& sink) {
  if (!impl_->ws) return Fail(ErrorCode::kWrongState, "not connected");
  Relay relay(impl_->ioc, *impl_->ws, host, sink);
  boost::system::error_code ec;
  relay.trp.connect(local::endpoint(trp_socket), ec);
  if (!ec) {
    // Room for a few relayed messages in the socket, so the relay and the
    // processor do not wake each other for every one.
    relay.trp.set_option(net::socket_base::send_buffer_size(4 << 20), ec);
    relay.trp.set_option(net::socket_base::receive_buffer_size(4 << 20), ec);
    ec.clear();
  }
  if (ec)
    return Fail(ErrorCode::kUnavailable, "cannot reach the processor at " + trp_socket + " (" + ec.message() +
                                             "); is 'sealdrop-trp serve' running?");
  if (const char* trace = std::getenv("SEALDROP_RELAY_TRACE"); trace != nullptr && *trace != '\0')
    relay.trace = std::fopen(trace, "ab");
  impl_->ioc.restart();
  relay.Dispatch();  // the purchase or redownload request
  relay.live = 4;
  auto spawn = [&](net::awaitable<void> a) {
    net::co_spawn(impl_->ioc, std::move(a), [](std::exception_ptr) {});
  };
  spawn(relay.ServerWriter());
  spawn(relay.TrpWriter());
  spawn(relay.ServerReader());
  spawn(relay.TrpReader());
  impl_->ioc.run();
  if (relay.trace != nullptr) std::fclose(relay.trace);
  // The WebSocket's read was cancelled mid-way; it cannot be reused.
  Close();
  if (relay.error) return std::unexpected(*relay.error);
  if (host.state() != HostSession::State::kDone)
    return Fail(ErrorCode::kUnavailable, "the order ended before the package was stored");
  return Ok();
}

Result<std::string> HttpsGet(const LinkOptions& options, const std::string& target) {
  net::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  SEALDROP_TRY(ConfigureTls(tls, options));
  SEALDROP_ASSIGN(ServerAddress addr, ServerAddress::Parse(options.server_url));
  auto work = [](net::io_context& ioc, ssl::context& tls, ServerAddress addr,
                 std::string target) -> net::awaitable<Result<std::string>> {
    beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
    co_await ConnectTls(stream, addr);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, addr.host);
    req.set(http::field::user_agent, "sealdrop");
    beast::get_lowest_layer(stream).expires_after(30s);
    co_await http::async_write(stream, req, net::use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    co_await http::async_read(stream, buffer, parser, net::use_awaitable);
    auto res = parser.release();
    if (res.result() != http::status::ok)
      co_return Fail(ErrorCode::kUnavailable, "the server answered " + std::to_string(res.result_int()) + " for " + target);
    co_return res.body();
  };
  return RunSync<std::string>(ioc, work(ioc, tls, addr, target), "cannot reach " + options.server_url);
}

}  // namespace sealdrop
