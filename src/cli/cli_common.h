// Small pieces every sealdrop executable shares: how errors reach the user,
// and how a serving process learns it should stop.
#pragma once

#include <atomic>
#include <cstdio>
#include <string>
#include <string_view>

#include "base/error.h"

namespace sealdrop::cli {

// Exit codes, the same for all four executables (docs/operations.md lists
// them). 0 success, 1 the command failed for a reason with no class of its
// own, 2 bad usage (CLI11's own); the classes a script branches on:
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitAuth = 3;           // kAuthFailed: log in again
inline constexpr int kExitNotFound = 4;       // kNotFound: no such program, receipt, user, file
inline constexpr int kExitFunds = 5;          // kInsufficientFunds
inline constexpr int kExitRefused = 6;        // kRefused, kUntrustedPeer, kCryptoFailure: policy or a check said no
inline constexpr int kExitUnavailable = 7;    // kUnavailable: server or processor unreachable, try again
inline constexpr int kExitAlreadyOwned = 8;   // kAlreadyOwned: use 'sealdrop get' (free)

// The exit code for an error's class (above).
int ExitCodeFor(ErrorCode code);

// Prints "PROGRAM: message" on stderr and returns ExitCodeFor(error.code).
int Report(std::string_view program, const Error& error);

// Installs SIGINT/SIGTERM handlers that set the returned flag, and ignores
// SIGPIPE (writes to a closed socket become errors instead).
const std::atomic<bool>& StopFlag();

// Opens /dev/null on any of descriptors 0-2 that is closed, so no socket or
// file the process opens later can land there (and be handed to a child as
// its standard stream).
void EnsureStandardDescriptors();

// The product's version (CMake's project version), as --version prints it:
// "PROGRAM VERSION".
std::string_view Version();

// Reads a secret line from stdin (without the trailing newline), or from the
// environment variable if it is set and non-empty.
Result<std::string> ReadSecret(std::string_view env_name, std::string_view what);

}  // namespace sealdrop::cli
