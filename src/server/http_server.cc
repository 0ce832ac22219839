#include "server/http_server.h"

#include "base/crash_point.h"

#include <mutex>
#include <unordered_map>

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

#include <iostream>
#include <thread>

#include "base/files.h"
#include "net/tls_stream.h"
#include "protocol/server_session.h"

namespace sealdrop {
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

using Stream = TlsStream;

constexpr size_t kMaxQueuedReplyBytes = 1 << 20;
constexpr auto kWriteTimeout = std::chrono::seconds(60);

struct Shared {
  LoadedServer& server;
  ServerContext context;
  ServerMetrics metrics;
  std::atomic<int> connections{0};
  int max_connections;
  std::chrono::seconds idle_timeout;
  int max_per_address;
  std::mutex per_address_mu;
  std::unordered_map<std::string, int> per_address;

  // Takes a slot for this address, or returns false if it has its share.
  bool Admit(const std::string& address) {
    std::lock_guard lock(per_address_mu);
    int& n = per_address[address];
    if (n >= max_per_address) return false;
    ++n;
    return true;
  }
  void Release(const std::string& address) {
    std::lock_guard lock(per_address_mu);
    auto it = per_address.find(address);
    if (it != per_address.end() && --it->second <= 0) per_address.erase(it);
  }
  LoginLimiter login_limiter{};
};

void Log(std::string_view what) { std::cerr << "sealdropd: " << what << "\n"; }

http::response<http::string_body> HttpReply(Shared& s, const http::request<http::string_body>& req) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "sealdropd");
  ++s.metrics.http_requests_total;
  auto reply = [&](http::status status, std::string type, std::string body) {
    res.result(status);
    res.set(http::field::content_type, type);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  };
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    return reply(http::status::method_not_allowed, "text/plain", "only GET is supported\n");
  std::string_view target(req.target().data(), req.target().size());
  if (target == "/healthz") return reply(http::status::ok, "text/plain", "ok\n");
  if (target == "/metrics")
    return reply(http::status::ok, "text/plain; version=0.0.4", s.metrics.Render());
  if (target == "/v1/catalog") {
    auto catalog = s.server.ledger->Catalog();
    if (!catalog) return reply(http::status::service_unavailable, "text/plain", "the catalog is unavailable\n");
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& p : *catalog)
      arr.push_back({{"name", p.name}, {"version", p.version}, {"price", p.price},
                     {"size", p.size}, {"kind", p.kind}});
    return reply(http::status::ok, "application/json", nlohmann::json{{"programs", arr}}.dump() + "\n");
  }
  return reply(http::status::not_found, "text/plain", "not found\n");
}

