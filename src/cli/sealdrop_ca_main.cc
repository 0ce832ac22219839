// sealdrop-ca: the offline certificate authority of sealdrop's two PKIs
// (manufacturer CAs for device certificates, vendor CAs for server
// certificates). A thin shell over pki/ca.h: parse flags, call one function,
// print the result or one sentence of error.
//
// Exit status: cli/cli_common.h (docs/operations.md).
#include <CLI/CLI.hpp>

#include "cli/cli_common.h"
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/files.h"
#include "pki/ca.h"
#include "pki/cert.h"
#include "tpm/enrol.h"

namespace {

namespace fs = std::filesystem;
using sealdrop::CaIssuedCert;
using sealdrop::CertProfile;
using sealdrop::DeviceKeyRole;
using TimePoint = std::chrono::system_clock::time_point;

constexpr std::string_view kProg = "sealdrop-ca";

int Report(const sealdrop::Error& error) { return sealdrop::cli::Report(kProg, error); }

// A file or directory given on the command line is unusable.
int Failure(const std::string& message) { return Report({sealdrop::ErrorCode::kInvalidArgument, message}); }
// Flags that only make sense together.
int Usage(const std::string& message) { return sealdrop::cli::UsageError(kProg, message); }

std::string FormatTime(TimePoint time, const char* format) {
  time_t t = std::chrono::system_clock::to_time_t(time);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, format, &tm);
  return std::string(buf, n);
}
std::string Rfc3339(TimePoint time) { return FormatTime(time, "%Y-%m-%dT%H:%M:%SZ"); }
std::string Readable(TimePoint time) { return FormatTime(time, "%Y-%m-%d %H:%M UTC"); }

std::string KindOf(const CaIssuedCert& c) {
  if (c.profile == CertProfile::kServer) return "server";
  return c.role == DeviceKeyRole::kIdentity ? "device/identity" : "device/key-wrap";
}

std::string StatusOf(const CaIssuedCert& c, TimePoint now) {
  if (c.revoked) return "revoked " + Readable(c.revoked_at);
  if (now > c.not_after) return "expired";
  if (now < c.not_before) return "not yet valid";
  return "valid";
}

std::string SubjectOf(const CaIssuedCert& c) {
  std::string s = c.common_name;
  if (!c.device_serial.empty()) s += " (serial " + c.device_serial + ")";
  for (size_t i = 0; i < c.hosts.size(); ++i) s += (i == 0 ? " (" : ", ") + c.hosts[i];
  if (!c.hosts.empty()) s += ")";
  return s;
}

int RunInit(const std::string& dir, const std::string& name, int days) {
  auto st = sealdrop::CaInit(dir, {.name = name, .days = days});
  if (!st) return Report(st.error());
  std::cout << "created the CA \"" << name << "\" in " << dir << " (root valid for " << days
            << " days; keep " << (fs::path(dir) / "ca.key").string() << " offline)\n";
  return 0;
}

int RunIssue(const std::string& dir, const std::string& csr_file, const std::string& profile,
             int days, const std::string& out) {
  // Refuse a bad --out before issuing, so that a mistyped path does not
  // leave a certificate recorded in DIR that nobody received.
  fs::path out_path(out);
  fs::path out_dir = out_path.has_parent_path() ? out_path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec))
    return Failure("the directory " + out_dir.string() + " for --out does not exist");
  if (fs::is_directory(out_path, ec))
    return Failure("--out " + out + " is a directory; give a file name");

  auto csr = sealdrop::ReadTextFile(csr_file, sealdrop::kMaxPemFileSize);
  if (!csr) return Report(csr.error());
  sealdrop::CaIssueOptions options;
  options.profile = profile == "server" ? CertProfile::kServer : CertProfile::kDevice;
  options.days = days;
  auto pem = sealdrop::CaIssue(dir, *csr, options);
  if (!pem) return Report(pem.error());

  auto cert = sealdrop::Certificate::FromPem(*pem);
  std::string serial = cert ? cert->SerialHex() : "?";
  auto written = sealdrop::WriteFileAtomic(out_path, *pem, 0644);
  if (!written)
    return Report({written.error().code, written.error().message + "; the certificate was issued and is kept in " +
                   (fs::path(dir) / "issued" / (serial + ".pem")).string()});
  std::cout << "issued " << profile << " certificate " << serial;
  if (cert)
    std::cout << " for \"" << cert->SubjectCommonName() << "\", valid until "
              << Readable(cert->NotAfter());
  std::cout << ", written to " << out << "\n";
  return 0;
}

