// What a long-running sealdrop daemon says to its supervisor and hears from
// it: the systemd notification protocol (sd_notify(3)) and SIGHUP.
//
// NotifySupervisor sends one datagram ("READY=1", "RELOADING=1\nMONOTONIC_USEC=...",
// "STOPPING=1", "STATUS=...") to the AF_UNIX socket named by $NOTIFY_SOCKET
// (a path, or "@name" for the abstract namespace); without $NOTIFY_SOCKET it
// does nothing. The protocol is one sendto(2), so no libsystemd is needed.
//
// Thread safety: NotifySupervisor may be called from any thread.
// ReloadRequests installs the SIGHUP handler on its first call (call it before
// starting threads); the counter it returns grows by one per SIGHUP.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "base/error.h"

namespace sealdrop {

// kUnavailable if $NOTIFY_SOCKET is set but the datagram could not be sent.
Status NotifySupervisor(std::string_view state);

// "RELOADING=1" with the MONOTONIC_USEC field Type=notify-reload requires.
Status NotifyReloading();

const std::atomic<unsigned>& ReloadRequests();

// Raises the soft limit on open descriptors to the hard limit and returns
// the limit now in force. Shells and systemd start services with a soft
// limit of 1024, below what a server with a thousand connections needs; the
// hard limit is what the operator allows (LimitNOFILE=, ulimit -Hn).
uint64_t RaiseDescriptorLimit();

}  // namespace sealdrop