net::awaitable<void> RunWebSocket(websocket::stream<Stream>& ws, Shared& s) {
  ++s.metrics.sessions_total;
  ++s.metrics.sessions_active;
  ServerContext ctx = s.context;
  ctx.login_limiter = &s.login_limiter;
  {
    boost::system::error_code ec;
    auto remote = beast::get_lowest_layer(ws).socket().remote_endpoint(ec);
    if (!ec) ctx.peer_address = remote.address().to_string();
  }
  std::string peer_user;
  ctx.observe = [&s](std::string_view event, std::string_view detail) {
    // server.order, server.sealed, server.charged, server.redelivered: after
    // the step, before its reply leaves (the charge is committed by then).
    CrashPoint(std::string("server.") + std::string(event));
    if (event == "login") ++s.metrics.logins_total;
    else if (event == "login_failed") ++s.metrics.logins_failed_total;
    else if (event == "login_limited") ++s.metrics.logins_limited_total;
    else if (event == "order") ++s.metrics.orders_total;
    else if (event == "charged") ++s.metrics.charges_total;
    else if (event == "redelivered") ++s.metrics.redeliveries_total;
    else if (event == "session_failed") {
      ++s.metrics.sessions_failed_total;
      Log("session ended: " + std::string(detail));
    }
  };
  ServerSession session(ctx);
  // One reader and one writer (Beast allows one of each at a time) on this
  // connection's strand: package data streams out while the host's messages
  // are still read, so the idle timer keeps being fed and an error from the
  // processor mid-stream is heard at once.
  auto ex = co_await net::this_coro::executor;
  net::steady_timer wake_writer(ex), wake_reader(ex), all_done(ex), write_deadline(ex);
  int running = 2;
  bool stopping = false;
  auto finished_one = [&] {
    if (--running == 0) all_done.cancel();
  };
  auto reader = [&]() -> net::awaitable<void> {
    beast::flat_buffer buffer;
    try {
      while (!stopping && !session.done()) {
        // Backpressure: a host that sends requests but never reads their
        // replies stops being read once a few replies wait for it.
        while (!stopping && session.queued_bytes() > kMaxQueuedReplyBytes) {
          boost::system::error_code ec;
          wake_reader.expires_at(net::steady_timer::time_point::max());
          co_await wake_reader.async_wait(net::redirect_error(net::use_awaitable, ec));
        }
        if (stopping) break;
        buffer.clear();
        co_await ws.async_read(buffer, net::use_awaitable);
        auto data = buffer.data();
        ByteView bytes(static_cast<const uint8_t*>(data.data()), data.size());
        if (ws.got_text())
          session.OnControl(AsString(bytes));
        else
          session.OnInner(bytes);
        wake_writer.cancel();
      }
    } catch (const std::exception&) {
      // The peer went away or timed out; nothing is charged without a
      // completed charge step, so the session state is simply dropped.
    }
    stopping = true;
    wake_writer.cancel();
    wake_reader.cancel();
    finished_one();
  };
  auto writer = [&]() -> net::awaitable<void> {
    boost::system::error_code ec;
    try {
      for (;;) {
        while (auto out = session.NextOutbound()) {
          ws.text(out->kind == Outbound::Kind::kControl);
          s.metrics.bytes_sent_total += out->data.size();
          // A write that makes no progress for kWriteTimeout ends the
          // connection (the idle timer only watches reads).
          write_deadline.expires_after(kWriteTimeout);
          write_deadline.async_wait([&ws](boost::system::error_code e) {
            if (!e) {
              boost::system::error_code ignored;
              beast::get_lowest_layer(ws).socket().close(ignored);
            }
          });
          co_await ws.async_write(net::buffer(out->data), net::use_awaitable);
          write_deadline.cancel();
          wake_reader.cancel();
        }
        if (session.done()) {
          co_await ws.async_close(websocket::close_code::normal, net::use_awaitable);
          break;
        }
        if (stopping) break;
        wake_writer.expires_at(net::steady_timer::time_point::max());
        co_await wake_writer.async_wait(net::redirect_error(net::use_awaitable, ec));
      }
    } catch (const std::exception&) {
    }
    stopping = true;
    write_deadline.cancel();
    wake_reader.cancel();
    beast::get_lowest_layer(ws).socket().cancel(ec);  // ends a pending read
    finished_one();
  };
  net::co_spawn(ex, reader(), net::detached);
  net::co_spawn(ex, writer(), net::detached);
  while (running > 0) {
    boost::system::error_code ec;
    all_done.expires_at(net::steady_timer::time_point::max());
    co_await all_done.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
  --s.metrics.sessions_active;
}

net::awaitable<void> HandleConnection(tcp::socket socket, ssl::context& tls, Shared& s, std::string address) {
  struct Count {
    Shared& s;
    const std::string& address;
    ~Count() {
      --s.connections;
      s.Release(address);
    }
  } count{s, address};
  // The TLS handshake and each HTTP request must arrive within this, so a
  // client sending a byte at a time cannot hold its slot.
  const auto request_timeout = std::min<std::chrono::steady_clock::duration>(30s, s.idle_timeout);
  auto engine = OuterTls::Server(tls);
  if (!engine) co_return;
  Stream stream(beast::tcp_stream(std::move(socket)), std::move(*engine));
  try {
    beast::get_lowest_layer(stream).expires_after(request_timeout);
    co_await stream.Handshake();
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(64 * 1024);
      beast::get_lowest_layer(stream).expires_after(request_timeout);
      co_await http::async_read(stream, buffer, parser, net::use_awaitable);
      http::request<http::string_body> req = parser.release();
      if (websocket::is_upgrade(req)) {
        if (req.target() != "/v1/session") {
          http::response<http::string_body> res{http::status::not_found, req.version()};
          res.body() = "not found\n";
          res.prepare_payload();
          co_await http::async_write(stream, res, net::use_awaitable);
          co_return;
        }
        beast::get_lowest_layer(stream).expires_never();
        websocket::stream<Stream> ws(std::move(stream));
        websocket::stream_base::timeout limits = websocket::stream_base::timeout::suggested(beast::role_type::server);
        // Beast's server default has no idle limit: a session that sends
        // nothing would hold its slot forever.
        limits.idle_timeout = s.idle_timeout;
        limits.keep_alive_pings = false;
        ws.set_option(limits);
        ws.read_message_max(kMaxInnerRelaySize);
        // One frame per message: Beast would otherwise cut every message into
        // 4 KiB frames, and each frame into its own TLS write.
        ws.auto_fragment(false);
        ws.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, "sealdropd"); }));
        co_await ws.async_accept(req, net::use_awaitable);
        co_await RunWebSocket(ws, s);
        co_return;
      }
      auto res = HttpReply(s, req);
      co_await http::async_write(stream, res, net::use_awaitable);
      if (!res.keep_alive()) break;
    }
    beast::get_lowest_layer(stream).expires_after(5s);
    co_await stream.Shutdown();
  } catch (const std::exception&) {
    // Timeouts, resets and malformed requests end the connection quietly.
  }
}

