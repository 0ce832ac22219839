#include "server/user_sessions.h"

namespace sealdrop {

bool UserSessions::Acquire(const std::string& user) {
  std::lock_guard lock(mu_);
  int& n = held_[user];
  if (n >= max_per_user_) {
    if (n == 0) held_.erase(user);
    return false;
  }
  ++n;
  return true;
}

void UserSessions::Release(const std::string& user) {
  std::lock_guard lock(mu_);
  auto it = held_.find(user);
  if (it != held_.end() && --it->second <= 0) held_.erase(it);
}

int UserSessions::held(const std::string& user) {
  std::lock_guard lock(mu_);
  auto it = held_.find(user);
  return it == held_.end() ? 0 : it->second;
}

}  // namespace sealdrop
