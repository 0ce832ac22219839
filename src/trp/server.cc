#include "trp/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <iostream>
#include <thread>

#include "base/crash_point.h"
#include "base/daemon.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "protocol/frames.h"
#include "protocol/messages.h"
#include "protocol/trp_messages.h"
#include "trp/licences.h"
#include "trp/runner.h"

namespace sealdrop {
namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxQueuedFds = 8;

class Connection {
 public:
  Connection(const ProcessorState& state, int fd, int idle_seconds)
      : state_(state), fd_(fd), idle_ms_(idle_seconds * 1000), decoder_(TrpMaxBody) {}
  ~Connection() {
    if (session_ && session_->state() != TrpSession::State::kReleased) session_->Abort();
  }

  void Run() {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxQueuedFds)];
    // Received straight into the frame decoder. Reads start at 64 KiB and
    // grow to 1 MiB once they come back full (a package being relayed: fewer
    // system calls per byte); a short control connection never zeroes 1 MiB.
    size_t want = 64 * 1024;
    while (true) {
      auto room = decoder_.Prepare(want);
      iovec iov{room.data(), room.size()};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      pollfd p{fd_, POLLIN, 0};
      int ready = ::poll(&p, 1, idle_ms_);
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) {
        SendError({ErrorCode::kUnavailable, "the processor closed a connection that sent nothing for " +
                                                std::to_string(idle_ms_ / 1000) + " s"});
        return;
      }
      ssize_t n = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      if (static_cast<size_t>(n) == want && want < (1 << 20)) want *= 4;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int* received = reinterpret_cast<const int*>(CMSG_DATA(c));
        for (size_t i = 0; i < count; ++i) {
          UniqueFd owned(received[i]);  // beyond the queue's limit: closed at once
          if (fds_.size() < kMaxQueuedFds) fds_.push_back(std::move(owned));
        }
      }
      if (!decoder_.Commit(static_cast<size_t>(n))) {
        SendError({ErrorCode::kMalformed, "the processor received a malformed frame"});
        return;
      }
      while (true) {
        auto frame = decoder_.PopView();
        if (!frame) {
          SendError(frame.error());
          return;
        }
        if (!*frame) break;
        if (!Handle(**frame)) return;
      }
    }
  }

 private:
  // Sends a frame; a descriptor, if given, travels with its first byte.
  bool Send(TrpType type, ByteView body, int fd = -1) {
    Bytes f = EncodeFrame(static_cast<uint8_t>(type), body);
    size_t done = 0;
    if (fd >= 0) {
      iovec iov{f.data(), f.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
      ssize_t n;
      do n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return false;
      done = static_cast<size_t>(n);
    }
    while (done < f.size()) {
      ssize_t n = ::send(fd_, f.data() + done, f.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  bool SendError(const Error& e) { return Send(TrpType::kError, ErrorJson(e)); }
  template <typename M>
  bool SendMessage(const M& m) { return Send(M::kType, Encode(m)); }

  bool FlushToServer() {
    Bytes out = session_->TakeToServer();
    return out.empty() || Send(TrpType::kInnerOut, out);
  }

  // Returns false when the connection should close.
  bool Handle(FrameView f) {
    switch (static_cast<TrpType>(f.type)) {
      case TrpType::kOpenSession: {
        if (session_ && session_->state() != TrpSession::State::kReleased &&
            session_->state() != TrpSession::State::kFailed)
          return SendError({ErrorCode::kWrongState, "a download is already in progress on this connection"});
        staging_ = std::make_unique<FileStaging>(state_.dir() / "staging");
        session_ = std::make_unique<TrpSession>(state_.identity(), state_.vendor_roots(),
                                                [] { return std::chrono::system_clock::now(); }, *staging_);
        reported_ = false;
        auto st = session_->Start();
        if (!st) return SendError(st.error());
        return FlushToServer();
      }
      case TrpType::kInnerIn: {
        if (!session_) return SendError({ErrorCode::kWrongState, "no download session is open"});
        auto st = session_->OnInner(f.body);
        if (!FlushToServer()) return false;
        if (!st) return SendError(st.error());
        if (session_->state() == TrpSession::State::kHeld && !reported_) {
          reported_ = true;
          CrashPoint("trp.held");
          const HeldPackage& h = *session_->held();
          return SendMessage(TrpDownloadComplete{.package_digest = h.digest_hex,
                                                 .size = h.size,
                                                 .package_id = h.manifest.package_id,
                                                 .name = h.manifest.name,
                                                 .version = h.manifest.version});
        }
        return true;
      }
      case TrpType::kRelease:
        return HandleRelease(f);
      case TrpType::kAbort:
        if (session_) session_->Abort();
        return true;
      case TrpType::kList: {
        auto list = ListLicences(state_.dir());
        if (!list) return SendError(list.error());
        TrpLicenceList reply;
        for (const auto& l : *list)
          reply.licences.push_back({.package_id = l.package_id, .name = l.name, .version = l.version,
                                    .kind = l.kind, .receipt_id = l.receipt_id, .size = l.size,
                                    .released_at = l.released_at});
        return SendMessage(reply);
      }
      case TrpType::kInfo: {
        auto info = ReadProcessorInfo(state_.dir());
        if (!info) return SendError(info.error());
        return SendMessage(TrpInfo{.serial = info->serial,
                                   .backend = info->backend,
                                   .identity_key_id = info->identity_key_id,
                                   .keywrap_key_id = info->keywrap_key_id,
                                   .vendor_roots = info->vendor_roots});
      }
      case TrpType::kRun: {
        auto run = ParseTrpRun(f);
        if (!run) return SendError({ErrorCode::kMalformed, "the run message is malformed"});
        return HandleRun(*run, /*with_input=*/false);
      }
      case TrpType::kOpen:
        return HandleOpen(f);
      default:
        return SendError({ErrorCode::kWrongState, "the processor does not accept that message from the host"});
    }
  }

  bool HandleRelease(FrameView f) {
    if (!session_) return SendError({ErrorCode::kWrongState, "no download session is open"});
    auto request = ParseTrpRelease(f);
    if (!request) return SendError({ErrorCode::kMalformed, "the release message is malformed"});
    auto licence = session_->Release(request->release, request->receipt);
    if (!licence) return SendError(licence.error());
    CrashPoint("trp.release_verified");
    if (auto st = SaveLicence(state_.dir(), *licence); !st) return SendError(st.error());
    CrashPoint("trp.licence_saved");
    // Step 1011: only now does the encrypted package leave the processor,
    // as a read-only descriptor of the held file for the host to copy or
    // link (no second pass of the package through the socket).
    auto in = staging_->OpenForRelease();
    if (!in) return SendError(in.error());
    const Manifest& m = licence->package.manifest;
    TrpPackageEnd end{.package_id = m.package_id,
                      .name = m.name,
                      .version = m.version,
                      .kind = m.kind,
                      .size = licence->package.size,
                      .package_digest = licence->package.digest_hex};
    bool ok = Send(TrpPackageEnd::kType, Encode(end), in->get());
    in->reset();
    staging_->Discard();  // the host holds its own descriptor now
    return ok;
  }

  // Takes the next n descriptors the host sent, or none if it sent fewer.
  std::optional<std::vector<UniqueFd>> TakeFds(size_t n) {
    if (fds_.size() < n) return std::nullopt;
    std::vector<UniqueFd> taken(std::make_move_iterator(fds_.begin()),
                                std::make_move_iterator(fds_.begin() + static_cast<ptrdiff_t>(n)));
    fds_.erase(fds_.begin(), fds_.begin() + static_cast<ptrdiff_t>(n));
    return taken;
  }

  bool HandleOpen(FrameView f) {
    auto open = ParseTrpOpen(f);
    if (!open) return SendError({ErrorCode::kMalformed, "the open message is malformed"});
    if (!open->with) {
      auto fds = TakeFds(2);
      if (!fds) return SendError({ErrorCode::kInvalidArgument, "open needs stdout and the data package"});
      auto st = ExportData(state_, (*fds)[1].get(), (*fds)[0].get());
      fds->clear();
      if (!st) return SendError(st.error());
      return SendMessage(TrpExit{.exit_code = 0});
    }
    return HandleRun(open->program, /*with_input=*/true);
  }

  bool HandleRun(const TrpRun& run, bool with_input) {
    const size_t need = with_input ? 5 : 4;
    if (fds_.size() < need)
      return SendError({ErrorCode::kInvalidArgument, with_input ? "open needs stdin, stdout, stderr, the program and the data package"
                                                                : "run needs stdin, stdout, stderr and the package"});
    RunRequest req;
    req.args = run.args;
    req.cwd = run.cwd;
    req.env = run.env;
    std::vector<UniqueFd> taken = std::move(*TakeFds(need));
    req.stdio[0] = taken[0].get();
    req.stdio[1] = taken[1].get();
    req.stdio[2] = taken[2].get();
    req.package_fd = taken[3].get();
    if (with_input) req.input_package_fd = taken[4].get();
    req.host_fd = fd_;
    auto outcome = RunPackage(state_, req);
    taken.clear();
    if (!outcome) return SendError(outcome.error());
    return SendMessage(TrpExit{.exit_code = outcome->exit_code, .signal = outcome->signal});
  }

  const ProcessorState& state_;
  int fd_;  // the host's connection; owned by the caller of HandleProcessorConnection
  int idle_ms_;
  FrameDecoder decoder_;
  std::deque<UniqueFd> fds_;  // received from the host, not yet used
  std::unique_ptr<FileStaging> staging_;
  std::unique_ptr<TrpSession> session_;
  bool reported_ = false;
};
}  // namespace

void HandleProcessorConnection(const ProcessorState& state, int fd, int idle_seconds) {
  // A bug that throws must end this connection, not the processor: an
  // exception leaving a connection thread would terminate every session.
  try {
    Connection(state, fd, idle_seconds).Run();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "connection_failed", {{"detail", std::string("internal error: ") + e.what()}});
  }
}

Status ServeProcessor(const ProcessorState& state, const fs::path& socket_path,
                      const std::atomic<bool>& stop, int idle_seconds,
                      const std::atomic<unsigned>* reload) {
  CleanStaging(state.dir());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.string().size() >= sizeof addr.sun_path)
    return Fail(ErrorCode::kInvalidArgument, "the socket path is too long: " + socket_path.string());
  std::strcpy(addr.sun_path, socket_path.c_str());
  UniqueFd lfd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!lfd) return Fail(ErrorCode::kIo, "cannot create a socket");
  // A stale socket from a crashed run is replaced; a live one is refused.
  if (fs::exists(fs::symlink_status(socket_path))) {
    if (::connect(lfd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      return Fail(ErrorCode::kInvalidArgument, "another processor is already serving " + socket_path.string());
    ::unlink(socket_path.c_str());
    lfd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  }
  if (::bind(lfd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd.get(), 64) != 0) {
    std::string err = std::strerror(errno);
    return Fail(ErrorCode::kIo, "cannot listen on " + socket_path.string() + ": " + err);
  }
  ::chmod(socket_path.c_str(), 0660);
  Log(LogLevel::kInfo, "serving",
      {{"device", state.identity().device_serial}, {"detail", "serving " + socket_path.string()}});
  (void)NotifySupervisor("READY=1");
  // Shared with the connection threads, which may outlive this frame.
  auto live = std::make_shared<std::atomic<int>>(0);
  unsigned reloads_seen = reload ? reload->load() : 0;
  while (!stop.load()) {
    if (reload && reload->load() != reloads_seen) {
      // The keys, certificates and pinned roots are read once, before the
      // state is confined; changing them needs a restart.
      reloads_seen = reload->load();
      (void)NotifyReloading();
      Log(LogLevel::kInfo, "reload_ignored",
          {{"detail", "nothing is reloaded on SIGHUP; restart the processor to use newly installed "
                      "certificates or roots"}});
      (void)NotifySupervisor("READY=1");
    }
    pollfd p{lfd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    if (r <= 0) continue;
    UniqueFd cfd(::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!cfd) continue;
    if (live->load() >= kMaxProcessorConnections) {
      Bytes e = EncodeFrame(static_cast<uint8_t>(TrpType::kError),
                            ErrorJson({ErrorCode::kUnavailable, "the processor is busy; try again"}));
      (void)::send(cfd.get(), e.data(), e.size(), MSG_NOSIGNAL);
      Log(LogLevel::kWarning, "connection_refused", {{"detail", "all connection slots are taken"}});
      continue;
    }
    int buffer = 4 << 20;  // see the host side: fewer wake-ups per relayed byte
    ::setsockopt(cfd.get(), SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    ::setsockopt(cfd.get(), SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    ++*live;
    std::thread([&state, cfd = std::move(cfd), live, idle_seconds]() mutable {
      HandleProcessorConnection(state, cfd.get(), idle_seconds);
      cfd.reset();
      --*live;
    }).detach();
  }
  (void)NotifySupervisor("STOPPING=1");
  Log(LogLevel::kInfo, "stopping", {{"detail", "no new connections; " + std::to_string(live->load()) +
                                                   " in flight get 5 s"}});
  lfd.reset();
  ::unlink(socket_path.c_str());
  // Give running connections a moment to finish before the state goes away.
  for (int i = 0; i < 50 && live->load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return Ok();
}

}  // namespace sealdrop