net::awaitable<void> Listen(tcp::acceptor& acceptor, ssl::context& tls, Shared& s) {
  for (;;) {
    tcp::socket socket(acceptor.get_executor());
    bool backoff = false;
    try {
      socket = co_await acceptor.async_accept(net::make_strand(acceptor.get_executor()), net::use_awaitable);
    } catch (const boost::system::system_error& e) {
      if (e.code() == net::error::operation_aborted) co_return;
      backoff = true;  // EMFILE and friends: keep serving the connections we have
    }
    if (backoff) {
      net::steady_timer pause(acceptor.get_executor(), 100ms);
      boost::system::error_code ec;
      co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    ++s.metrics.connections_total;
    // Over the limit: closed before any TLS work is spent on it.
    boost::system::error_code peer_ec;
    std::string address = socket.remote_endpoint(peer_ec).address().to_string();
    if (s.connections.load() >= s.max_connections || peer_ec || !s.Admit(address)) {
      ++s.metrics.connections_refused_total;
      boost::system::error_code ec;
      socket.close(ec);
      continue;
    }
    ++s.connections;
    auto executor = socket.get_executor();
    net::co_spawn(executor, HandleConnection(std::move(socket), tls, s, std::move(address)), net::detached);
  }
}

}  // namespace

Status ServeHttps(LoadedServer& server, const ServeOptions& options, const std::atomic<bool>& stop) {
  ssl::context tls(ssl::context::tls_server);
  SSL_CTX* native = tls.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(native, 0);
  boost::system::error_code ec;
  tls.use_certificate_chain(net::buffer(server.cert_chain_pem), ec);
  if (ec) return Fail(ErrorCode::kInvalidArgument, "cannot use the server certificate: " + ec.message());
  tls.use_private_key_file((server.data / "server.key").string(), ssl::context::pem, ec);
  if (ec) return Fail(ErrorCode::kInvalidArgument, "cannot use the server key: " + ec.message());

  Shared shared{server, {}, {}, {}, options.max_connections, options.idle_timeout,
                options.max_connections_per_address, {}, {}};
  shared.context.ledger = server.ledger.get();
  shared.context.identity = server.identity;
  shared.context.manufacturers = &server.manufacturers;
  shared.context.server_name = server.config.name;
  shared.context.device_limit = server.config.device_limit;

  net::io_context ioc(options.threads);
  tcp::acceptor acceptor(ioc);
  auto address = net::ip::make_address(options.host, ec);
  if (ec) return Fail(ErrorCode::kInvalidArgument, "\"" + options.host + "\" is not an IP address to listen on");
  tcp::endpoint endpoint(address, options.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Fail(ErrorCode::kIo, "cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " + ec.message());
  uint16_t port = acceptor.local_endpoint().port();
  if (!options.port_file.empty()) SEALDROP_TRY(WriteFileAtomic(options.port_file, std::to_string(port) + "\n"));
  Log("serving " + server.config.name + " on https://" + options.host + ":" + std::to_string(port));

  net::co_spawn(ioc, Listen(acceptor, tls, shared), net::detached);
  // Watch the stop flag; on stop, close the acceptor and give sessions a
  // grace period before the io_context is stopped.
  net::steady_timer watch(ioc);
  std::chrono::steady_clock::time_point shutdown_deadline{};
  std::function<void()> arm = [&] {
    watch.expires_after(200ms);
    watch.async_wait([&](boost::system::error_code) {
      if (stop.load()) {
        if (acceptor.is_open()) {
          acceptor.close();
          shutdown_deadline = std::chrono::steady_clock::now() + 5s;
        }
        // Sessions in flight get a grace period to finish their order.
        if (shared.connections.load() == 0 || std::chrono::steady_clock::now() > shutdown_deadline) {
          ioc.stop();
          return;
        }
      }
      arm();
    });
  };
  arm();
  std::vector<std::thread> threads;
  for (int i = 1; i < options.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  Log("stopped");
  return Ok();
}

}  // namespace sealdrop
