// sealdropd's metrics, in the Prometheus text exposition format (0.0.4).
//
// Served only on the metrics listener (plain HTTP, loopback by default,
// `sealdropd serve --metrics-listen`), never on the customers' port:
// docs/operations.md lists every series.
//
// Thread safety: every counter and histogram bucket is atomic; Render may run
// while other threads count.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sealdrop {

// A histogram of durations with fixed buckets (seconds), lock-free.
class DurationHistogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1,    2.5,   5,    10,  30};
  void Observe(std::chrono::steady_clock::duration d);
  // Appends the _bucket, _sum and _count series of `name`.
  void Render(std::string& out, const char* name, const char* help) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // last: +Inf
  std::atomic<uint64_t> sum_micros_{0};
  std::atomic<uint64_t> count_{0};
};

// What the server knows at render time besides its counters.
struct MetricsSnapshot {
  std::string version;
  // Seconds until the server certificate's notAfter (negative once past).
  double certificate_expiry_seconds = 0;
  struct Crl {
    std::string issuer;
    double next_update_seconds;  // +Inf for a CRL without nextUpdate
  };
  std::vector<Crl> crls;
  bool healthy = true;
  double reloads_total = 0;
  double reload_failures_total = 0;
};

struct ServerMetrics {
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connections_refused_total{0};
  std::atomic<int64_t> sessions_active{0};
  std::atomic<uint64_t> sessions_total{0};
  std::atomic<uint64_t> logins_total{0};
  std::atomic<uint64_t> logins_failed_total{0};
  std::atomic<uint64_t> logins_limited_total{0};
  std::atomic<uint64_t> sessions_user_limited_total{0};
  std::atomic<uint64_t> orders_total{0};
  std::atomic<uint64_t> charges_total{0};
  std::atomic<uint64_t> redeliveries_total{0};
  std::atomic<uint64_t> sessions_failed_total{0};
  std::atomic<uint64_t> bytes_sent_total{0};
  std::atomic<uint64_t> http_requests_total{0};
  DurationHistogram http_request_seconds;
  // From the order to the committed charge or re-delivery.
  DurationHistogram purchase_seconds;
  // Seconds since the epoch when the process started.
  double start_time_seconds = 0;

  std::string Render(const MetricsSnapshot& snapshot) const;
};

// The process_* series (RSS, CPU, open descriptors, start time) from /proc.
void RenderProcessMetrics(std::string& out, double start_time_seconds);

}  // namespace sealdrop
