// A software TPM (swtpm) for tests: its own state directory, started on a
// free loopback port, stopped (and its state removed) by the destructor.
// Driven through scripts/swtpm, which the demo and the shell tests use.
//
// With an EK maker, the state is first made by swtpm_setup with an RSA 2048
// EK and an EK certificate signed by that maker's local CA (swtpm-localca,
// its own directory): the "TPM maker" of the tests. Without one the TPM has
// no EK certificate.
//
// Thread safety: none. Needs swtpm, swtpm_setup and swtpm-localca
// (Debian swtpm, swtpm-tools).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "base/error.h"

namespace sealdrop::testing {

class Swtpm {
 public:
  // `ek_maker_dir`: the local CA's directory (made on first use), or empty
  // for a TPM without an EK certificate.
  static Result<std::unique_ptr<Swtpm>> Start(const std::filesystem::path& dir,
                                              const std::filesystem::path& ek_maker_dir = {});
  ~Swtpm();
  Swtpm(const Swtpm&) = delete;
  Swtpm& operator=(const Swtpm&) = delete;

  // "swtpm:host=127.0.0.1,port=N"
  const std::string& tcti() const { return tcti_; }
  // The maker's CA certificate (PEM) that signed the EK certificate: an
  // intermediate under maker_root().
  std::filesystem::path maker_certificate() const;
  // The maker's self-signed root (PEM).
  std::filesystem::path maker_root() const;

  // Stops the process (the state stays); Restart starts it again on the
  // same port, as a power cycle.
  void Stop();
  Status Restart();

 private:
  Swtpm() = default;

  std::filesystem::path dir_, maker_dir_;
  bool running_ = false;
  std::string tcti_;
};

}  // namespace sealdrop::testing
