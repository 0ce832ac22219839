// Counters for /metrics, in the Prometheus text exposition format.
// Thread safety: every counter is atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace sealdrop {

struct ServerMetrics {
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connections_refused_total{0};
  std::atomic<int64_t> sessions_active{0};
  std::atomic<uint64_t> sessions_total{0};
  std::atomic<uint64_t> logins_total{0};
  std::atomic<uint64_t> logins_failed_total{0};
  std::atomic<uint64_t> logins_limited_total{0};
  std::atomic<uint64_t> orders_total{0};
  std::atomic<uint64_t> charges_total{0};
  std::atomic<uint64_t> redeliveries_total{0};
  std::atomic<uint64_t> sessions_failed_total{0};
  std::atomic<uint64_t> bytes_sent_total{0};
  std::atomic<uint64_t> http_requests_total{0};

  std::string Render() const;
};

}  // namespace sealdrop
