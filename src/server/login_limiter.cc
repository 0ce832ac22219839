#include "server/login_limiter.h"

#include <algorithm>

namespace sealdrop {

std::chrono::seconds LoginLimiter::WaitFor(Table& table, const std::string& key, int max, Clock::time_point now) {
  auto it = table.find(key);
  if (it == table.end()) return std::chrono::seconds(0);
  auto& times = it->second;
  while (!times.empty() && now - times.front() >= limits_.window) times.pop_front();
  if (times.empty()) {
    table.erase(it);
    return std::chrono::seconds(0);
  }
  if (static_cast<int>(times.size()) < max) return std::chrono::seconds(0);
  auto left = limits_.window - (now - times.front());
  return std::max(std::chrono::seconds(1), std::chrono::ceil<std::chrono::seconds>(left));
}

Status LoginLimiter::Check(const std::string& user, const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto wait = std::max(WaitFor(users_, user, limits_.max_failures_per_user, now),
                       address.empty() ? std::chrono::seconds(0)
                                       : WaitFor(addresses_, address, limits_.max_failures_per_address, now));
  if (wait.count() == 0) return Ok();
  long minutes = (wait.count() + 59) / 60;
  return Fail(ErrorCode::kRefused, "too many failed logins; try again in " + std::to_string(minutes) +
                                       (minutes == 1 ? " minute" : " minutes"));
}

void LoginLimiter::Add(Table& table, const std::string& key, Clock::time_point now) {
  if (table.size() >= limits_.max_entries && table.find(key) == table.end()) {
    auto oldest = std::min_element(table.begin(), table.end(), [](const auto& a, const auto& b) {
      return a.second.back() < b.second.back();
    });
    if (oldest != table.end()) table.erase(oldest);
  }
  auto& times = table[key];
  times.push_back(now);
  // Only the newest failures matter for the limit; keep the list bounded.
  while (times.size() > 1000) times.pop_front();
}

void LoginLimiter::RecordFailure(const std::string& user, const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  Add(users_, user, now);
  if (!address.empty()) Add(addresses_, address, now);
}

void LoginLimiter::RecordSuccess(const std::string& user) {
  std::lock_guard lock(mu_);
  users_.erase(user);
}

}  // namespace sealdrop
