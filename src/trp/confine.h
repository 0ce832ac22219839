// Hiding the processor's state from the programs it runs.
//
// Programs run with the processor's uid, which owns the state directory
// (root.key above all). ConfineStateDirectory is called once by `serve`,
// before any key is loaded: it opens the state directory, moves the daemon
// into its own mount namespace (through a user namespace that maps only its
// own uid and gid when it is not root, after starting the loader check's
// helper outside it: trp/loader_check.h), and covers the state directory's
// path with an empty read-only tmpfs. The daemon then reaches its state only
// through the returned /proc/self/fd/N path, a descriptor that is closed on
// exec; every program it starts inherits the covered view and cannot open
// the state by any path, whatever arguments or working directory it gets.
//
// Must be called while the process is single-threaded and still dumpable
// (writing the user namespace's maps needs both).
#pragma once

#include <filesystem>

#include "base/error.h"
#include "base/unique_fd.h"

namespace sealdrop {

// Owns the state directory's descriptor: `state` is a path only while this
// object is alive, so the caller keeps it for as long as the processor serves.
struct ConfinedState {
  std::filesystem::path state;  // /proc/self/fd/N: the real state directory
  UniqueFd dir_fd;
};

Result<ConfinedState> ConfineStateDirectory(const std::filesystem::path& state);

}  // namespace sealdrop
