// How many of something each key holds at once, with one maximum for every
// key: the server's connections per client address and sessions per user.
// One address or one account (a shared or stolen password, a runaway script)
// cannot take the slots that the total limit leaves for everyone else.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

namespace sealdrop {

class KeyedSlots {
 public:
  explicit KeyedSlots(int max_per_key) : max_per_key_(max_per_key) {}

  // Takes a slot for `key`, or returns false if it holds the maximum.
  bool Acquire(const std::string& key);
  // Gives back a slot taken by Acquire.
  void Release(const std::string& key);
  int max_per_key() const { return max_per_key_; }
  int held(const std::string& key);

 private:
  const int max_per_key_;
  std::mutex mu_;
  std::unordered_map<std::string, int> held_;  // keys holding at least one slot
};

}  // namespace sealdrop
