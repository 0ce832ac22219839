#include "ledger/password.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <semaphore>

namespace sealdrop {
namespace {
// argon2id with OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1):
// libsodium's INTERACTIVE preset needs 64 MiB per hash, which would put every
// login, and the server's peak memory, above its 64 MiB budget. The stored
// string records its parameters, so hashes made with other limits still
// verify.
constexpr unsigned long long kOpsLimit = 2;
constexpr size_t kMemLimit = 19 * 1024 * 1024;


// libsodium picks its fastest implementations in sodium_init(); calling any
// function before that is undefined, and failure means no usable CSPRNG.
void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) {
      std::fputs("sealdrop: libsodium failed to initialise\n", stderr);
      std::abort();
    }
  });
}

// At most this many hashes at once in the process: each holds kMemLimit,
// and a burst of logins on a server's ledger threads would otherwise hold it
// once per thread (8 x 19 MiB) for no gain in throughput on fewer cores.
constexpr std::ptrdiff_t kMaxConcurrentHashes = 2;
std::counting_semaphore<kMaxConcurrentHashes>& HashSlots() {
  static std::counting_semaphore<kMaxConcurrentHashes> slots(kMaxConcurrentHashes);
  return slots;
}
struct HashSlot {
  HashSlot() { HashSlots().acquire(); }
  ~HashSlot() { HashSlots().release(); }
  HashSlot(const HashSlot&) = delete;
  HashSlot& operator=(const HashSlot&) = delete;
};

const std::string& DummyHash() {
  // Hashed once per process from random bytes, so no password matches it and
  // its parameters are exactly those of real hashes.
  static const std::string hash = [] {
    EnsureSodium();
    unsigned char random_password[32];
    randombytes_buf(random_password, sizeof random_password);
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(out, reinterpret_cast<const char*>(random_password),
                          sizeof random_password, kOpsLimit,
                          kMemLimit) != 0) {
      return std::string();
    }
    return std::string(out);
  }();
  return hash;
}

}  // namespace

Result<std::string> HashPassword(std::string_view password) {
  EnsureSodium();
  if (password.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "the password is empty; choose a non-empty password");
  }
  if (password.size() > kMaxPasswordSize) {
    return Fail(ErrorCode::kInvalidArgument, "the password is longer than " +
                                                 std::to_string(kMaxPasswordSize) +
                                                 " bytes; choose a shorter one");
  }
  char out[crypto_pwhash_STRBYTES];
  HashSlot slot;
  if (crypto_pwhash_str(out, password.data(), password.size(),
                        kOpsLimit,
                        kMemLimit) != 0) {
    return Fail(ErrorCode::kInternal,
                "argon2id hashing failed; the server may be out of memory");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view stored_hash, std::string_view password) {
  EnsureSodium();
  if (password.size() > kMaxPasswordSize) return false;
  // crypto_pwhash_str_verify wants a NUL-terminated string of bounded size.
  if (stored_hash.empty() || stored_hash.size() >= crypto_pwhash_STRBYTES) return false;
  if (std::memchr(stored_hash.data(), '\0', stored_hash.size()) != nullptr) return false;
  char hash[crypto_pwhash_STRBYTES] = {};
  std::memcpy(hash, stored_hash.data(), stored_hash.size());
  HashSlot slot;
  return crypto_pwhash_str_verify(hash, password.data(), password.size()) == 0;
}

void PreparePasswordHashing() { (void)DummyHash(); }

void VerifyPasswordAgainstDummy(std::string_view password) {
  // Same code path as a real check, including its early exits, so both cost
  // the same for every input.
  (void)VerifyPassword(DummyHash(), password);
}

}  // namespace sealdrop
