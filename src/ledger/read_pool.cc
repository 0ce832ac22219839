#include "ledger/read_pool.h"

#include <algorithm>
#include <utility>

namespace sealdrop {

ReadPool::ReadPool(Opener open, size_t max) : open_(std::move(open)), max_(std::max<size_t>(max, 1)) {
  idle_.reserve(max_);
}

ReadPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), db_(std::move(other.db_)) {}

ReadPool::Lease::~Lease() {
  if (pool_ != nullptr && db_ != nullptr) pool_->Return(std::move(db_));
}

Result<ReadPool::Lease> ReadPool::Acquire() {
  {
    std::unique_lock lock(mu_);
    freed_.wait(lock, [&] { return !idle_.empty() || open_count_ < max_; });
    if (!idle_.empty()) {
      std::unique_ptr<sqlite::Db> db = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(db));
    }
    ++open_count_;  // reserved now, opened below without holding the lock
  }
  auto opened = [&]() -> Result<std::unique_ptr<sqlite::Db>> {
    try {
      SEALDROP_ASSIGN(sqlite::Db db, open_());
      return std::make_unique<sqlite::Db>(std::move(db));
    } catch (...) {
      return Fail(ErrorCode::kInternal, "unexpected failure opening a ledger read connection");
    }
  }();
  if (!opened) {
    std::lock_guard lock(mu_);
    --open_count_;
    freed_.notify_one();  // whoever waits for the slot may try in turn
    return std::unexpected(opened.error());
  }
  return Lease(this, std::move(*opened));
}

void ReadPool::Return(std::unique_ptr<sqlite::Db> db) {
  std::lock_guard lock(mu_);
  // Cannot allocate: capacity for every connection was reserved up front.
  idle_.push_back(std::move(db));
  freed_.notify_one();
}

}  // namespace sealdrop
