#include "server/http_server.h"

#include "base/crash_point.h"

#include <mutex>

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
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

#include <limits>
#include <thread>

#include "base/daemon.h"
#include "base/files.h"
#include "base/log.h"
#include "base/time_format.h"
#include "crypto/random.h"
#include "net/tls_stream.h"
#include "server/session.h"

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
// Package bytes all sessions together may hold in outbound messages; with
// more sessions each streams in smaller messages (down to one sealed chunk).
constexpr size_t kStreamMemory = 64 << 20;
constexpr auto kWriteTimeout = std::chrono::seconds(60);
// Expiry warnings: a week ahead for the server certificate (time to have the
// vendor CA issue one), a day ahead for a CRL (re-signed daily or weekly by
// `sealdrop-ca crl`). Checked at start, after each reload and every hour.
constexpr auto kCertificateWarning = std::chrono::hours(24 * 7);
constexpr auto kCrlWarning = std::chrono::hours(24);
constexpr auto kExpiryCheckInterval = std::chrono::hours(1);

// What a reload replaces, as one immutable set.
struct Material {
  ServerConfig config;
  TlsIdentity identity;
  TrustStore manufacturers;
  std::shared_ptr<ssl::context> tls;
  std::chrono::system_clock::time_point certificate_not_after;
};

Result<std::shared_ptr<const Material>> MakeMaterial(LoadedServer& loaded) {
  auto m = std::make_shared<Material>();
  m->tls = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = m->tls->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(native, 0);
  boost::system::error_code ec;
  m->tls->use_certificate_chain(net::buffer(loaded.cert_chain_pem), ec);
  if (ec) return Fail(ErrorCode::kInvalidArgument, "cannot use the server certificate: " + ec.message());
  // OpenSSL checks here that the key matches the certificate loaded above.
  m->tls->use_private_key_file((loaded.data / "server.key").string(), ssl::context::pem, ec);
  if (ec) return Fail(ErrorCode::kInvalidArgument, "cannot use the server key: " + ec.message());
  if (loaded.identity.chain.empty())
    return Fail(ErrorCode::kInvalidArgument, "the server certificate file holds no certificate");
  m->certificate_not_after = loaded.identity.chain.front().NotAfter();
  m->config = loaded.config;
  m->identity = std::move(loaded.identity);
  m->manufacturers = std::move(loaded.manufacturers);
  return std::shared_ptr<const Material>(std::move(m));
}

// Why the server cannot sell now, or "" if it can.
std::string CannotSell(const Material& m, bool ledger_readable, std::chrono::system_clock::time_point now) {
  if (now >= m.certificate_not_after)
    return "the server certificate expired on " + FormatRfc3339(m.certificate_not_after) +
           "; have the vendor CA issue a new one, install it with 'sealdropd install --cert' and send SIGHUP";
  for (const auto& crl : m.manufacturers.Crls())
    if (now >= crl.next_update)
      return "the CRL of \"" + crl.issuer + "\" expired on " + FormatRfc3339(crl.next_update) +
             "; load a fresh one with 'sealdropd install --crl' and send SIGHUP";
  if (!ledger_readable) return "the ledger cannot be read; check the data directory's disk and permissions";
  return {};
}

struct Shared {
  LoadedServer& server;
  // Where ledger calls run: blocking is allowed here, never on the io
  // threads, so a slow disk or database stalls only the sessions that wait
  // on it (server/session.h).
  net::thread_pool* ledger_pool = nullptr;
  ServerContext context;
  ServerMetrics metrics;
  std::atomic<int> connections{0};
  int max_connections;
  std::chrono::seconds idle_timeout;
  KeyedSlots per_address;  // connections per client address
  std::mutex material_mu;
  std::shared_ptr<const Material> material;
  std::atomic<uint64_t> reloads{0}, reload_failures{0};

  std::shared_ptr<const Material> Current() {
    std::lock_guard lock(material_mu);
    return material;
  }
  void Install(std::shared_ptr<const Material> m) {
    std::lock_guard lock(material_mu);
    material = std::move(m);
  }
  LoginLimiter login_limiter{};
  KeyedSlots user_sessions;  // sessions per logged-in user
};