// --tpm-roots: PEM files, or directories whose *.pem files are read.
sealdrop::Result<std::string> ReadTpmRoots(const std::vector<std::string>& paths) {
  std::string bundle;
  for (const std::string& path : paths) {
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      for (const auto& e : fs::directory_iterator(path, ec))
        if (e.path().extension() == ".pem") files.push_back(e.path());
      std::sort(files.begin(), files.end());
      if (files.empty())
        return sealdrop::Fail(sealdrop::ErrorCode::kInvalidArgument, "the directory " + path + " holds no .pem file");
    } else {
      files.push_back(path);
    }
    for (const fs::path& f : files) {
      SEALDROP_ASSIGN(std::string pem, sealdrop::ReadTextFile(f, sealdrop::kMaxPemFileSize));
      bundle += pem + "\n";
    }
  }
  return bundle;
}

int RunEnrolRequest(const std::string& dir, const std::string& request_file,
                    const std::vector<std::string>& roots, const std::string& out) {
  if (roots.empty()) return Usage("--request needs --tpm-roots: the TPM makers' root certificates");
  if (out.empty()) return Usage("--request needs --out: where to write the challenge");
  auto request = sealdrop::ReadTextFile(request_file, sealdrop::kMaxEnrolDocument + 1);
  if (!request) return Report(request.error());
  auto bundle = ReadTpmRoots(roots);
  if (!bundle) return Report(bundle.error());
  auto challenge = sealdrop::CaTpmEnrolChallenge(dir, *request, *bundle, std::chrono::system_clock::now());
  if (!challenge) return Report(challenge.error());
  auto written = sealdrop::WriteFileAtomic(out, challenge->json, 0644);
  if (!written) return Report(written.error());
  std::cout << "the EK certificate and keys of processor " << challenge->serial << " check out; challenge "
            << challenge->enrolment << " written to " << out
            << " (answer it with 'sealdrop-trp activate' within "
            << sealdrop::kEnrolPendingLifetime.count() << " hours)\n";
  return 0;
}

int RunEnrolResponse(const std::string& dir, const std::string& response_file, int days,
                     const std::string& out_dir) {
  if (out_dir.empty()) return Usage("--response needs --out-dir: where to write the two certificates");
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec)) return Failure("--out-dir " + out_dir + " is not a directory");
  auto response = sealdrop::ReadTextFile(response_file, sealdrop::kMaxEnrolDocument + 1);
  if (!response) return Report(response.error());
  auto issued = sealdrop::CaTpmEnrolFinish(dir, *response, days, std::chrono::system_clock::now());
  if (!issued) return Report(issued.error());
  const fs::path id = fs::path(out_dir) / "identity.pem", kw = fs::path(out_dir) / "keywrap.pem";
  for (const auto& [path, pem] : {std::pair{id, issued->identity_pem}, std::pair{kw, issued->keywrap_pem}})
    if (auto w = sealdrop::WriteFileAtomic(path, pem, 0644); !w)
      return Report({w.error().code, w.error().message + "; the certificates were issued and are kept in " +
                     (fs::path(dir) / "issued").string()});
  std::cout << "enrolled TPM processor " << issued->serial << ": wrote " << id.string() << " and "
            << kw.string() << "\n";
  return 0;
}

