#include "server/metrics.h"

namespace sealdrop {

std::string ServerMetrics::Render() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v, const char* type = "counter") {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name +
           " " + std::to_string(v) + "\n";
  };
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
  counter("sealdrop_orders_total", "Purchases and re-downloads started.", orders_total);
  counter("sealdrop_charges_total", "Charges committed.", charges_total);
  counter("sealdrop_redeliveries_total", "Free re-downloads committed.", redeliveries_total);
  counter("sealdrop_bytes_sent_total", "WebSocket payload bytes sent.", bytes_sent_total);
  counter("sealdrop_http_requests_total", "Plain HTTPS requests served.", http_requests_total);
  return out;
}

}  // namespace sealdrop
