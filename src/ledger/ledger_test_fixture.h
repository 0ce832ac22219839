// Shared set-up for the SQLite ledger tests: a fresh ledger in its own
// temporary directory, removed afterwards, and raw SQL access to its file.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "ledger/sqlite_ledger.h"

namespace sealdrop::ledger_testing {

namespace fs = std::filesystem;

inline constexpr char kDigest[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
inline constexpr char kPkgDigest[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

// Runs SQL on the file through a separate connection, as someone with write
// access to the disk could. Returns SQLite's error message, or "" on success.
inline std::string RawExec(const fs::path& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::string m = sqlite3_errmsg(raw);
    sqlite3_close(raw);
    return m;
  }
  sqlite3_busy_timeout(raw, 5000);
  char* err = nullptr;
  std::string out;
  if (sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    out = err != nullptr ? err : "error";
    sqlite3_free(err);
  }
  sqlite3_close(raw);
  return out;
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sealdrop-ledger-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "ledger.db";
    Reopen(true);
  }

  void TearDown() override {
    ledger_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Reopen(bool create) {
    ledger_.reset();
    auto opened = OpenSqliteLedger(path_, create);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
  }

  ProgramRecord AddProgram(const std::string& name, const std::string& version, int64_t price) {
    ProgramRecord p;
    p.name = name;
    p.version = version;
    p.price = price;
    p.kind = "data";
    p.path = "/srv/programs/" + name + "-" + version;
    p.size = 1234;
    p.sha256 = kDigest;
    auto added = ledger_->AddProgram(p);
    EXPECT_TRUE(added.has_value()) << added.error().message;
    return added.value_or(ProgramRecord{});
  }

  static ChargeRequest MakeCharge(const std::string& user, const std::string& key,
                                  int64_t program_id, const std::string& serial = "dev-1") {
    ChargeRequest r;
    r.user = user;
    r.idempotency_key = key;
    r.program_id = program_id;
    r.device_serial = serial;
    r.package_digest = kPkgDigest;
    r.sign_receipt = [](const std::string& id, int64_t at, int64_t) -> Result<std::string> {
      return "jws." + id + "." + std::to_string(at);
    };
    return r;
  }

  size_t AuditSize() {
    auto log = ledger_->AuditLog();
    EXPECT_TRUE(log.has_value());
    return log ? log->size() : 0;
  }

  int64_t BalanceOf(const std::string& user) {
    auto b = ledger_->Balance(user);
    EXPECT_TRUE(b.has_value()) << b.error().message;
    return b.value_or(-1);
  }

  fs::path dir_;
  fs::path path_;
  std::unique_ptr<Ledger> ledger_;
};

}  // namespace sealdrop::ledger_testing
