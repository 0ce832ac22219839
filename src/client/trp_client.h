// Direct requests to the processor's socket that need no server: info, the
// list of licences, and running a program (stdio and the package passed as
// file descriptors).
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/messages.h"

namespace sealdrop {

// Sends one frame (with optional fds) and returns the first reply frame.
Result<std::pair<TrpType, std::string>> TrpRequest(const std::string& socket, TrpType type,
                                                   std::string_view body, const std::vector<int>& fds = {});

}  // namespace sealdrop
