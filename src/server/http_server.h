// sealdropd's network front end: TLS 1.3, HTTP/1.1 and WebSocket on one port
// (Boost.Beast, C++20 coroutines).
//
//   GET /healthz            "ok"
//   GET /metrics            Prometheus text (server/metrics.h)
//   GET /v1/catalog         JSON list of programs
//   GET /v1/session         WebSocket upgrade: one ServerSession
//
// Each connection is a coroutine on its own strand. Limits: TLS handshake
// and HTTP header 30 s, HTTP body 64 KiB, WebSocket message kMaxInnerRelaySize,
// WebSocket idle `idle_timeout` (default 120 s), a write that makes no progress for 60 s ends the
// connection, a host stops being read while 1 MiB of replies wait for it,
// and at most max_connections at once (more are closed at accept, before
// any TLS work). Shutdown on SIGINT/SIGTERM stops accepting and ends when no
// connection is left, or after a 5 s grace period.
//
// Thread safety: Serve() blocks; it runs `threads` io threads.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "base/error.h"
#include "server/data_dir.h"
#include "server/metrics.h"

namespace sealdrop {

struct ServeOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  int threads = 2;
  int max_connections = 1024;
  // Connections from one client address at once: one address cannot take
  // every slot.
  int max_connections_per_address = 64;
  // A WebSocket session that receives nothing for this long is closed
  // (slow or idle clients cannot hold connection slots forever).
  std::chrono::seconds idle_timeout{120};
  // Written once the port is bound (useful with port 0).
  std::string port_file;
};

Status ServeHttps(LoadedServer& server, const ServeOptions& options, const std::atomic<bool>& stop);

}  // namespace sealdrop
