// Crash points for the fault-injection tests (LevelDB's and RocksDB's kill
// points are the model): when the environment variable SEALDROP_CRASH_AT names
// a point, the process kills itself with SIGKILL on reaching it, leaving
// files, sockets and transactions exactly as a power cut or `kill -9` would.
// Unset (the normal case), a crash point costs one branch.
//
// The points, in the order a purchase reaches them, are listed in
// docs/threat-model.md (section 10) with the test that kills each.
//
// Thread safety: safe from any thread.
#pragma once

#include <string_view>

namespace sealdrop {

void CrashPoint(std::string_view name);

}  // namespace sealdrop