// Runs f(ledger) on the ledger pool and resumes the caller on its own
// executor (its strand) with the result. The pool thread hands the result
// back by posting to that executor, so the coroutine reads it on its strand.
//
// `f` is taken by reference and callers pass named objects: g++ 12 destroys
// some temporaries of a co_await expression twice.
template <class F>
auto OnLedger(Shared& s, F& f) -> net::awaitable<decltype(f(std::declval<Ledger&>()))> {
  using R = decltype(f(std::declval<Ledger&>()));
  auto ex = co_await net::this_coro::executor;
  std::optional<R> result;
  bool finished = false;
  net::steady_timer done(ex, net::steady_timer::time_point::max());
  // The pool is joined before the io_context's coroutine frames are
  // destroyed (ServeHttps), so these references outlive the work.
  net::post(*s.ledger_pool, [&s, &f, &result, &finished, &done, ex] {
    result.emplace(f(*s.server.ledger));
    net::post(ex, [&finished, &done] {
      finished = true;
      done.cancel();
    });
  });
  while (!finished) {
    boost::system::error_code ec;
    co_await done.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
  co_return std::move(*result);
}

net::awaitable<bool> LedgerReadable(Shared& s) {
  auto readable = [](Ledger& ledger) { return ledger.Catalog().has_value(); };
  co_return co_await OnLedger(s, readable);
}

std::string Describe(const Material& m) {
  std::string out = "name \"" + m.config.name + "\", device limit " + std::to_string(m.config.device_limit) +
                    ", certificate valid until " + FormatRfc3339(m.certificate_not_after) + ", " +
                    std::to_string(m.manufacturers.root_count()) + " manufacturer root(s), CRLs:";
  auto crls = m.manufacturers.Crls();
  if (crls.empty()) out += " none";
  for (const auto& c : crls)
    out += " \"" + c.issuer + "\" until " +
           (c.next_update == std::chrono::system_clock::time_point::max() ? "(no nextUpdate)"
                                                                          : FormatRfc3339(c.next_update));
  return out;
}

// Logs what will stop sales soon (warning) or has stopped them (error).
void CheckExpiry(const Material& m) {
  auto now = std::chrono::system_clock::now();
  if (now >= m.certificate_not_after)
    Log(LogLevel::kError, "certificate_expired",
        {{"detail", "the server certificate expired on " + FormatRfc3339(m.certificate_not_after) +
                        "; no purchase can succeed until a new one is installed"}});
  else if (m.certificate_not_after - now < kCertificateWarning)
    Log(LogLevel::kWarning, "certificate_expiring",
        {{"detail", "the server certificate expires on " + FormatRfc3339(m.certificate_not_after) +
                        "; have the vendor CA issue a new one"}});
  for (const auto& crl : m.manufacturers.Crls()) {
    if (now >= crl.next_update)
      Log(LogLevel::kError, "crl_expired",
          {{"detail", "the CRL of \"" + crl.issuer + "\" expired on " + FormatRfc3339(crl.next_update) +
                          "; every purchase by its devices fails until a fresh CRL is loaded"}});
    else if (crl.next_update - now < kCrlWarning)
      Log(LogLevel::kWarning, "crl_expiring",
          {{"detail", "the CRL of \"" + crl.issuer + "\" expires on " + FormatRfc3339(crl.next_update) +
                          "; load a fresh one (sealdrop-ca crl, sealdropd install --crl, SIGHUP)"}});
  }
}

void Reload(Shared& s) {
  (void)NotifyReloading();
  auto loaded = LoadServerData(s.server.data, /*open_ledger=*/false);
  Result<std::shared_ptr<const Material>> made =
      loaded ? MakeMaterial(*loaded) : Result<std::shared_ptr<const Material>>(std::unexpected(loaded.error()));
  if (made && std::chrono::system_clock::now() >= (*made)->certificate_not_after)
    made = Fail(ErrorCode::kInvalidArgument, "the new server certificate expired on " +
                                                 FormatRfc3339((*made)->certificate_not_after));
  if (!made) {
    ++s.reload_failures;
    Log(LogLevel::kError, "reload_failed",
        {{"detail", made.error().message + "; keeping the previous certificate, key, trust anchors, CRLs and "
                                           "configuration"}});
  } else {
    s.Install(*made);
    ++s.reloads;
    Log(LogLevel::kInfo, "reloaded", {{"detail", Describe(**made)}});
    CheckExpiry(**made);
  }
  (void)NotifySupervisor("READY=1");
}

MetricsSnapshot Snapshot(Shared& s, bool ledger_readable) {
  auto m = s.Current();
  auto now = std::chrono::system_clock::now();
  MetricsSnapshot snap;
  snap.version = SEALDROP_VERSION;
  snap.certificate_expiry_seconds = std::chrono::duration<double>(m->certificate_not_after - now).count();
  for (const auto& c : m->manufacturers.Crls())
    snap.crls.push_back({c.issuer, c.next_update == std::chrono::system_clock::time_point::max()
                                       ? std::numeric_limits<double>::infinity()
                                       : std::chrono::duration<double>(c.next_update - now).count()});
  snap.healthy = CannotSell(*m, ledger_readable, now).empty();
  snap.reloads_total = static_cast<double>(s.reloads.load());
  snap.reload_failures_total = static_cast<double>(s.reload_failures.load());
  return snap;
}

http::response<http::string_body> Reply(const http::request<http::string_body>& req, http::status status,
                                        std::string type, std::string body) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "sealdropd");
  res.result(status);
  res.set(http::field::content_type, type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

net::awaitable<http::response<http::string_body>> HttpReply(Shared& s, const http::request<http::string_body>& req) {
  ++s.metrics.http_requests_total;
  auto reply = [&](http::status status, std::string type, std::string body) {
    return Reply(req, status, std::move(type), std::move(body));
  };
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    co_return reply(http::status::method_not_allowed, "text/plain", "only GET is supported\n");
  std::string_view target(req.target().data(), req.target().size());
  if (target == "/healthz") {
    // Customers and their load balancers learn only that the store cannot
    // sell; the reason is on the metrics listener and in the log.
    bool readable = co_await LedgerReadable(s);
    if (!CannotSell(*s.Current(), readable, std::chrono::system_clock::now()).empty())
      co_return reply(http::status::service_unavailable, "text/plain", "unavailable\n");
    co_return reply(http::status::ok, "text/plain", "ok\n");
  }
  if (target == "/v1/catalog") {
    auto read_catalog = [](Ledger& ledger) { return ledger.Catalog(); };
    auto catalog = co_await OnLedger(s, read_catalog);
    if (!catalog) co_return reply(http::status::service_unavailable, "text/plain", "the catalog is unavailable\n");
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& p : *catalog)
      arr.push_back({{"name", p.name}, {"version", p.version}, {"price", p.price},
                     {"size", p.size}, {"kind", p.kind}});
    co_return reply(http::status::ok, "application/json", nlohmann::json{{"programs", arr}}.dump() + "\n");
  }
  co_return reply(http::status::not_found, "text/plain", "not found\n");
}

