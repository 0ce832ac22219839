#include "cli/cli_common.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

namespace sealdrop::cli {
namespace {
std::atomic<bool> g_stop{false};
bool g_json_errors = false;
void OnSignal(int) { g_stop.store(true); }

// CLI11's messages can span lines and end in periods; ours are one sentence.
std::string OneLine(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  while (!text.empty() && (text.back() == ' ' || text.back() == '.')) text.pop_back();
  return text;
}

void PrintError(std::string_view program, std::string_view code, std::string message) {
  if (!message.empty() && message.back() != '.') message += '.';
  if (g_json_errors) {
    nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
    // Replace, not throw, on bytes that are not UTF-8 (a file name, say).
    std::fprintf(stderr, "%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(), message.c_str());
}

std::string Printable(std::string_view word) {
  std::string out(word.substr(0, 64));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  return out;
}
}  // namespace

void EnsureStandardDescriptors() {
  for (int fd = 0; fd < 3; ++fd)
    if (::fcntl(fd, F_GETFD) < 0) {
      int n = ::open("/dev/null", O_RDWR);
      if (n >= 0 && n != fd) {
        ::dup2(n, fd);
        ::close(n);
      }
    }
}

std::string_view Version() { return SEALDROP_VERSION; }

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kAuthFailed: return kExitAuth;
    case ErrorCode::kNotFound: return kExitNotFound;
    case ErrorCode::kInsufficientFunds: return kExitFunds;
    case ErrorCode::kRefused:
    case ErrorCode::kUntrustedPeer:
    case ErrorCode::kCryptoFailure: return kExitRefused;
    case ErrorCode::kUnavailable: return kExitUnavailable;
    case ErrorCode::kAlreadyOwned: return kExitAlreadyOwned;
    default: return kExitFailure;
  }
}

int RunExitCodeFor(ErrorCode code) {
  switch (ExitCodeFor(code)) {
    case kExitNotFound: return kExitRunNotFound;
    case kExitRefused: return kExitRunRefused;
    default: return kExitRunFailed;
  }
}

void SetJsonErrors(bool on) { g_json_errors = on; }
bool JsonErrors() { return g_json_errors; }

int Report(std::string_view program, const Error& error) {
  PrintError(program, ErrorCodeName(error.code), error.message);
  return ExitCodeFor(error.code);
}

int UsageError(std::string_view program, std::string_view message) {
  PrintError(program, "usage", std::string(message));
  return kExitUsage;
}

std::optional<int> Parse(CLI::App& app, int argc, char** argv, std::string_view program) {
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i)
    if (std::string_view(argv[i]) == "--json") SetJsonErrors(true);
  // CLI11 reports an unknown command as a missing one; walk the words to
  // find the first that should name a command and does not.
  CLI::App* at = &app;
  std::string path(program);
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word == "--") break;
    if (word.size() > 1 && word[0] == '-') {
      const std::string_view flag = word.substr(0, word.find('='));
      const CLI::Option* opt = nullptr;
      for (CLI::App* a = at; a != nullptr && opt == nullptr; a = a->get_parent())
        opt = a->get_option_no_throw(std::string(flag));
      // CLI11 would call a misplaced or misspelt option a missing command.
      // ("-5" may be a value, so only long options are judged here.)
      if (opt == nullptr && flag.starts_with("--") && flag.size() > 2)
        return UsageError(program, "unknown option " + Printable(flag) + " for " + path + "; run '" + path +
                                       " --help' for its options");
      if (opt != nullptr && flag.size() == word.size() && opt->get_type_size_max() > 0) ++i;  // its value
      continue;
    }
    auto subs = at->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty()) break;  // a leaf command's own arguments
    CLI::App* next = nullptr;
    for (CLI::App* s : subs)
      if (s->check_name(std::string(word))) next = s;
    if (next == nullptr) {
      std::string names;
      for (size_t k = 0; k < subs.size(); ++k)
        names += (k == 0 ? "" : k + 1 == subs.size() ? " and " : ", ") + subs[k]->get_name();
      return UsageError(program, "unknown command \"" + Printable(word) + "\" for " + path + "; the commands are " +
                                     names + " (run '" + path + " --help')");
    }
    at = next;
    path += " " + next->get_name();
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::string message = OneLine(e.what());
    if (message == "A subcommand is required") message = "no command given";
    // "--trp: 1 required TEXT missing"
    if (auto colon = message.find(": "); !message.empty() && message[0] == '-' && colon != std::string::npos &&
                                         message.ends_with(" missing") && message.find(" required ") != std::string::npos)
      message = message.substr(0, colon) + " needs a value";
    // Our validators' sentences start with "must"; CLI11 puts "NAME: " first.
    if (auto colon = message.find(": must "); colon != std::string::npos) message.erase(colon, 1);
    return UsageError(program, message + "; run '" + path + " --help' for usage");
  }
  return std::nullopt;
}

namespace {
CLI::Validator WholeNumberCheck(int64_t min, std::optional<int64_t> max) {
  std::string range = max ? "from " + std::to_string(min) + " to " + std::to_string(*max)
                          : std::to_string(min) + " or more";
  return CLI::Validator(
      [min, max, range](std::string& text) -> std::string {
        int64_t v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size() || v < min || (max && v > *max))
          return "must be a whole number " + range + " (not \"" + Printable(text) + "\")";
        return "";
      },
      "INT " + range);
}
}  // namespace

CLI::Validator WholeNumber(int64_t min, int64_t max) { return WholeNumberCheck(min, max); }
CLI::Validator WholeNumberAtLeast(int64_t min) { return WholeNumberCheck(min, std::nullopt); }

const std::atomic<bool>& StopFlag() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return g_stop;
}

Result<std::string> ReadSecret(std::string_view env_name, std::string_view what) {
  if (const char* v = std::getenv(std::string(env_name).c_str()); v != nullptr && *v != '\0')
    return std::string(v);
  std::string line;
  termios saved{};
  const bool terminal = ::isatty(STDIN_FILENO) == 1 && ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (terminal) {
    // Echo goes off (and anything typed ahead is dropped) before the prompt
    // appears: what is typed after the prompt must not be flushed away.
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::fprintf(stderr, "%.*s: ", static_cast<int>(what.size()), what.data());
    std::fflush(stderr);
  }
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (terminal) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (!got || line.empty())
    return Fail(ErrorCode::kInvalidArgument,
                "give the " + std::string(what) + " at the prompt, on standard input or in " + std::string(env_name));
  return line;
}

}  // namespace sealdrop::cli
