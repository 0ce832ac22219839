// A progress bar on stderr, only when stderr is a terminal; redrawn at most
// ten times a second so a fast download spends no time drawing.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sealdrop {

class Progress {
 public:
  explicit Progress(std::string label);
  void Update(uint64_t done, uint64_t total);
  void Finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

std::string HumanBytes(double bytes);

}  // namespace sealdrop
