#include "base/time_format.h"

#include <cstdio>
#include <ctime>

namespace sealdrop {

std::string FormatRfc3339(std::chrono::system_clock::time_point time) {
  time_t t = std::chrono::system_clock::to_time_t(time);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

Result<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text) {
  struct tm tm {};
  int consumed = 0;
  std::string s(text);
  if (s.size() != 20 ||
      std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 20)
    return Fail(ErrorCode::kMalformed, "\"" + s.substr(0, 40) + "\" is not an RFC 3339 UTC time");
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace sealdrop
