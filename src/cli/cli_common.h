// Small pieces every sealdrop executable shares: how the command line is
// parsed and checked, how errors reach the user (one sentence, or JSON), how
// secrets are read, and how a serving process learns it should stop.
//
// Thread safety: Parse, SetJsonErrors and Report touch process-wide state;
// call them from the main thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "base/error.h"

namespace sealdrop::cli {

// Exit codes, the same for all four executables (docs/operations.md lists
// them). 0 success, 1 the command failed for a reason with no class of its
// own, 2 bad usage; the classes a script branches on:
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitAuth = 3;           // kAuthFailed: log in again
inline constexpr int kExitNotFound = 4;       // kNotFound: no such program, receipt, user, file
inline constexpr int kExitFunds = 5;          // kInsufficientFunds
inline constexpr int kExitRefused = 6;        // kRefused, kUntrustedPeer, kCryptoFailure: policy or a check said no
inline constexpr int kExitUnavailable = 7;    // kUnavailable: server or processor unreachable, try again
inline constexpr int kExitAlreadyOwned = 8;   // kAlreadyOwned: use 'sealdrop get' (free)

// 'sealdrop run' and 'sealdrop open' exit with the program's own status, so
// their own failures use codes a program rarely does, as env(1) does:
inline constexpr int kExitRunFailed = 125;    // sealdrop or the processor failed before the program ran
inline constexpr int kExitRunRefused = 126;   // the processor refused to run it (licence, signature, policy)
inline constexpr int kExitRunNotFound = 127;  // no such program is stored here
// A program killed by signal N exits with 128 + N, as a shell reports it.

// The exit code for an error's class (above).
int ExitCodeFor(ErrorCode code);
// The same for 'run' and 'open' (125-127).
int RunExitCodeFor(ErrorCode code);

// With JSON errors on, Report and UsageError print
//   {"error":{"code":"not_found","message":"..."}}
// as one line on stderr instead of "PROGRAM: message"; stdout carries only
// results, so a script can read both.
void SetJsonErrors(bool on);
bool JsonErrors();

// Prints the error (one sentence ending in a period) on stderr and returns
// ExitCodeFor(error.code).
int Report(std::string_view program, const Error& error);
// Prints a usage error (code "usage") and returns kExitUsage.
int UsageError(std::string_view program, std::string_view message);

// Parses the command line. Returns an exit code when the process should stop
// now (help or version printed: 0; bad usage reported: 2), nothing when the
// command should run. An unknown command is called unknown (CLI11 would say a
// command is required), and "--json" anywhere turns on JSON errors before
// parsing, so even usage errors honour it.
std::optional<int> Parse(CLI::App& app, int argc, char** argv, std::string_view program);

// Range checks whose failure reads as one sentence ("--threads must be a
// whole number from 1 to 64"), instead of CLI11's "Value 0 not in range
// 0.000000 to 1797693134862315708...".
CLI::Validator WholeNumber(int64_t min, int64_t max);
CLI::Validator WholeNumberAtLeast(int64_t min);

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

// Reads a secret: from the environment variable if it is set and non-empty;
// else, when stdin is a terminal, after the prompt "WHAT: " with echo turned
// off; else one line of stdin (without the trailing newline), for scripts.
Result<std::string> ReadSecret(std::string_view env_name, std::string_view what);

}  // namespace sealdrop::cli