net::awaitable<http::response<http::string_body>> MetricsReply(Shared& s,
                                                               const http::request<http::string_body>& req) {
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    co_return Reply(req, http::status::method_not_allowed, "text/plain", "only GET is supported\n");
  std::string_view target(req.target().data(), req.target().size());
  if (target == "/metrics") {
    bool readable = co_await LedgerReadable(s);
    co_return Reply(req, http::status::ok, "text/plain; version=0.0.4", s.metrics.Render(Snapshot(s, readable)));
  }
  if (target == "/healthz") {
    bool readable = co_await LedgerReadable(s);
    std::string why = CannotSell(*s.Current(), readable, std::chrono::system_clock::now());
    if (!why.empty())
      co_return Reply(req, http::status::service_unavailable, "text/plain", "unavailable: " + why + "\n");
    co_return Reply(req, http::status::ok, "text/plain", "ok\n");
  }
  co_return Reply(req, http::status::not_found, "text/plain", "not found\n");
}

net::awaitable<void> RunWebSocket(websocket::stream<Stream>& ws, Shared& s) {
  ++s.metrics.sessions_total;
  ++s.metrics.sessions_active;
  // This session's material: a reload in the meantime does not change it.
  const std::shared_ptr<const Material> material = s.Current();
  ServerContext ctx = s.context;
  ctx.identity = material->identity;
  ctx.manufacturers = &material->manufacturers;
  ctx.server_name = material->config.name;
  ctx.device_limit = material->config.device_limit;
  ctx.login_limiter = &s.login_limiter;
  ctx.user_sessions = &s.user_sessions;
  ctx.session_id = RandomHexId(8);
  {
    boost::system::error_code ec;
    auto remote = beast::get_lowest_layer(ws).socket().remote_endpoint(ec);
    if (!ec) ctx.peer_address = remote.address().to_string();
  }
  const ServerSession* self = nullptr;
  std::string order_id, device;
  std::chrono::steady_clock::time_point order_start{};
  ctx.observe = [&](std::string_view event, std::string_view detail) {
    // server.order, server.sealed, server.charged, server.redelivered: after
    // the step, before its reply leaves (the charge is committed by then).
    CrashPoint(std::string("server.") + std::string(event));
    std::string user = self ? self->user() : std::string();
    auto log = [&](LogLevel level, std::string_view name, std::initializer_list<LogField> extra) {
      // Every line of a session carries the same identifying fields first.
      std::vector<LogField> fields = {{"session", ctx.session_id}, {"peer", ctx.peer_address},
                                      {"user", user}, {"order", order_id}};
      fields.insert(fields.end(), extra.begin(), extra.end());
      LogFields(level, name, fields);
    };
    if (event == "login") {
      ++s.metrics.logins_total;
      log(LogLevel::kInfo, "login", {});
    } else if (event == "login_failed") {
      ++s.metrics.logins_failed_total;
      user = std::string(detail);
      log(LogLevel::kWarning, "login_refused", {{"detail", "wrong password or token"}});
    } else if (event == "login_limited") {
      ++s.metrics.logins_limited_total;
      user = std::string(detail);
      log(LogLevel::kWarning, "login_refused", {{"detail", "too many failed logins"}});
    } else if (event == "user_sessions_limited") {
      ++s.metrics.sessions_user_limited_total;
      user = std::string(detail);
      log(LogLevel::kWarning, "login_refused", {{"detail", "the user holds the most sessions allowed at once"}});
    } else if (event == "order") {
      ++s.metrics.orders_total;
      order_id = std::string(detail);
      order_start = std::chrono::steady_clock::now();
      log(LogLevel::kInfo, "order", {});
    } else if (event == "inner_handshake") {
      device = std::string(detail);
    } else if (event == "charged" || event == "redelivered") {
      bool sale = event == "charged";
      ++(sale ? s.metrics.charges_total : s.metrics.redeliveries_total);
      s.metrics.purchase_seconds.Observe(std::chrono::steady_clock::now() - order_start);
      log(LogLevel::kInfo, sale ? "sale" : "redelivery", {{"device", device}, {"receipt", detail}});
      order_id.clear();
    } else if (event == "session_failed") {
      ++s.metrics.sessions_failed_total;
      log(LogLevel::kWarning, "session_failed", {{"device", device}, {"detail", detail}});
    }
  };
  ServerSession session(ctx);
  self = &session;
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
        // The session waits on the ledger; nothing more is read meanwhile,
        // while the writer goes on sending what is queued.
        for (;;) {
          std::optional<LedgerCall> call = session.TakeLedgerCall();
          if (!call) break;
          auto run = [&call](Ledger& ledger) {
            (*call)(ledger);
            return true;
          };
          co_await OnLedger(s, run);
          session.OnLedgerDone();
          wake_writer.cancel();
        }
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
        // Package data in flight is bounded server-wide: each session's
        // share of kStreamMemory, between one sealed chunk and the largest
        // message (see ServerSession::set_stream_budget).
        session.set_stream_budget(std::clamp<size_t>(
            kStreamMemory / static_cast<size_t>(std::max<int64_t>(1, s.metrics.sessions_active.load())), 0,
            ServerSession::kMaxStreamBudget));
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

net::awaitable<void> HandleConnection(tcp::socket socket, Shared& s, std::string address) {
  struct Count {
    Shared& s;
    const std::string& address;
    ~Count() {
      --s.connections;
      s.per_address.Release(address);
    }
  } count{s, address};
  // The TLS handshake and each HTTP request must arrive within this, so a
  // client sending a byte at a time cannot hold its slot.
  const auto request_timeout = std::min<std::chrono::steady_clock::duration>(30s, s.idle_timeout);
  // Held for the connection's life: the TLS context a reload replaces must
  // outlive the handshakes made with it.
  const std::shared_ptr<const Material> material = s.Current();
  auto engine = OuterTls::Server(*material->tls);
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
      auto started = std::chrono::steady_clock::now();
      auto res = co_await HttpReply(s, req);
      co_await http::async_write(stream, res, net::use_awaitable);
      s.metrics.http_request_seconds.Observe(std::chrono::steady_clock::now() - started);
      if (!res.keep_alive()) break;
    }
    beast::get_lowest_layer(stream).expires_after(5s);
    co_await stream.Shutdown();
  } catch (const std::exception&) {
    // Timeouts, resets and malformed requests end the connection quietly.
  }
}

