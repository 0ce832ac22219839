#include "base/log.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <mutex>

#include "base/time_format.h"

namespace sealdrop {
namespace {

std::mutex g_program_mu;
std::string g_program = "sealdrop";

// Length of the valid UTF-8 sequence at s[i], or 0 if there is none
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
size_t Utf8Length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (n == 0 || c > 0xF4 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  unsigned char c1 = byte(i + 1);
  if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
  if (c == 0xED && c1 >= 0xA0) return 0;  // surrogates
  if (c == 0xF0 && c1 < 0x90) return 0;  // overlong
  if (c == 0xF4 && c1 >= 0x90) return 0;  // past U+10FFFF
  return n;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "error";
}

}  // namespace

std::string JsonQuoted(std::string_view s) {
  std::string out = "\"";
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (size_t n = Utf8Length(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
  return out;
}

void SetLogProgram(std::string_view program) {
  std::lock_guard lock(g_program_mu);
  g_program = std::string(program);
}

std::string FormatLogLine(LogLevel level, std::string_view event, std::span<const LogField> fields) {
  std::string program;
  {
    std::lock_guard lock(g_program_mu);
    program = g_program;
  }
  std::string line = "{\"time\":" + JsonQuoted(FormatRfc3339(std::chrono::system_clock::now())) +
                     ",\"level\":\"" + LevelName(level) + "\",\"program\":" + JsonQuoted(program) +
                     ",\"event\":" + JsonQuoted(event);
  for (const auto& [key, value] : fields) {
    if (value.empty()) continue;
    line += "," + JsonQuoted(key) + ":" + JsonQuoted(value);
  }
  line += "}";
  return line;
}

void LogFields(LogLevel level, std::string_view event, std::span<const LogField> fields) {
  std::string line = FormatLogLine(level, event, fields) + "\n";
  // One write per line: stderr may be a pipe shared with other writers, and
  // a line cut in two would be two invalid JSON lines.
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to log to; the process carries on
    off += static_cast<size_t>(n);
  }
}

}  // namespace sealdrop
