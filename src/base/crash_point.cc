#include "base/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace sealdrop {

void CrashPoint(std::string_view name) {
  static const std::string target = [] {
    const char* v = std::getenv("SEALDROP_CRASH_AT");
    return std::string(v ? v : "");
  }();
  if (target.empty() || target != name) return;
  ::kill(::getpid(), SIGKILL);
  ::_exit(137);  // not reached
}

}  // namespace sealdrop
