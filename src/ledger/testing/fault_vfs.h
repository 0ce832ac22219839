// A SQLite VFS for tests that fails a chosen write, after LevelDB's fault
// injection Env: it wraps the default VFS, counts every write, truncate and
// sync made to any file, and makes the Nth one fail with the chosen error
// (disk full, I/O error, failed fsync), once. Installed as the default VFS, so
// the product's own OpenSqliteLedger uses it unchanged.
//
// Thread safety: the counters are atomics; arm and disarm it between
// operations, not during them.
#pragma once

#include <cstdint>

namespace sealdrop::testing {

enum class DiskFault {
  kFull,     // SQLITE_FULL from a write (ENOSPC)
  kIoError,  // SQLITE_IOERR_WRITE from a write
  kSync,     // SQLITE_IOERR_FSYNC from a sync
};

class FaultVfs {
 public:
  // Registers the wrapper as SQLite's default VFS (once per process).
  static void Install();
  // The next `skip` matching operations succeed; the one after fails.
  static void Arm(DiskFault fault, uint64_t skip);
  static void Disarm();
  // Whether the armed fault has fired since Arm.
  static bool Fired();
  // Matching operations counted since Arm (to find how many there are).
  static uint64_t Seen();
};

}  // namespace sealdrop::testing
