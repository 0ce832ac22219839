// Structured logs: one JSON object per line on standard error.
//
//   {"time":"2026-12-02T15:04:05Z","level":"info","program":"sealdropd",
//    "event":"sale","session":"5f0c...","order":"...","user":"alice",
//    "peer":"127.0.0.1","detail":"..."}
//
// "time" (RFC 3339, UTC), "level" (info | warning | error), "program" and
// "event" are always present; the other fields only when set, in the order
// given. docs/operations.md lists the events.
//
// Every value is JSON-escaped: control characters (newlines included), quotes
// and backslashes become escapes and bytes that are not UTF-8 become U+FFFD,
// so text a peer chose (a user name, an error's detail) can never end a line
// or start a forged one.
//
// Thread safety: Log may be called from any thread; each line is written with
// one write(2), so lines from different threads never interleave.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace sealdrop {

enum class LogLevel { kInfo, kWarning, kError };

using LogField = std::pair<std::string_view, std::string_view>;

// Sets the "program" field of every later line (default "sealdrop").
void SetLogProgram(std::string_view program);

// The line Log would write (without its newline), for tests.
std::string FormatLogLine(LogLevel level, std::string_view event, std::span<const LogField> fields);

// Writes one line; fields with an empty value are left out. Field keys are
// the caller's own constants and never "time", "level", "program" or "event".
void LogFields(LogLevel level, std::string_view event, std::span<const LogField> fields);
inline void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {}) {
  LogFields(level, event, std::span<const LogField>(fields.begin(), fields.size()));
}

// `text` as a JSON string literal, quotes included (the escaping above).
std::string JsonQuoted(std::string_view text);

}  // namespace sealdrop
