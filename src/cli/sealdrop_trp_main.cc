// sealdrop-trp: the tamper-resistant processor (soft or TPM 2.0 backend).
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include <sys/prctl.h>

#include "base/daemon.h"
#include "base/files.h"
#include "base/log.h"
#include "tpm/enrol.h"
#include "trp/confine.h"
#include "trp/server.h"
#include "trp/state.h"

using namespace sealdrop;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  TuneAllocatorForStreaming();
  cli::EnsureStandardDescriptors();
  CLI::App app{"sealdrop-trp: the tamper-resistant processor that holds a device's keys, ends the\n"
               "inner channel, keeps licences and runs programs. Its keys live in files sealed in\n"
               "STATE (--backend soft) or in a TPM 2.0 (--backend tpm, docs/tpm.md)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sealdrop-trp ") + std::string(sealdrop::cli::Version()));
  std::string state;

  auto* init = app.add_subcommand("init", "Create a processor: fresh keys, and CSRs (soft) or an enrolment request (tpm) for the manufacturer CA; prints the device serial");
  init->add_option("STATE", state, "State directory (must be new or empty)")->required();
  InitOptions init_options;
  init->add_option("--backend", init_options.backend, "Where the keys live: soft (sealed files in STATE) or tpm")
      ->capture_default_str()
      ->check(CLI::IsMember({"soft", "tpm"}));
  init->add_option("--tcti", init_options.tcti,
                   "tpm: the TPM's TCTI, e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321 (default " +
                       std::string(kDefaultTcti) + ")");

  std::string challenge, response_out;
  auto* activate = app.add_subcommand("activate", "tpm: answer the manufacturer CA's enrolment challenge with the TPM (credential activation)");
  activate->add_option("STATE", state, "State directory")->required();
  activate->add_option("--challenge", challenge, "The challenge from 'sealdrop-ca enrol --request'")->required();
  activate->add_option("--out", response_out, "Where to write the response for 'sealdrop-ca enrol --response'")->required();

  std::vector<std::string> certs, trust;
  auto* install = app.add_subcommand("install", "Install the issued certificates and the pinned vendor roots");
  install->add_option("STATE", state, "State directory")->required();
  install->add_option("--cert", certs, "Certificate issued for identity.csr or keywrap.csr (PEM, may include the chain)");
  install->add_option("--trust", trust, "Vendor root CA certificate to pin (PEM); may be given several times");

  std::string socket;
  auto* serve = app.add_subcommand(
      "serve", "Serve the host on a Unix socket until SIGINT or SIGTERM (SIGHUP is logged and ignored). Logs are "
               "JSON lines on standard error");
  serve->add_option("STATE", state, "State directory")->required();
  serve->add_option("--socket", socket, "Unix socket path")->required();
  int idle_timeout = kDefaultProcessorIdleSeconds;
  serve->add_option("--idle-timeout", idle_timeout, "Seconds a connection may send nothing before it is closed")
      ->capture_default_str()
      ->check(cli::WholeNumber(1, 86400));

  bool as_json = false;
  auto* info = app.add_subcommand("info", "Show the processor's serial, keys and installed material");
  info->add_option("STATE", state, "State directory")->required();
  info->add_flag("--json", as_json, "Print JSON");

  const char* prog = "sealdrop-trp";
  if (auto done = cli::Parse(app, argc, argv, prog)) return *done;

  if (*init) {
    if (init_options.backend != "tpm" && !init_options.tcti.empty())
      return cli::Report(prog, {ErrorCode::kInvalidArgument, "--tcti applies to --backend tpm only"});
    auto r = InitProcessorState(state, init_options);
    if (!r) return cli::Report(prog, r.error());
    std::cout << r->serial << "\n";
    if (init_options.backend == "tpm")
      std::cerr << "created processor " << r->serial << " in " << state << ", keys in the TPM\n"
                << "next: give " << r->enrol_request.string()
                << " to the manufacturer CA ('sealdrop-ca enrol --request'), then run 'sealdrop-trp activate' on "
                   "its challenge\n";
    else
      std::cerr << "created processor " << r->serial << " in " << state << "\n"
                << "next: have the manufacturer CA issue " << r->identity_csr.string() << " and "
                << r->keywrap_csr.string() << " (profile device), then run 'sealdrop-trp install'\n";
    return 0;
  }
  if (*activate) {
    auto text = ReadTextFile(challenge, kMaxEnrolDocument + 1);
    if (!text) return cli::Report(prog, text.error());
    auto response = ActivateProcessor(state, *text);
    if (!response) return cli::Report(prog, response.error());
    auto written = WriteFileAtomic(response_out, *response, 0600);
    if (!written) return cli::Report(prog, written.error());
    std::cerr << "the TPM answered the challenge; give " << response_out
              << " to the manufacturer CA ('sealdrop-ca enrol --response')\n";
    return 0;
  }
  if (*install) {
    if (certs.empty() && trust.empty())
      return cli::Report(prog, {ErrorCode::kInvalidArgument, "install needs at least one --cert or --trust"});
    std::vector<fs::path> c(certs.begin(), certs.end()), t(trust.begin(), trust.end());
    auto st = InstallProcessorFiles(state, c, t);
    if (!st) return cli::Report(prog, st.error());
    return 0;
  }
  if (*info) {
    auto i = ReadProcessorInfo(state);
    if (!i) return cli::Report(prog, i.error());
    nlohmann::json j = {{"serial", i->serial},
                        {"backend", i->backend},
                        {"identity_key_id", i->identity_key_id},
                        {"keywrap_key_id", i->keywrap_key_id},
                        {"identity_certificate", i->identity_installed},
                        {"keywrap_certificate", i->keywrap_installed},
                        {"identity_not_after", i->identity_not_after},
                        {"vendor_roots", i->vendor_roots}};
    if (!i->tcti.empty()) j["tcti"] = i->tcti;
    if (as_json) {
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "serial:               " << i->serial << "\n"
                << "backend:              " << i->backend << (i->tcti.empty() ? "" : " (" + i->tcti + ")") << "\n"
                << "identity key id:      " << i->identity_key_id << "\n"
                << "key-wrap key id:      " << i->keywrap_key_id << "\n"
                << "identity certificate: " << (i->identity_installed ? "installed, valid until " + i->identity_not_after : "missing") << "\n"
                << "key-wrap certificate: " << (i->keywrap_installed ? "installed" : "missing") << "\n"
                << "pinned vendor roots:  " << i->vendor_roots << "\n";
    }
    return 0;
  }
  if (*serve) {
    SetLogProgram(prog);
    const auto& stop = cli::StopFlag();
    // Installed before anything else: SIGHUP's default action would end the
    // processor and leave its socket file behind.
    const auto& reload = ReloadRequests();
    // Before any key is in memory: hide the state from the programs this
    // processor will run, then make the daemon non-dumpable (no core dumps,
    // no same-uid ptrace or /proc reads of its memory).
    {
      std::error_code ec;
      fs::path st = fs::weakly_canonical(state, ec), sock = fs::weakly_canonical(socket, ec);
      if (sock.string().rfind(st.string() + "/", 0) == 0)
        return cli::Report(prog, {ErrorCode::kInvalidArgument, "the socket must be outside the state directory"});
    }
    auto confined = ConfineStateDirectory(state);
    if (!confined)
      Log(LogLevel::kWarning, "not_confined",
          {{"detail", confined.error().message + "; downloads work, but programs will not be run"}});
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    auto ps = ProcessorState::Load(confined ? confined->state : fs::path(state), state);
    if (ps) ps->set_confined(confined.has_value());
    if (!ps) return cli::Report(prog, ps.error());
    auto st = ServeProcessor(*ps, socket, stop, idle_timeout, &reload);
    if (!st) return cli::Report(prog, st.error());
    return 0;
  }
  return cli::kExitUsage;
}