int RunRevoke(const std::string& dir, const std::string& serial) {
  auto st = sealdrop::CaRevoke(dir, serial);
  if (!st) return Report(st.error());
  std::cout << "revoked certificate " << serial << "; publish the new "
            << (fs::path(dir) / "crl.pem").string() << " to every verifier\n";
  return 0;
}

int RunCrl(const std::string& dir, int days) {
  auto st = sealdrop::CaRenewCrl(dir, days);
  if (!st) return Report(st.error());
  std::cout << "re-signed " << (fs::path(dir) / "crl.pem").string() << ", valid for " << days
            << " days; publish it to every verifier\n";
  return 0;
}

int RunList(const std::string& dir, bool json) {
  auto issued = sealdrop::CaList(dir);
  if (!issued) return Report(issued.error());
  TimePoint now = std::chrono::system_clock::now();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const CaIssuedCert& c : *issued) {
      nlohmann::json e = {
          {"serial", c.serial_hex},
          {"profile", c.profile == CertProfile::kDevice ? "device" : "server"},
          {"common_name", c.common_name},
          {"key_id", c.key_id},
          {"not_before", Rfc3339(c.not_before)},
          {"not_after", Rfc3339(c.not_after)},
          {"issued_at", Rfc3339(c.issued_at)},
          {"revoked", c.revoked},
      };
      if (c.profile == CertProfile::kDevice) {
        e["role"] = c.role == DeviceKeyRole::kIdentity ? "identity" : "key-wrap";
        e["device_serial"] = c.device_serial;
      } else {
        e["hosts"] = c.hosts;
      }
      if (c.revoked) e["revoked_at"] = Rfc3339(c.revoked_at);
      out.push_back(std::move(e));
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (issued->empty()) {
    std::cout << "no certificates issued yet\n";
    return 0;
  }
  std::printf("%-32s  %-15s  %-17s  %-17s  %-25s  %s\n", "SERIAL", "PROFILE", "NOT BEFORE",
              "NOT AFTER", "STATUS", "SUBJECT");
  for (const CaIssuedCert& c : *issued)
    std::printf("%-32s  %-15s  %-17s  %-17s  %-25s  %s\n", c.serial_hex.c_str(), KindOf(c).c_str(),
                FormatTime(c.not_before, "%Y-%m-%d %H:%M").c_str(),
                FormatTime(c.not_after, "%Y-%m-%d %H:%M").c_str(), StatusOf(c, now).c_str(),
                SubjectOf(c).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sealdrop::cli::EnsureStandardDescriptors();
  CLI::App app{
      "sealdrop-ca: the offline certificate authority for sealdrop. A manufacturer CA issues "
      "device certificates to processors; a vendor CA issues server certificates to sealdropd."};
  app.name("sealdrop-ca");
  app.set_version_flag("--version", std::string("sealdrop-ca ") + std::string(sealdrop::cli::Version()));
  app.require_subcommand(1, 1);
  app.footer(
      "Run `sealdrop-ca COMMAND --help` for a command's options. Exit status: 0 on success, 2 "
      "for bad usage, otherwise the codes in docs/operations.md. Errors are one line on stderr "
      "(JSON with --json).");

  std::string dir;
  std::string name;
  std::string csr_file;
  std::string profile;
  std::string out;
  std::string serial;
  int init_days = 3650;
  int issue_days = 365;
  int crl_days = sealdrop::kDefaultCrlDays;
  bool json = false;
  const auto days_range = sealdrop::cli::WholeNumber(1, sealdrop::kMaxValidityDays);

  CLI::App* init = app.add_subcommand(
      "init",
      "Create a CA in DIR (which must be new or empty): a P-256 root key (ca.key, mode "
      "0600), its self-signed certificate (ca.pem) and an empty CRL (crl.pem).");
  init->add_option("DIR", dir, "the CA directory to create")->required();
  init->add_option("--name", name, "common name of the root, e.g. \"Acme Devices Root CA\"")
      ->required();
  init->add_option("--days", init_days, "validity of the root in days")
      ->capture_default_str()
      ->check(days_range);

  CLI::App* issue = app.add_subcommand(
      "issue",
      "Issue a certificate from a CSR. The CSR's self-signature and the profile's rules "
      "are checked; the certificate is also kept in DIR/issued/.");
  issue->add_option("DIR", dir, "the CA directory")->required();
  issue->add_option("--csr", csr_file, "the certificate signing request (PEM)")->required();
  issue
      ->add_option("--profile", profile,
                   "device (a processor's identity or key-wrap key, from the CSR's key usage) or "
                   "server (sealdropd, with the CSR's host names)")
      ->required()
      ->check(CLI::IsMember({"device", "server"}));
  issue->add_option("--days", issue_days, "validity in days")
      ->capture_default_str()
      ->check(days_range);
  issue->add_option("--out", out, "where to write the certificate (PEM, written atomically)")
      ->required();

  std::string request_file, response_file, out_dir;
  std::vector<std::string> tpm_roots;
  CLI::App* enrol = app.add_subcommand(
      "enrol",
      "Enrol a TPM processor (docs/tpm.md). With --request: check its EK certificate against "
      "the TPM makers' roots and its keys' TPM attributes, and write a credential challenge "
      "that only that TPM can answer. With --response: check the answer and issue the "
      "identity and key-wrap certificates, bound to the EK certificate.");
  enrol->add_option("DIR", dir, "the CA directory")->required();
  auto* req_opt = enrol->add_option("--request", request_file, "the processor's enrol-request.json");
  auto* resp_opt = enrol->add_option("--response", response_file, "the processor's answer ('sealdrop-trp activate')");
  req_opt->excludes(resp_opt);
  enrol->add_option("--tpm-roots", tpm_roots,
                    "with --request: the TPM makers' root and intermediate certificates (PEM files or "
                    "directories of them); may be given several times");
  enrol->add_option("--out", out, "with --request: where to write the challenge");
  enrol->add_option("--out-dir", out_dir, "with --response: where to write identity.pem and keywrap.pem");
  enrol->add_option("--days", issue_days, "with --response: validity in days")
      ->capture_default_str()
      ->check(days_range);

  CLI::App* revoke =
      app.add_subcommand("revoke", "Revoke a certificate this CA issued and rewrite DIR/crl.pem.");
  revoke->add_option("DIR", dir, "the CA directory")->required();
  revoke->add_option("--serial", serial, "the certificate's serial in hex, as `list` prints it")
      ->required();

  CLI::App* crl = app.add_subcommand(
      "crl", "Re-sign DIR/crl.pem before it expires (verifiers refuse an expired CRL).");
  crl->add_option("DIR", dir, "the CA directory")->required();
  crl->add_option("--days", crl_days, "validity of this and later CRLs in days")
      ->capture_default_str()
      ->check(days_range);

  CLI::App* list = app.add_subcommand(
      "list", "List the certificates this CA issued: serial, profile, validity, revocation.");
  list->add_option("DIR", dir, "the CA directory")->required();
  list->add_flag("--json", json, "print a JSON array instead of a table");

  if (auto done = sealdrop::cli::Parse(app, argc, argv, kProg)) return *done;

  if (init->parsed()) return RunInit(dir, name, init_days);
  if (issue->parsed()) return RunIssue(dir, csr_file, profile, issue_days, out);
  if (enrol->parsed()) {
    if (!request_file.empty()) return RunEnrolRequest(dir, request_file, tpm_roots, out);
    if (!response_file.empty()) return RunEnrolResponse(dir, response_file, issue_days, out_dir);
    return Usage("enrol needs --request or --response; run 'sealdrop-ca enrol --help'");
  }
  if (revoke->parsed()) return RunRevoke(dir, serial);
  if (crl->parsed()) return RunCrl(dir, crl_days);
  if (list->parsed()) return RunList(dir, json);
  return Usage("no command given; run 'sealdrop-ca --help'");
}
