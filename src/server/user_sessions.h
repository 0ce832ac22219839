// How many sessions each user holds at once, across all connections of a
// server: one account (a shared or stolen password, a runaway script) cannot
// take the slots that the per-address and total connection limits leave for
// everyone else.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

namespace sealdrop {

class UserSessions {
 public:
  explicit UserSessions(int max_per_user) : max_per_user_(max_per_user) {}

  // Takes a slot for `user`, or returns false if the user holds the maximum.
  bool Acquire(const std::string& user);
  // Gives back a slot taken by Acquire.
  void Release(const std::string& user);
  int max_per_user() const { return max_per_user_; }
  int held(const std::string& user);

 private:
  const int max_per_user_;
  std::mutex mu_;
  std::unordered_map<std::string, int> held_;
};

}  // namespace sealdrop
