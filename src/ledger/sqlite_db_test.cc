// The SQLite wrappers' statement cache: reuse, isolation between uses, the
// nested case, the cap, and that a released statement holds nothing open.
#include "ledger/sqlite_db.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace sealdrop::sqlite {
namespace {

namespace fs = std::filesystem;

class SqliteDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sealdrop-sqlite-db-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto db = Db::Open(dir_ / "t.db", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    ASSERT_TRUE(db.has_value()) << db.error().message;
    db_.emplace(std::move(*db));
    ASSERT_TRUE(db_->Exec("CREATE TABLE t(v INTEGER); INSERT INTO t VALUES (1), (2), (3);").has_value());
  }
  void TearDown() override {
    db_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Statements of this connection that are mid-execution.
  int BusyStatements() const {
    int n = 0;
    for (sqlite3_stmt* s = sqlite3_next_stmt(db_->raw(), nullptr); s != nullptr; s = sqlite3_next_stmt(db_->raw(), s))
      n += sqlite3_stmt_busy(s) ? 1 : 0;
    return n;
  }
  int Statements() const {
    int n = 0;
    for (sqlite3_stmt* s = sqlite3_next_stmt(db_->raw(), nullptr); s != nullptr; s = sqlite3_next_stmt(db_->raw(), s))
      ++n;
    return n;
  }

  fs::path dir_;
  std::optional<Db> db_;
};

TEST_F(SqliteDbTest, ATextIsCompiledOnceAndReused) {
  for (int i = 0; i < 5; ++i) {
    auto s = db_->Prepare("SELECT COUNT(*) FROM t WHERE v > ?1");
    ASSERT_TRUE(s.has_value());
    s->Bind(1, int64_t{i});
    ASSERT_TRUE(*s->Step());
    EXPECT_EQ(s->ColumnInt(0), std::max(0, 3 - i));
  }
  EXPECT_EQ(db_->cached_statements(), 1u);
  EXPECT_EQ(Statements(), 1);
}

TEST_F(SqliteDbTest, AReusedStatementStartsUnboundAndFromTheFirstRow) {
  {
    auto s = db_->Prepare("SELECT ?1, v FROM t ORDER BY v");
    ASSERT_TRUE(s.has_value());
    s->Bind(1, "secret");
    ASSERT_TRUE(*s->Step());
    EXPECT_EQ(s->ColumnText(0), "secret");
    ASSERT_TRUE(*s->Step());  // left at row 2 of 3
  }
  auto s = db_->Prepare("SELECT ?1, v FROM t ORDER BY v");
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE(*s->Step());
  EXPECT_EQ(s->ColumnText(0), "");  // NULL: the last use's value is gone
  EXPECT_EQ(s->ColumnInt(1), 1);    // from the top again
}

TEST_F(SqliteDbTest, AReleasedStatementHoldsNoReadOpen) {
  {
    auto s = db_->Prepare("SELECT v FROM t");
    ASSERT_TRUE(s.has_value());
    ASSERT_TRUE(*s->Step());
    EXPECT_EQ(BusyStatements(), 1);
  }
  EXPECT_EQ(BusyStatements(), 0);
  // No read transaction is left open: the connection is in autocommit and
  // can drop the table it was reading.
  EXPECT_NE(sqlite3_get_autocommit(db_->raw()), 0);
  EXPECT_TRUE(db_->Exec("DROP TABLE t").has_value());
}

TEST_F(SqliteDbTest, TheSameTextNestedGetsItsOwnStatement) {
  auto outer = db_->Prepare("SELECT v FROM t ORDER BY v");
  ASSERT_TRUE(outer.has_value());
  int64_t sum = 0;
  while (*outer->Step()) {
    auto inner = db_->Prepare("SELECT v FROM t ORDER BY v");
    ASSERT_TRUE(inner.has_value());
    while (*inner->Step()) sum += outer->ColumnInt(0) * inner->ColumnInt(0);
  }
  EXPECT_EQ(sum, 36);  // (1+2+3)^2: neither walk disturbed the other
  EXPECT_EQ(db_->cached_statements(), 1u);
}

TEST_F(SqliteDbTest, AMovedStatementIsReturnedOnce) {
  auto a = db_->Prepare("SELECT 1");
  ASSERT_TRUE(a.has_value());
  Statement b = std::move(*a);
  auto c = db_->Prepare("SELECT 1");  // b holds the cached one: c is fresh
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(Statements(), 2);
  ASSERT_TRUE(*b.Step());
  ASSERT_TRUE(*c->Step());
  c = std::move(b);  // the fresh one is finalized, the cached one kept
  EXPECT_EQ(Statements(), 1);
  ASSERT_TRUE(*c->Step() == false);
}

TEST_F(SqliteDbTest, TheCacheIsCapped) {
  for (size_t i = 0; i < Db::kMaxCachedStatements + 10; ++i) {
    auto s = db_->Prepare("SELECT " + std::to_string(i));
    ASSERT_TRUE(s.has_value());
    ASSERT_TRUE(*s->Step());
    EXPECT_EQ(s->ColumnInt(0), static_cast<int64_t>(i));
  }
  EXPECT_EQ(db_->cached_statements(), Db::kMaxCachedStatements);
  EXPECT_EQ(Statements(), static_cast<int>(Db::kMaxCachedStatements));
}

TEST_F(SqliteDbTest, BadSqlIsAnErrorAndNotCached) {
  auto s = db_->Prepare("SELEC v FROM t");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kIo);
  EXPECT_FALSE(db_->Prepare("").has_value());
  EXPECT_FALSE(db_->Prepare("SELECT nope FROM t").has_value());
  EXPECT_EQ(db_->cached_statements(), 0u);
  EXPECT_EQ(Statements(), 0);
}

TEST_F(SqliteDbTest, ACachedStatementFollowsASchemaChange) {
  {
    auto s = db_->Prepare("SELECT * FROM t");
    ASSERT_TRUE(s.has_value());
    ASSERT_TRUE(*s->Step());
  }
  ASSERT_TRUE(db_->Exec("ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 7").has_value());
  auto s = db_->Prepare("SELECT * FROM t");
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE(*s->Step());
  EXPECT_EQ(s->ColumnInt(1), 7);
}

TEST_F(SqliteDbTest, MovingTheConnectionKeepsItsCache) {
  { ASSERT_TRUE(db_->Prepare("SELECT v FROM t").has_value()); }
  Db moved = std::move(*db_);
  EXPECT_EQ(moved.cached_statements(), 1u);
  auto s = moved.Prepare("SELECT v FROM t");
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE(*s->Step());
  EXPECT_EQ(s->ColumnInt(0), 1);
}

}  // namespace
}  // namespace sealdrop::sqlite
