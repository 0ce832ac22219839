#include "server/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>

namespace sealdrop {
namespace {

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Shortest form that reads back as the same double: "0.005", not
  // "0.0050000000000000001".
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

// Label values come from certificates: escaped as the exposition format asks.
std::string LabelValue(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) >= 0x20) {
      out += c;
    }
  }
  return out;
}

void Header(std::string& out, const char* name, const char* help, const char* type) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void DurationHistogram::Observe(std::chrono::steady_clock::duration d) {
  double seconds = std::chrono::duration<double>(d).count();
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  ++buckets_[i];
  sum_micros_ += static_cast<uint64_t>(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
  ++count_;
}

void DurationHistogram::Render(std::string& out, const char* name, const char* help) const {
  Header(out, name, help, "histogram");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load();
    out += std::string(name) + "_bucket{le=\"" + (i < kBounds.size() ? Number(kBounds[i]) : "+Inf") +
           "\"} " + std::to_string(cumulative) + "\n";
  }
  out += std::string(name) + "_sum " + Number(static_cast<double>(sum_micros_.load()) / 1e6) + "\n";
  out += std::string(name) + "_count " + std::to_string(count_.load()) + "\n";
}

std::string ServerMetrics::Render(const MetricsSnapshot& snap) const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v, const char* type = "counter") {
    Header(out, name, help, type);
    out += std::string(name) + " " + std::to_string(v) + "\n";
  };
  auto gauge = [&](const char* name, const char* help, double v) {
    Header(out, name, help, "gauge");
    out += std::string(name) + " " + Number(v) + "\n";
  };
  Header(out, "sealdrop_build_info", "The running version (the value is always 1).", "gauge");
  out += "sealdrop_build_info{version=\"" + LabelValue(snap.version) + "\"} 1\n";
  gauge("sealdrop_up", "1 while the server can sell (see /healthz for the reason when it is 0).",
        snap.healthy ? 1 : 0);
  gauge("sealdrop_server_certificate_expiry_seconds",
        "Seconds until the server certificate expires (negative once expired).", snap.certificate_expiry_seconds);
  Header(out, "sealdrop_crl_next_update_seconds",
         "Seconds until each manufacturer CRL's nextUpdate (negative once expired: purchases fail).", "gauge");
  for (const auto& crl : snap.crls)
    out += "sealdrop_crl_next_update_seconds{issuer=\"" + LabelValue(crl.issuer) + "\"} " +
           Number(crl.next_update_seconds) + "\n";
  counter("sealdrop_reloads_total", "Reloads (SIGHUP) that installed new material.",
          static_cast<uint64_t>(snap.reloads_total));
  counter("sealdrop_reload_failures_total", "Reloads (SIGHUP) refused; the previous material stayed.",
          static_cast<uint64_t>(snap.reload_failures_total));
  counter("sealdrop_connections_total", "TCP connections accepted.", connections_total);
  counter("sealdrop_connections_refused_total", "Connections closed at once: over the connection limit.",
          connections_refused_total);
  counter("sealdrop_sessions_active", "WebSocket sessions open now.",
          static_cast<uint64_t>(std::max<int64_t>(0, sessions_active)), "gauge");
  counter("sealdrop_sessions_total", "WebSocket sessions opened.", sessions_total);
  counter("sealdrop_sessions_failed_total", "Sessions that ended with an error.", sessions_failed_total);
  counter("sealdrop_logins_total", "Successful logins.", logins_total);
  counter("sealdrop_logins_failed_total", "Failed logins.", logins_failed_total);
  counter("sealdrop_logins_limited_total", "Logins refused by the failed-login limits.", logins_limited_total);
  counter("sealdrop_sessions_user_limited_total", "Logins refused because the user held the most sessions allowed at once.",
          sessions_user_limited_total);
  counter("sealdrop_orders_total", "Purchases and re-downloads started.", orders_total);
  counter("sealdrop_charges_total", "Charges committed.", charges_total);
  counter("sealdrop_redeliveries_total", "Free re-downloads committed.", redeliveries_total);
  counter("sealdrop_bytes_sent_total", "WebSocket payload bytes sent.", bytes_sent_total);
  counter("sealdrop_http_requests_total", "Plain HTTPS requests served.", http_requests_total);
  http_request_seconds.Render(out, "sealdrop_http_request_duration_seconds",
                              "Time to answer a plain HTTPS request.");
  purchase_seconds.Render(out, "sealdrop_purchase_duration_seconds",
                          "Time from an order to its committed charge or re-delivery.");
  RenderProcessMetrics(out, start_time_seconds);
  return out;
}

void RenderProcessMetrics(std::string& out, double start_time_seconds) {
  auto gauge = [&](const char* name, const char* help, double v, const char* type = "gauge") {
    Header(out, name, help, type);
    out += std::string(name) + " " + Number(v) + "\n";
  };
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  gauge("process_cpu_seconds_total", "User and system CPU time spent.", cpu, "counter");
  long pages = 0, resident = 0;
  if (std::ifstream statm("/proc/self/statm"); statm >> pages >> resident)
    gauge("process_resident_memory_bytes", "Resident memory size.",
          static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
  std::error_code ec;
  size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++fds;
  gauge("process_open_fds", "Open file descriptors.", static_cast<double>(fds));
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    gauge("process_max_fds", "The open file descriptor limit.", static_cast<double>(limit.rlim_cur));
  gauge("process_start_time_seconds", "Start time of the process since the epoch, in seconds.", start_time_seconds);
}

}  // namespace sealdrop