net::awaitable<void> Listen(tcp::acceptor& acceptor, Shared& s) {
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
    if (s.connections.load() >= s.max_connections || peer_ec || !s.per_address.Acquire(address)) {
      ++s.metrics.connections_refused_total;
      boost::system::error_code ec;
      socket.close(ec);
      continue;
    }
    ++s.connections;
    auto executor = socket.get_executor();
    net::co_spawn(executor, HandleConnection(std::move(socket), s, std::move(address)), net::detached);
  }
}

// The metrics listener: plain HTTP, one request at a time per connection,
// for the operator's scraper on loopback (no TLS, no customers).
net::awaitable<void> HandleMetricsConnection(tcp::socket socket, Shared& s) {
  beast::tcp_stream stream(std::move(socket));
  try {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(4 * 1024);
      stream.expires_after(30s);
      co_await http::async_read(stream, buffer, parser, net::use_awaitable);
      auto res = co_await MetricsReply(s, parser.get());
      co_await http::async_write(stream, res, net::use_awaitable);
      if (!res.keep_alive()) break;
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  } catch (const std::exception&) {
  }
}

net::awaitable<void> ListenMetrics(tcp::acceptor& acceptor, Shared& s) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(net::make_strand(acceptor.get_executor()),
                                                        net::redirect_error(net::use_awaitable, ec));
    if (ec == net::error::operation_aborted) co_return;
    if (ec) continue;
    auto executor = socket.get_executor();
    net::co_spawn(executor, HandleMetricsConnection(std::move(socket), s), net::detached);
  }
}

