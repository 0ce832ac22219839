// The processor's Unix socket (the host's only way in).
//
// One thread per connection, blocking I/O; at most kMaxConnections at once.
// Each connection carries TrpType frames (protocol/messages.h); file
// descriptors for kRun arrive as SCM_RIGHTS on the same socket. A connection
// owns at most one download session; if the connection closes before the
// release, the held package is discarded.
//
// The socket is created with mode 0660: the host's user reaches it through
// the group. docs/threat-model.md explains the deployment with the processor
// under its own uid.
#pragma once

#include <atomic>
#include <filesystem>

#include "base/error.h"
#include "trp/state.h"

namespace sealdrop {

inline constexpr int kMaxProcessorConnections = 64;

// A connection that sends nothing for this long while no program of it runs
// is closed, its download (if any) abandoned: an idle host cannot hold one of
// the kMaxProcessorConnections slots forever.
inline constexpr int kDefaultProcessorIdleSeconds = 120;

// Serves until *stop becomes true (checked every 200 ms), then removes the
// socket file. A socket file left by a killed instance is replaced if
// nothing answers on it; a live one is refused. Each change of *reload
// (SIGHUP) is logged and otherwise ignored: the keys and certificates are
// read once, before the state is confined. Sends READY=1 and STOPPING=1 to
// $NOTIFY_SOCKET (base/daemon.h); logs JSON lines (base/log.h).
Status ServeProcessor(const ProcessorState& state, const std::filesystem::path& socket_path,
                      const std::atomic<bool>& stop, int idle_seconds = kDefaultProcessorIdleSeconds,
                      const std::atomic<unsigned>* reload = nullptr);

// Serves one connected socket until it closes (exposed for tests).
void HandleProcessorConnection(const ProcessorState& state, int fd,
                               int idle_seconds = kDefaultProcessorIdleSeconds);

}  // namespace sealdrop
