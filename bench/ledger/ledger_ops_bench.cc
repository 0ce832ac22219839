// What one call into the SQLite ledger costs: the reads the server makes on
// every login and order (token check, balance, program and revocation
// lookups), a whole charge (a write transaction with its audit entry and
// fsync), and opening a ledger. The database lives in TMPDIR (default /tmp);
// put TMPDIR on the disk the server would use to see its fsync cost.
//
//   make bench-ledger      or      build/bench/ledger/ledger_ops_bench
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "ledger/sqlite_ledger.h"

namespace sealdrop {
namespace {

namespace fs = std::filesystem;

void Require(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "ledger_ops_bench: %s\n", what.c_str());
    std::exit(2);
  }
}

struct Setup {
  fs::path dir;
  std::unique_ptr<Ledger> ledger;
  std::string token;
  int64_t program_id = 0;

  Setup() {
    std::string tmpl = (fs::temp_directory_path() / "sealdrop-ledger-bench-XXXXXX").string();
    Require(::mkdtemp(tmpl.data()) != nullptr, "cannot make a temporary folder");
    dir = tmpl;
    auto l = OpenSqliteLedger(dir / "ledger.db", true);
    Require(l.has_value(), "cannot create the ledger");
    ledger = std::move(*l);
    Require(ledger->AddUser("alice", "correct horse", 1'000'000'000).has_value(), "AddUser");
    auto t = ledger->IssueToken("alice", 3600);
    Require(t.has_value(), "IssueToken");
    token = *t;
    for (int i = 0; i < 20; ++i) {
      ProgramRecord p;
      p.name = "program" + std::to_string(i);
      p.version = "1.0";
      p.price = 1;
      p.kind = "data";
      p.path = "/srv/program";
      p.size = 1;
      p.sha256 = std::string(64, 'a');
      auto added = ledger->AddProgram(p);
      Require(added.has_value(), "AddProgram");
      program_id = added->id;
    }
    Require(ledger->RevokeDevice("dev-lost", "bench").has_value(), "RevokeDevice");
  }
  ~Setup() {
    ledger.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Setup& S() {
  static Setup* s = new Setup;  // main deletes it, removing the folder
  return *s;
}

void BM_AuthenticateToken(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(S().ledger->AuthenticateToken("alice", S().token));
}
BENCHMARK(BM_AuthenticateToken);

void BM_Balance(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(S().ledger->Balance("alice"));
}
BENCHMARK(BM_Balance);

void BM_FindProgram(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(S().ledger->FindProgram("program7", ""));
}
BENCHMARK(BM_FindProgram);

void BM_IsDeviceRevoked(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(S().ledger->IsDeviceRevoked("dev-1"));
}
BENCHMARK(BM_IsDeviceRevoked);

void BM_Charge(benchmark::State& state) {
  int64_t n = 0;
  for (auto _ : state) {
    ChargeRequest r;
    r.user = "alice";
    r.idempotency_key = "bench-" + std::to_string(n++);
    r.program_id = S().program_id;
    r.device_serial = "dev-1";
    r.package_digest = std::string(64, 'b');
    r.again = true;  // one program bought over and over: each a second licence
    r.sign_receipt = [](const std::string& id, int64_t at, int64_t) -> Result<std::string> {
      return "jws." + id + "." + std::to_string(at);
    };
    auto c = S().ledger->Charge(r);
    Require(c.has_value(), "Charge");
  }
}
BENCHMARK(BM_Charge)->Unit(benchmark::kMicrosecond);

void BM_OpenLedger(benchmark::State& state) {
  const fs::path db = S().dir / "ledger.db";
  for (auto _ : state) {
    auto l = OpenSqliteLedger(db, false);
    Require(l.has_value(), "open");
    benchmark::DoNotOptimize(l);
  }
}
BENCHMARK(BM_OpenLedger)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sealdrop

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  delete &sealdrop::S();
  return 0;
}
