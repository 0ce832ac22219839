// Running a licensed package inside the processor.
//
// The host passes the package as an open file descriptor and its stdio as
// three more (SCM_RIGHTS). RunPackage reads the manifest, finds this
// processor's licence for that package id, checks the manifest signature with
// the server key recorded in the licence and the recipient, refuses a data
// package (data is opened with a program, never run), unwraps Kx,
// decrypts the payload into a sealed memfd (never a file on disk; the memfd is
// sealed against writes before it runs, and nothing maps it writable and
// executable), then forks: the child sets PR_SET_NO_NEW_PRIVS, takes the
// caller's stdio, arguments and working directory and a controlled
// environment, drops every capability, and fexecve()s the memfd (mode 0100,
// which an exec without capabilities cannot read, so the program stays
// non-dumpable). The parent waits and reports the exit code or the signal.
//
// The dynamic loader: before the fork the processor refuses a program whose
// loader would reach a file another user than root can change, since a
// library loaded from there runs its constructors in the decrypted process.
// Every DT_RPATH/DT_RUNPATH directory must be absolute, free of $ORIGIN,
// $LIB and $PLATFORM, and owned by root and not writable by group or others
// on this machine, with every directory above it and every symbolic link on
// the way (trp/loader_check.h, which also says how a processor that is not
// root tells root's files from others'); so must an interpreter or a DT_NEEDED entry given by path
// (package/elf.h, CheckLibrarySearchPaths). The environment is built from
// scratch, so no LD_* or GLIBC_TUNABLES variable reaches the loader; what
// else it reads (/etc/ld.so.preload, /etc/ld.so.cache, the system library
// directories) is root's. A host with root is outside what a soft or TPM
// processor can defend against (docs/threat-model.md).
//
// Confinement: the child runs with the processor's uid. It inherits the
// daemon's mount namespace, in which the state directory is covered
// (trp/confine.h): a program cannot read the processor's keys or licences
// whatever arguments or working directory the host gives it. A processor
// that could not confine itself refuses to run programs.
//
// Thread safety: safe to call from several connection threads.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "trp/state.h"

namespace sealdrop {

struct RunRequest {
  std::vector<std::string> args;  // argv[1..]
  std::string cwd;
  std::vector<std::string> env;   // only the names in kPassedEnvironment are kept
  int stdio[3] = {-1, -1, -1};
  int package_fd = -1;
  int host_fd = -1;  // the host's connection: if it closes, the program is ended
  // A licensed data package whose plaintext becomes the program's stdin
  // (instead of stdio[0]) through a pipe ('sealdrop open NAME --with PROG').
  // If the data turns out damaged midway, the program is killed and the run
  // fails: it has read only authenticated chunks, but not all of them.
  int input_package_fd = -1;
};

struct RunOutcome {
  int exit_code = 0;  // valid if signal == 0
  int signal = 0;
};

// Environment variables passed from the caller; everything else is dropped,
// and so is a LANG, LC_ALL or TZ whose value is a file path (glibc would
// parse a host-written locale or zone file inside the program).
// PATH is not among them: the program runs with the processor's uid, and a
// user's PATH would let it start the user's own binaries with that uid.
inline const std::vector<std::string> kPassedEnvironment = {"LANG", "LC_ALL", "TERM", "TZ"};
inline constexpr char kProgramPath[] = "PATH=/usr/local/bin:/usr/bin:/bin";

Result<RunOutcome> RunPackage(const ProcessorState& state, const RunRequest& request);

// Writes a licensed data package's plaintext to out_fd ('sealdrop open NAME'
// without --with), only if its manifest grants export. Each chunk is
// authenticated before it is written; a damaged package fails after the
// chunks before the damage.
Status ExportData(const ProcessorState& state, int package_fd, int out_fd);

}  // namespace sealdrop
