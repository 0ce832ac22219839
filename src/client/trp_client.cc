#include "client/trp_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"
#include "protocol/frames.h"

namespace sealdrop {

Result<std::pair<TrpType, std::string>> TrpRequest(const std::string& socket_path, TrpType type,
                                                   std::string_view body, const std::vector<int>& fds) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return Fail(ErrorCode::kInvalidArgument, "the processor socket path is too long");
  std::strcpy(addr.sun_path, socket_path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string err = std::strerror(errno);
    return Fail(ErrorCode::kUnavailable, "cannot reach the processor at " + socket_path + " (" + err +
                                             "); is 'sealdrop-trp serve' running?");
  }
  Bytes frame = EncodeFrame(static_cast<uint8_t>(type), AsBytes(body));
  iovec iov{frame.data(), frame.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  // The first sendmsg carries the descriptors; the rest of a large frame
  // follows with plain sends.
  ssize_t sent;
  do sent = ::sendmsg(fd.get(), &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  size_t done = sent > 0 ? static_cast<size_t>(sent) : 0;
  while (sent > 0 && done < frame.size()) {
    sent = ::send(fd.get(), frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) sent = 1;  // retry
    else if (sent > 0) done += static_cast<size_t>(sent);
  }
  if (sent <= 0) return Fail(ErrorCode::kUnavailable, "the processor closed the connection");
  FrameDecoder decoder(TrpMaxBody);
  Bytes buf(64 * 1024);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(ErrorCode::kUnavailable, "the processor closed the connection without an answer");
    auto st = decoder.Push(ByteView(buf.data(), static_cast<size_t>(n)));
    auto f = st ? decoder.Pop() : Result<std::optional<Frame>>(std::unexpected(st.error()));
    if (!f) return std::unexpected(f.error());
    if (*f) {
      auto t = static_cast<TrpType>((*f)->type);
      if (t == TrpType::kError) return std::unexpected(ParseErrorJson((*f)->body));
      return std::make_pair(t, ToString((*f)->body));
    }
  }
}

}  // namespace sealdrop
