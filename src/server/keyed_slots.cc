#include "server/keyed_slots.h"

namespace sealdrop {

bool KeyedSlots::Acquire(const std::string& key) {
  std::lock_guard lock(mu_);
  int& n = held_[key];
  if (n >= max_per_key_) {
    if (n == 0) held_.erase(key);
    return false;
  }
  ++n;
  return true;
}

void KeyedSlots::Release(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = held_.find(key);
  if (it != held_.end() && --it->second <= 0) held_.erase(it);
}

int KeyedSlots::held(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = held_.find(key);
  return it == held_.end() ? 0 : it->second;
}

}  // namespace sealdrop