Status Bind(tcp::acceptor& acceptor, const std::string& host, uint16_t port, std::string_view what,
            std::string_view option) {
  boost::system::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) return Fail(ErrorCode::kInvalidArgument, "\"" + host + "\" is not an IP address to listen on; fix " + std::string(option));
  tcp::endpoint endpoint(address, port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Fail(ErrorCode::kIo, "cannot listen " + std::string(what) + " on " + host + ":" + std::to_string(port) +
                                    " (" + ec.message() + "); choose another with " + std::string(option));
  return Ok();
}

}  // namespace

Status ServeHttps(LoadedServer& server, const ServeOptions& options, const std::atomic<bool>& stop) {
  auto material = MakeMaterial(server);
  if (!material) return std::unexpected(material.error());

  net::thread_pool ledger_pool(static_cast<size_t>(options.ledger_threads));
  Shared shared{server, &ledger_pool, {}, {}, {}, options.max_connections, options.idle_timeout,
                KeyedSlots(options.max_connections_per_address), {}, *material, {}, {}, {},
                KeyedSlots(options.max_sessions_per_user)};
  shared.context.fault = options.fault;
  shared.metrics.start_time_seconds =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();

  net::io_context ioc(options.threads);
  tcp::acceptor acceptor(ioc), metrics_acceptor(ioc);
  SEALDROP_TRY(Bind(acceptor, options.host, options.port, "for customers", "--listen"));
  uint16_t port = acceptor.local_endpoint().port();
  uint16_t metrics_port = 0;
  if (!options.metrics_host.empty()) {
    SEALDROP_TRY(Bind(metrics_acceptor, options.metrics_host, options.metrics_port, "for metrics",
                      "--metrics-listen (or turn it off with --metrics-listen none)"));
    metrics_port = metrics_acceptor.local_endpoint().port();
  }
  if (!options.port_file.empty()) SEALDROP_TRY(WriteFileAtomic(options.port_file, std::to_string(port) + "\n"));
  if (!options.metrics_port_file.empty() && metrics_port != 0)
    SEALDROP_TRY(WriteFileAtomic(options.metrics_port_file, std::to_string(metrics_port) + "\n"));
  Log(LogLevel::kInfo, "serving",
      {{"detail", "serving " + (*material)->config.name + " on https://" + options.host + ":" + std::to_string(port) +
                      (metrics_port ? ", metrics on http://" + options.metrics_host + ":" + std::to_string(metrics_port)
                                    : std::string(", no metrics listener")) +
                      "; " + Describe(**material)}});
  CheckExpiry(**material);

  net::co_spawn(ioc, Listen(acceptor, shared), net::detached);
  if (metrics_port) net::co_spawn(ioc, ListenMetrics(metrics_acceptor, shared), net::detached);
  (void)NotifySupervisor("READY=1");
  // Watch the stop and reload flags (signal handlers only set them); on
  // stop, close the acceptors and give sessions a grace period before the
  // io_context is stopped.
  net::steady_timer watch(ioc);
  std::chrono::steady_clock::time_point shutdown_deadline{};
  auto next_expiry_check = std::chrono::steady_clock::now() + kExpiryCheckInterval;
  unsigned reloads_seen = options.reload ? options.reload->load() : 0;
  std::function<void()> arm = [&] {
    watch.expires_after(200ms);
    watch.async_wait([&](boost::system::error_code) {
      if (stop.load()) {
        if (acceptor.is_open()) {
          (void)NotifySupervisor("STOPPING=1");
          Log(LogLevel::kInfo, "stopping", {{"detail", "no new connections; sessions in flight get 5 s"}});
          acceptor.close();
          boost::system::error_code ignored;
          metrics_acceptor.close(ignored);
          shutdown_deadline = std::chrono::steady_clock::now() + 5s;
        }
        // Sessions in flight get a grace period to finish their order.
        if (shared.connections.load() == 0 || std::chrono::steady_clock::now() > shutdown_deadline) {
          ioc.stop();
          return;
        }
      } else if (options.reload && options.reload->load() != reloads_seen) {
        // On an io thread: reading a few small files and building one
        // SSL_CTX takes milliseconds, and the other threads keep serving.
        reloads_seen = options.reload->load();
        Reload(shared);
      } else if (std::chrono::steady_clock::now() >= next_expiry_check) {
        next_expiry_check = std::chrono::steady_clock::now() + kExpiryCheckInterval;
        CheckExpiry(*shared.Current());
      }
      arm();
    });
  };
  arm();
  std::vector<std::thread> threads;
  for (int i = 1; i < options.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  ledger_pool.join();
  Log(LogLevel::kInfo, "stopped");
  return Ok();
}

}  // namespace sealdrop
