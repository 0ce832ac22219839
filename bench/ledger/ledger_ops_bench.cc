// What one call into the SQLite ledger costs: the reads the server makes on
// every login and order (token check, balance, program and revocation
// lookups), a whole charge (a write transaction with its audit entry and
// fsync), and opening a ledger. The database lives in TMPDIR (default /tmp);
// put TMPDIR on the disk the server would use to see its fsync cost.
//
// Then charges per second from 1, 8 and 64 threads at once, each charging
// with keys of its own and a real ES256 receipt signature, on a fresh ledger
// file (synchronous=FULL): with group commit (the default batch bound) and
// without it (a batch bound of 1, every charge its own COMMIT and fsync), and
// the ratio of the two.
//
//   make bench-ledger      or      build/bench/ledger/ledger_ops_bench
//   --throughput=only      the charges-per-second table alone
//   --throughput=no        the per-call benchmarks alone
//   --throughput_seconds=N how long each cell of the table runs (default 2)
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "crypto/ec.h"
#include "crypto/jws.h"
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

// Charges per second ------------------------------------------------------

struct Throughput {
  double charges_per_second = 0;
  double mean_batch = 0;  // writes per transaction
};

// `threads` threads charge for `seconds` on a fresh ledger with the given
// batch bound; each charge signs its receipt as the server does.
Throughput MeasureCharges(int threads, size_t max_batch, double seconds,
                          const EcPrivateKey& key) {
  std::string tmpl = (fs::temp_directory_path() / "sealdrop-ledger-tput-XXXXXX").string();
  Require(::mkdtemp(tmpl.data()) != nullptr, "cannot make a temporary folder");
  const fs::path dir = tmpl;
  std::atomic<uint64_t> writes{0}, batches{0};
  Throughput out;
  {
    SqliteLedgerOptions options;
    options.max_batch = max_batch;
    options.on_batch = [&](size_t n, bool) {
      writes += n;
      batches += 1;
    };
    auto opened = OpenSqliteLedger(dir / "ledger.db", true, options);
    Require(opened.has_value(), "cannot create the ledger");
    Ledger& ledger = **opened;
    Require(ledger.AddUser("alice", "correct horse", 1'000'000'000'000).has_value(), "AddUser");
    ProgramRecord p;
    p.name = "program";
    p.version = "1.0";
    p.price = 1;
    p.kind = "data";
    p.path = "/srv/program";
    p.size = 1;
    p.sha256 = std::string(64, 'a');
    auto program = ledger.AddProgram(p);
    Require(program.has_value(), "AddProgram");
    const std::string kid = key.PublicKey().KeyId();
    writes = 0;
    batches = 0;

    std::atomic<bool> go{false}, stop{false};
    std::atomic<uint64_t> charges{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        while (!go.load()) std::this_thread::yield();
        for (uint64_t n = 0; !stop.load(); ++n) {
          ChargeRequest r;
          r.user = "alice";
          r.idempotency_key = "t" + std::to_string(t) + "-" + std::to_string(n);
          r.program_id = program->id;
          r.device_serial = "dev-1";
          r.package_digest = std::string(64, 'b');
          r.again = true;
          r.sign_receipt = [&](const std::string& id, int64_t at,
                               int64_t amount) -> Result<std::string> {
            std::string claims = "{\"receipt_id\":\"" + id + "\",\"issued_at\":" +
                                 std::to_string(at) + ",\"amount\":" + std::to_string(amount) + "}";
            return JwsSign(key, kid, "sealdrop-receipt+jws", AsBytes(claims));
          };
          auto c = ledger.Charge(r);
          Require(c.has_value(), "Charge: " + (c ? std::string() : c.error().message));
          charges += 1;
        }
      });
    }
    auto start = std::chrono::steady_clock::now();
    go = true;
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : pool) t.join();
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.charges_per_second = static_cast<double>(charges.load()) / elapsed;
    out.mean_batch = batches.load() == 0 ? 0
                                          : static_cast<double>(writes.load()) /
                                                static_cast<double>(batches.load());
    Require(ledger.VerifyAudit().has_value(), "the audit chain does not verify");
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return out;
}

void PrintThroughputTable(double seconds) {
  auto key = EcPrivateKey::Generate();
  Require(key.has_value(), "cannot make a signing key");
  const size_t grouped = SqliteLedgerOptions{}.max_batch;
  std::printf("\nCharges per second, ledger in %s (synchronous=FULL), %.1f s per cell,\n"
              "each charge with an ES256 receipt signature\n\n",
              fs::temp_directory_path().c_str(), seconds);
  const std::string on_title = "group commit (max " + std::to_string(grouped) + ")";
  std::printf("%8s  %26s  %26s  %7s\n", "threads", on_title.c_str(), "one commit per charge",
              "ratio");
  for (int threads : {1, 8, 64}) {
    Throughput on = MeasureCharges(threads, grouped, seconds, *key);
    Throughput off = MeasureCharges(threads, 1, seconds, *key);
    std::printf("%8d  %10.0f/s (batch %5.1f)  %10.0f/s (batch %5.1f)  %6.2fx\n", threads,
                on.charges_per_second, on.mean_batch, off.charges_per_second, off.mean_batch,
                on.charges_per_second / off.charges_per_second);
    std::fflush(stdout);
  }
}

}  // namespace
}  // namespace sealdrop

int main(int argc, char** argv) {
  // Our own flags first; Google Benchmark refuses any it does not know.
  std::string_view throughput = "yes";
  double seconds = 2.0;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--throughput=")) {
      throughput = arg.substr(std::strlen("--throughput="));
    } else if (arg.starts_with("--throughput_seconds=")) {
      seconds = std::atof(argv[i] + std::strlen("--throughput_seconds="));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  if ((throughput != "yes" && throughput != "no" && throughput != "only") || !(seconds > 0)) {
    std::fprintf(stderr, "ledger_ops_bench: --throughput takes yes, no or only, and "
                         "--throughput_seconds a positive number\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (throughput != "only") {
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    delete &sealdrop::S();
  }
  if (throughput != "no") sealdrop::PrintThroughputTable(seconds);
  return 0;
}
