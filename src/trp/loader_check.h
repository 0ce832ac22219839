// Whether only root can change a file or directory the dynamic loader of a
// decrypted program may read (trp/runner.h, "The dynamic loader").
//
// The answer depends on which user namespace asks. A root processor sees
// owners as they are. A processor that is not root confines itself inside a
// user namespace that maps only its own uid (trp/confine.h), where root's
// files and every other user's show the same overflow uid; asked from there,
// a directory of the host's user would pass for root's. So before it enters
// that namespace the processor starts a helper process that stays outside
// (StartRootControlHelper), and RootControlProblem asks the helper. The
// helper holds no key (it is started before any is loaded), does nothing but
// lstat and readlink, and ends with the processor.
//
// Thread safety: RootControlProblem may be called from several threads (one
// question to the helper at a time). StartRootControlHelper must be called
// while the process is single-threaded, at most once.
#pragma once

#include <string>

#include "base/error.h"

namespace sealdrop {

// Why someone other than root could change what the absolute `path` names
// on this machine, as one phrase ("/opt/x is writable by group or others"),
// or empty if only root can: every directory from / down and the last
// component must be owned by root and not writable by group or others, and
// every symbolic link on the way is followed under the same rule. A missing
// component ends the walk: the directory above it is root's, so nobody else
// can create it. If the helper was started and cannot answer, the answer is
// a problem (the check fails closed).
std::string RootControlProblem(const std::string& path);

Status StartRootControlHelper();

}  // namespace sealdrop
