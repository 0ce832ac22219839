// RFC 3339 UTC timestamps with second precision ("2026-11-21T09:35:00Z"),
// the one textual time format in sealdrop's state files.
//
// Thread safety: stateless functions (gmtime_r, not gmtime).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/error.h"

namespace sealdrop {

std::string FormatRfc3339(std::chrono::system_clock::time_point time);
// Accepts exactly the form FormatRfc3339 writes; kMalformed otherwise.
Result<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text);

}  // namespace sealdrop
