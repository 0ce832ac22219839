// The TPM backend's cost per private-key operation, next to the soft
// backend's (make bench-tpm). Starts its own swtpm with an EK certificate.
//
//   sign    the inner TLS handshake's CertificateVerify: ECDSA P-256 over a
//           SHA-256 digest (EcPrivateKey::Sign), TPM2_Sign in the TPM
//   unwrap  a package key's unwrap: HPKE-P256-SHA256-A256GCM open of a
//           32-byte content key (HpkeOpen), whose one private operation is
//           TPM2_ECDH_ZGen in the TPM
//   load    loading a key file into the TPM (the processor's start-up, per key)
//
// swtpm runs the TPM in software over a loopback socket, so its figures are
// a TPM with no hardware latency; a discrete TPM chip is typically far slower
// (tens of milliseconds per ECC operation).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "crypto/ec.h"
#include "crypto/hpke.h"
#include "crypto/random.h"
#include "tpm/testing/swtpm.h"
#include "tpm/tpm.h"

namespace sealdrop {
namespace {
namespace fs = std::filesystem;

struct World {
  fs::path dir;
  std::unique_ptr<testing::Swtpm> swtpm;
  TpmKeyFile sign_file, wrap_file;
  std::optional<EcPrivateKey> tpm_sign, tpm_wrap, soft_sign, soft_wrap;
};

World*& WorldSlot() {
  static World* world = nullptr;
  return world;
}
World& TheWorld();

// The two keys loaded for good (each holds one of swtpm's three object
// slots), after the Load benchmark has run.
void LoadKeys(World& w) {
  if (w.tpm_sign) return;
  w.tpm_sign = *LoadTpmKey(w.sign_file, w.swtpm->tcti());
  w.tpm_wrap = *LoadTpmKey(w.wrap_file, w.swtpm->tcti());
}

World& TheWorld() {
  World*& w = WorldSlot();
  if (w == nullptr) {
    auto* world = new World;
    const char* tmp = std::getenv("TMPDIR");
    fs::path dir = fs::path(tmp ? tmp : "/tmp") / ("sealdrop-bench-tpm-" + std::to_string(::getpid()));
    auto t = testing::Swtpm::Start(dir / "tpm", dir / "maker");
    if (!t) {
      std::cerr << "cannot start swtpm: " << t.error().message << "\n";
      std::exit(2);
    }
    world->swtpm = std::move(*t);
    world->dir = dir;
    auto tpm = Tpm::Open(world->swtpm->tcti());
    if (!tpm) std::exit(2);
    world->sign_file = *tpm->CreateKey(TpmKeyRole::kSign);
    world->wrap_file = *tpm->CreateKey(TpmKeyRole::kDecrypt);
    world->soft_sign = *EcPrivateKey::Generate();
    world->soft_wrap = *EcPrivateKey::Generate();
    w = world;
  }
  return *w;
}

void Sign(benchmark::State& state, bool tpm) {
  LoadKeys(TheWorld());
  const EcPrivateKey& key = tpm ? *TheWorld().tpm_sign : *TheWorld().soft_sign;
  const Bytes transcript = RandomBytes(130);  // a TLS 1.3 CertificateVerify input
  for (auto _ : state) {
    auto sig = key.Sign(transcript);
    if (!sig) state.SkipWithError(sig.error().message.c_str());
    benchmark::DoNotOptimize(sig);
  }
}

void Unwrap(benchmark::State& state, bool tpm) {
  LoadKeys(TheWorld());
  const EcPrivateKey& key = tpm ? *TheWorld().tpm_wrap : *TheWorld().soft_wrap;
  const Bytes info = {'b', 'e', 'n', 'c', 'h'};
  auto sealed = HpkeSeal(key.PublicKey(), info, {}, RandomSecret(32));
  if (!sealed) {
    state.SkipWithError(sealed.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    auto cek = HpkeOpen(key, sealed->enc, info, {}, sealed->ciphertext);
    if (!cek) state.SkipWithError(cek.error().message.c_str());
    benchmark::DoNotOptimize(cek);
  }
}

void Load(benchmark::State& state) {
  World& w = TheWorld();
  for (auto _ : state) {
    auto key = LoadTpmKey(w.sign_file, w.swtpm->tcti());
    if (!key) state.SkipWithError(key.error().message.c_str());
  }
}

BENCHMARK(Load)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Sign, soft, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Sign, tpm, true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Unwrap, soft, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Unwrap, tpm, true)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sealdrop

// Runs the benchmarks, then stops swtpm and removes its state.
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (sealdrop::World* w = sealdrop::WorldSlot()) {
    w->tpm_sign.reset();
    w->tpm_wrap.reset();
    const std::filesystem::path dir = w->dir;
    delete w;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}
