// What the second path's TLS 1.3 handshake costs in CPU, both ends in one
// thread over memory (no sockets): making each end's channel, and a whole
// handshake from the ClientHello to both ends done, chains checked by the
// policies the processor and the server use. Soft keys (P-256), the CAs and
// identities of server/testing/world.h.
//
//   make bench-tls      or      build/bench/tls/inner_tls_bench
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "server/testing/world.h"
#include "protocol/tls_channel.h"

namespace sealdrop {
namespace {

struct Setup {
  std::unique_ptr<testing::World> world = testing::World::Create(1000);
  testing::Device device = world->MakeDevice({"bench-device"});
};

Setup& S() {
  static Setup* s = new Setup;  // main deletes it
  return *s;
}

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "inner_tls_bench: %s\n", what);
    std::exit(2);
  }
}

void BM_MakeClientChannel(benchmark::State& state) {
  for (auto _ : state) {
    auto c = MakeTlsChannel(S().device.identity.tls, S().world->ProcessorPolicy(), false);
    Require(c.has_value(), "client channel");
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_MakeClientChannel)->Unit(benchmark::kMicrosecond);

void BM_MakeServerChannel(benchmark::State& state) {
  for (auto _ : state) {
    auto c = MakeTlsChannel(S().world->server.identity, S().world->ServerPolicy(), true);
    Require(c.has_value(), "server channel");
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_MakeServerChannel)->Unit(benchmark::kMicrosecond);

// Both ends, from making the channels to both handshakes done.
void BM_Handshake(benchmark::State& state) {
  for (auto _ : state) {
    auto client = MakeTlsChannel(S().device.identity.tls, S().world->ProcessorPolicy(), false);
    auto server = MakeTlsChannel(S().world->server.identity, S().world->ServerPolicy(), true);
    Require(client && server, "channels");
    Require((*client)->Start().has_value(), "client start");
    for (int round = 0; round < 10 && !((*client)->handshake_done() && (*server)->handshake_done()); ++round) {
      Require((*server)->Feed((*client)->TakeOutgoing()).has_value(), "server feed");
      Require((*client)->Feed((*server)->TakeOutgoing()).has_value(), "client feed");
    }
    Require((*client)->handshake_done() && (*server)->handshake_done(), "handshake did not finish");
  }
}
BENCHMARK(BM_Handshake)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sealdrop

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  sealdrop::S();  // the CAs and identities, outside the timings
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  delete &sealdrop::S();
  return 0;
}
