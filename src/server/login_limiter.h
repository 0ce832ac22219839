// Limits on failed logins, per user ID and per client address, shared by all
// sessions of a server: the per-session limit alone allows unlimited guessing
// across sessions.
//
// A key (user or address) that has failed `max_failures` times within
// `window` is refused, without a password check, until the oldest of those
// failures leaves the window. A success clears the user's failures (not the
// address's: one address may serve many users). The tables are bounded: when
// full, the entry with the oldest last failure is dropped.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/error.h"

namespace sealdrop {

struct LoginLimits {
  int max_failures_per_user = 10;
  int max_failures_per_address = 30;
  std::chrono::seconds window{15 * 60};
  size_t max_entries = 100000;
};

class LoginLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LoginLimiter(LoginLimits limits = {}) : limits_(limits) {}

  // kRefused, with the wait in the message, if either key is over its limit.
  Status Check(const std::string& user, const std::string& address, Clock::time_point now);
  void RecordFailure(const std::string& user, const std::string& address, Clock::time_point now);
  void RecordSuccess(const std::string& user);

 private:
  using Table = std::unordered_map<std::string, std::deque<Clock::time_point>>;
  std::chrono::seconds WaitFor(Table& table, const std::string& key, int max, Clock::time_point now);
  void Add(Table& table, const std::string& key, Clock::time_point now);

  LoginLimits limits_;
  std::mutex mu_;
  Table users_;
  Table addresses_;
};

}  // namespace sealdrop
