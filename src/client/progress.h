// A progress bar on stderr, only when stderr is a terminal; redrawn at most
// ten times a second so a fast download spends no time drawing. It shows the
// share done, bytes done of the total (never more than the total: the relay
// counts TLS framing too), the rate and the time left.
//
// Whatever ends the download must end the bar's line first (Finish or
// Interrupt), so a message that follows starts on a line of its own; the
// destructor does so as a last resort.
//
// Thread safety: one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sealdrop {

class Progress {
 public:
  explicit Progress(std::string label);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Update(uint64_t done, uint64_t total);
  // The download is complete: draws the bar full and ends its line.
  void Finish();
  // The download stopped early: ends the bar's line as it stands.
  void Interrupt();

  // The bar's text for `done` of `total` after `seconds`, without the
  // carriage return (for tests).
  static std::string Render(const std::string& label, uint64_t done, uint64_t total, double seconds);

 private:
  void Draw(uint64_t done, uint64_t total);

  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  uint64_t total_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};

std::string HumanBytes(double bytes);
// "42s", "3m07s", "1h02m"; "--" when unknown.
std::string HumanDuration(double seconds);

}  // namespace sealdrop
