// sealdropd's network front end: TLS 1.3, HTTP/1.1 and WebSocket on one port
// (Boost.Beast, C++20 coroutines), and a plain-HTTP metrics listener.
//
// The customers' port:
//   GET /healthz            "ok", or 503 "unavailable" while the server cannot sell
//   GET /v1/catalog         JSON list of programs
//   GET /v1/session         WebSocket upgrade: one ServerSession
// The metrics listener (loopback by default; never the customers' port):
//   GET /metrics            Prometheus text (server/metrics.h)
//   GET /healthz            "ok", or 503 and the operator's reason: a CRL or the
//                           server certificate expired, the ledger unreachable
//
// Reload (each time *options.reload grows, i.e. on SIGHUP): the server
// certificate and key, the manufacturer roots, the CRLs and config.json are
// read again and, if they all load, replace the old set at once. The set is
// immutable and reference-counted: a connection keeps the one it started
// with, so a download in flight completes; new connections and sessions get
// the new one. A set that does not load is logged and the old one kept.
//
// Logs: one JSON line per event on stderr (base/log.h; docs/operations.md).
// systemd: READY=1 once listening, RELOADING=1 / READY=1 around a reload,
// STOPPING=1 on shutdown (base/daemon.h).
//
// Each connection is a coroutine on its own strand. Limits: TLS handshake
// and HTTP header 30 s, HTTP body 64 KiB, WebSocket message kMaxInnerRelaySize,
// WebSocket idle `idle_timeout` (default 120 s), a write that makes no progress for 60 s ends the
// connection, a host stops being read while 1 MiB of replies wait for it,
// and at most max_connections at once (more are closed at accept, before
// any TLS work), at most max_connections_per_address from one client
// address and max_sessions_per_user logged in as one user. Shutdown on SIGINT/SIGTERM stops accepting and ends when no
// connection is left, or after a 5 s grace period.
//
// Thread safety: Serve() blocks; it runs `threads` io threads and
// `ledger_threads` threads for ledger calls, which sessions and HTTP
// handlers await (server/session.h) instead of calling the ledger on an io
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "base/error.h"
#include "server/data_dir.h"
#include "server/metrics.h"
#include "server/session.h"

namespace sealdrop {

struct ServeOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  int threads = 2;
  // Threads that run ledger calls (blocking; never the io threads). Charges
  // waiting on them at once share one durable commit.
  int ledger_threads = 8;
  int max_connections = 1024;
  // Connections from one client address at once: one address cannot take
  // every slot.
  int max_connections_per_address = 64;
  // Sessions one user may hold at once, whatever their addresses.
  int max_sessions_per_user = 16;
  // A WebSocket session that receives nothing for this long is closed
  // (slow or idle clients cannot hold connection slots forever).
  std::chrono::seconds idle_timeout{120};
  // Written once the port is bound (useful with port 0).
  std::string port_file;
  // The metrics listener; an empty host turns it off.
  std::string metrics_host = "127.0.0.1";
  uint16_t metrics_port = 9464;
  std::string metrics_port_file;
  // A deliberate bug (server/session.h); only sealdropd-faulty sets it.
  ServerFault fault = ServerFault::kNone;
  // Reload when this changes (base/daemon.h ReloadRequests); may be null.
  const std::atomic<unsigned>* reload = nullptr;
};

Status ServeHttps(LoadedServer& server, const ServeOptions& options, const std::atomic<bool>& stop);

}  // namespace sealdrop
