#include "ledger/testing/fault_vfs.h"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace sealdrop::testing {
namespace {

std::atomic<bool> armed{false};
std::atomic<bool> fired{false};
std::atomic<int> kind{0};
std::atomic<uint64_t> skip{0};
std::atomic<uint64_t> seen{0};

sqlite3_vfs* base_vfs = nullptr;
sqlite3_vfs fault_vfs;

struct FaultFile {
  sqlite3_file base;
  sqlite3_file* real;  // the wrapped file, allocated right after this struct
};

sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->real; }

// True if this operation is the one that must fail. Writes and truncates
// count for kFull and kIoError, syncs for kSync.
bool Strike(bool is_sync) {
  if (!armed.load()) return false;
  const bool sync_fault = static_cast<DiskFault>(kind.load()) == DiskFault::kSync;
  if (is_sync != sync_fault) return false;
  seen.fetch_add(1);
  uint64_t left = skip.load();
  if (left > 0) {
    skip.store(left - 1);
    return false;
  }
  armed.store(false);
  fired.store(true);
  return true;
}

int Write(sqlite3_file* f, const void* p, int n, sqlite3_int64 off) {
  if (Strike(false))
    return static_cast<DiskFault>(kind.load()) == DiskFault::kFull ? SQLITE_FULL : SQLITE_IOERR_WRITE;
  return Real(f)->pMethods->xWrite(Real(f), p, n, off);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (Strike(false)) return SQLITE_IOERR_TRUNCATE;
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int Sync(sqlite3_file* f, int flags) {
  if (Strike(true)) return SQLITE_IOERR_FSYNC;
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
int Read(sqlite3_file* f, void* p, int n, sqlite3_int64 off) { return Real(f)->pMethods->xRead(Real(f), p, n, off); }
int FileSize(sqlite3_file* f, sqlite3_int64* size) { return Real(f)->pMethods->xFileSize(Real(f), size); }
int Lock(sqlite3_file* f, int l) { return Real(f)->pMethods->xLock(Real(f), l); }
int Unlock(sqlite3_file* f, int l) { return Real(f)->pMethods->xUnlock(Real(f), l); }
int CheckReserved(sqlite3_file* f, int* out) { return Real(f)->pMethods->xCheckReservedLock(Real(f), out); }
int FileControl(sqlite3_file* f, int op, void* arg) { return Real(f)->pMethods->xFileControl(Real(f), op, arg); }
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); }
int ShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), page, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) { return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags); }
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }
int Fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) { return Real(f)->pMethods->xFetch(Real(f), off, n, out); }
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) { return Real(f)->pMethods->xUnfetch(Real(f), off, p); }

const sqlite3_io_methods kMethods = {
    3,        Close,    Read,   Write,     Truncate, Sync,       FileSize,
    Lock,     Unlock,   CheckReserved, FileControl, SectorSize, DeviceCharacteristics,
    ShmMap,   ShmLock,  ShmBarrier, ShmUnmap, Fetch, Unfetch};

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = reinterpret_cast<FaultFile*>(file);
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
  // SQLite calls xClose only if pMethods is set; leave it unset on failure.
  f->base.pMethods = rc == SQLITE_OK && f->real->pMethods != nullptr ? &kMethods : nullptr;
  return rc;
}

}  // namespace

void FaultVfs::Install() {
  static std::once_flag once;
  std::call_once(once, [] {
    base_vfs = sqlite3_vfs_find(nullptr);
    fault_vfs = *base_vfs;
    fault_vfs.zName = "sealdrop-fault";
    fault_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + base_vfs->szOsFile;
    fault_vfs.xOpen = Open;
    fault_vfs.pNext = nullptr;
    sqlite3_vfs_register(&fault_vfs, /*makeDflt=*/1);
  });
}

void FaultVfs::Arm(DiskFault fault, uint64_t n) {
  kind.store(static_cast<int>(fault));
  skip.store(n);
  seen.store(0);
  fired.store(false);
  armed.store(true);
}

void FaultVfs::Disarm() { armed.store(false); }
bool FaultVfs::Fired() { return fired.load(); }
uint64_t FaultVfs::Seen() { return seen.load(); }

}  // namespace sealdrop::testing
