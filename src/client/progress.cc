#include "client/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sealdrop {

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string HumanDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 99 * 3600) return "--";
  auto s = static_cast<long>(std::lround(seconds));
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%lds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  return buf;
}

Progress::Progress(std::string label)
    : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_() {}

Progress::~Progress() { Interrupt(); }

std::string Progress::Render(const std::string& label, uint64_t done, uint64_t total, double seconds) {
  if (total > 0) done = std::min(done, total);
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0;
  int width = 30, filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar += std::string(static_cast<size_t>(width - filled), ' ');
  std::string eta = done >= total && total > 0 ? "0s"
                    : rate > 0                 ? HumanDuration(static_cast<double>(total - done) / rate)
                                               : "--";
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s [%s] %3.0f%% %s / %s  %s/s  ETA %s ", label.c_str(), bar.c_str(), frac * 100,
                HumanBytes(static_cast<double>(done)).c_str(), HumanBytes(static_cast<double>(total)).c_str(),
                HumanBytes(rate).c_str(), eta.c_str());
  return buf;
}

void Progress::Draw(uint64_t done, uint64_t total) {
  double secs = std::chrono::duration<double>(last_ - start_).count();
  // \x1b[K clears what a longer earlier line left behind.
  std::fprintf(stderr, "\r%s\x1b[K", Render(label_, done, total, secs).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::Update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  total_ = total;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  Draw(done, total);
}

void Progress::Finish() {
  if (enabled_ && drawn_) {
    last_ = std::chrono::steady_clock::now();
    Draw(total_, total_);
  }
  Interrupt();
}

void Progress::Interrupt() {
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace sealdrop
