// The processor's Unix socket handler, HandleProcessorConnection
// (trp/server.h): exactly what sealdrop-trp runs for each host connection,
// on one end of a socketpair, with a real processor state (made once in
// /dev/shm: CAs, InitProcessorState, InstallProcessorFiles, Load) holding
// three licensed packages sealed for it.
//
// Input: one byte of descriptor plan, operands, then the byte stream the
// host sends (TrpType frames, decoded with TrpMaxBody, then the JSON bodies
// of Release, Run and Open). The plan says how many descriptors travel with
// the first byte (SCM_RIGHTS) and what the package descriptors hold:
//   bits 0-2  descriptors to send (0-6): [0] is a memfd for stdout, the rest
//             are package memfds
//   bits 3-4  package content: 0 a fuzzer blob, 1-3 licensed package 0-2
//             (0: data with the export right, 1: data without, 2: protected
//             ELF when fuzz/data/tiny.elf exists)
//   bit 5     flip one byte of the package (u32 position, u8 mask)
// (the blob and the flip operands are present only when a package
// descriptor is sent, that is with 2 or more descriptors)
// so `Open {"with":false}` reaches ExportData: layout, manifest, licence
// lookup, signature and recipient checks, key unwrap, decryption.
//
// Not reachable here: the inner TLS handshake (its server is not in this
// process; trp_session covers the session behind kInnerIn/kRelease), and
// running programs (RunPackage refuses before reading anything because this
// processor is not confined, and the harness must not exec what it fuzzes).
// The handler's TrpSession uses the real clock (not injectable through
// HandleProcessorConnection); the fuzzer never reaches a certificate check.
//
// The host's frames also go straight through their codecs
// (protocol/trp_messages.h): whatever a Parse accepts must encode to bytes
// that parse to the same message.
//
// Checks: every reply the processor sends is a well-formed TrpType frame
// whose body its codec accepts (ParseTrp*, ParseErrorJson's JSON object); an export of an intact licensed package with the
// export right yields exactly its plaintext; a tampered or unlicensed one
// never exits 0; no descriptor leaks per connection.
#include <dirent.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/encoding.h"
#include "base/files.h"
#include "crypto/jws.h"
#include "fuzz_util.h"
#include "session_ops.h"
#include "package/digest.h"
#include "package/package_file.h"
#include "package/sealer.h"
#include "pki/ca.h"
#include "protocol/frames.h"
#include "protocol/messages.h"
#include "protocol/trp_messages.h"
#include "trp/licences.h"
#include "trp/server.h"
#include "trp/state.h"

using namespace sealdrop;
using fuzz::OpReader;
namespace fs = std::filesystem;

namespace {

#define SETUP_CHECK(expr)                                                                 \
  do {                                                                                    \
    auto r_ = (expr);                                                                     \
    FUZZ_CHECK(r_.has_value(), std::string(#expr) + ": " + (r_ ? "" : r_.error().message)); \
  } while (0)

struct Licensed {
  Bytes file;       // the stored package
  Bytes plaintext;
  bool exportable = false;
};

struct Fixture {
  fs::path dir;
  std::optional<ProcessorState> state;
  std::vector<Licensed> packages;
};

Fixture* fixture = nullptr;

void CleanUp() {
  if (fixture == nullptr) return;
  std::error_code ec;
  fs::remove_all(fixture->dir, ec);
}

Licensed SealAndLicence(const Fixture& f, const EcPrivateKey& server_key, const fs::path& plaintext,
                        const std::string& kind, bool exportable, const std::string& order) {
  SealRequest req;
  req.plaintext_path = plaintext;
  req.program_id = 1;
  req.name = kind == "elf" ? "tiny" : "notes";
  req.version = "1.0";
  req.kind = kind;
  req.recipient_key = f.state->keywrap_key().PublicKey();
  req.device_serial = f.state->identity().device_serial;
  req.order_id = order;
  req.server_key = &server_key;
  req.issued_at = 1700000000;
  req.rights.export_plaintext = exportable;
  auto sealer = PackageSealer::Create(req);
  FUZZ_CHECK(sealer.has_value(), "sealing: " + sealer.error().message);
  Licensed l;
  l.exportable = exportable && kind == "data";
  Bytes stream;
  for (;;) {
    auto more = sealer->Next(stream);
    FUZZ_CHECK(more.has_value(), "sealing");
    if (!*more) break;
  }
  const Manifest& m = sealer->manifest();
  const uint64_t offset = stream.size() - m.payload_size;
  PackageDigest digest = PackageDigest::For(offset, m);
  digest.Update(stream);
  // Stored as the processor stores it: ELF first for a protected ELF.
  if (kind == "elf") {
    l.file.assign(stream.begin() + offset, stream.end());
    Bytes trailer = EncodeElfTrailer(sealer->manifest_jws());
    l.file.insert(l.file.end(), trailer.begin(), trailer.end());
  } else {
    l.file = stream;
  }
  l.plaintext = *ReadFile(plaintext, 1 << 20);
  Licence lic;
  lic.package.manifest = m;
  lic.package.manifest_jws = sealer->manifest_jws();
  lic.package.digest_hex = HexEncode(*digest.Final());
  lic.package.size = stream.size();
  lic.package.server_key_pem = server_key.PublicKey().ToPem();
  lic.receipt_id = "00112233445566778899aabbccddeeff";
  lic.release_jws = "r.r.r";
  lic.receipt_jws = "p.p.p";
  SETUP_CHECK(SaveLicence(f.state->dir(), lic));
  return l;
}

const Fixture& Fix() {
  if (fixture != nullptr) return *fixture;
  auto* f = new Fixture;
  f->dir = fuzz::ScratchDir("trp");
  SETUP_CHECK(CaInit(f->dir / "mfr", {"Fuzz Manufacturer CA"}));
  SETUP_CHECK(CaInit(f->dir / "vendor", {"Fuzz Vendor CA"}));
  const fs::path state = f->dir / "state";
  auto init = InitProcessorState(state);
  SETUP_CHECK(init);
  std::vector<fs::path> certs;
  for (const fs::path& csr : {init->identity_csr, init->keywrap_csr}) {
    auto pem = CaIssue(f->dir / "mfr", *ReadTextFile(csr, 1 << 20), {CertProfile::kDevice, 365});
    SETUP_CHECK(pem);
    fs::path out = f->dir / (csr.stem().string() + ".pem");
    SETUP_CHECK(WriteFileAtomic(out, *pem));
    certs.push_back(out);
  }
  SETUP_CHECK(InstallProcessorFiles(state, certs, {f->dir / "vendor" / "ca.pem"}));
  auto loaded = ProcessorState::Load(state);
  SETUP_CHECK(loaded);
  f->state.emplace(std::move(*loaded));

  const EcPrivateKey server_key = fuzz::FixedKey(2);
  Bytes notes(70000);
  for (size_t i = 0; i < notes.size(); ++i) notes[i] = static_cast<uint8_t>('a' + i % 26);
  SETUP_CHECK(WriteFileAtomic(f->dir / "notes.txt", notes));
  f->packages.push_back(SealAndLicence(*f, server_key, f->dir / "notes.txt", "data", true, std::string(32, '1')));
  f->packages.push_back(SealAndLicence(*f, server_key, f->dir / "notes.txt", "data", false, std::string(32, '2')));
  const fs::path elf = std::string(SEALDROP_FUZZ_DIR) + "/data/tiny.elf";
  if (fs::exists(elf)) f->packages.push_back(SealAndLicence(*f, server_key, elf, "elf", false, std::string(32, '3')));
  fixture = f;
  std::atexit(CleanUp);
  return *f;
}

size_t OpenFds() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// Everything the processor sent, checked frame by frame.
struct Replies {
  std::vector<Frame> frames;
};

void CheckReplies(const Bytes& raw, Replies& out) {
  FrameDecoder decoder(TrpMaxBody);
  FUZZ_CHECK(decoder.Push(raw).has_value(), "the processor sent a malformed frame");
  for (;;) {
    auto f = decoder.Pop();
    FUZZ_CHECK(f.has_value(), "the processor sent a malformed frame");
    if (!*f) break;
    const Frame& fr = **f;
    FUZZ_CHECK(fr.type >= 0x80, "the processor sent a host-to-processor frame type " + std::to_string(fr.type));
    const FrameView view{fr.type, fr.body};
    switch (static_cast<TrpType>(fr.type)) {
      case TrpType::kInnerOut: break;
      case TrpType::kError: {
        auto j = nlohmann::json::parse(fr.body.begin(), fr.body.end(), nullptr, false);
        FUZZ_CHECK(!j.is_discarded() && j.is_object() && j.contains("code") && j.contains("message"),
                   "an error reply without code or message");
        break;
      }
      case TrpType::kDownloadComplete:
        FUZZ_CHECK(ParseTrpDownloadComplete(view).has_value(), "a download report its codec refuses");
        break;
      case TrpType::kPackageEnd:
        FUZZ_CHECK(ParseTrpPackageEnd(view).has_value(), "a package end its codec refuses");
        break;
      case TrpType::kResult:
        FUZZ_CHECK(ParseTrpLicenceList(view).has_value() || ParseTrpInfo(view).has_value(),
                   "a result neither a list of licences nor the processor's info");
        break;
      case TrpType::kExit:
        FUZZ_CHECK(ParseTrpExit(view).has_value(), "an exit status its codec refuses");
        break;
      default:
        FUZZ_CHECK(false, "the processor sent frame type " + std::to_string(fr.type));
    }
    FUZZ_TRACE("trp_socket: reply 0x%02x %s\n", fr.type, std::string(AsString(fr.body).substr(0, 160)).c_str());
    out.frames.push_back(fr);
  }
  FUZZ_CHECK(decoder.buffered() == 0, "the processor left a frame incomplete");
}

// Parse, encode, parse again: the second parse must succeed and equal the
// first (compared through a second encoding).
template <typename M, typename ParseFn>
void RoundTrip(FrameView f, ParseFn parse) {
  auto first = parse(f);
  if (!first) return;
  const Bytes encoded = Encode(*first);
  auto second = parse(FrameView{f.type, encoded});
  FUZZ_CHECK(second.has_value(), "a message its own codec encoded does not parse");
  FUZZ_CHECK(Encode(*second) == encoded, "a message changed through encode and parse");
}

// The host's frames, each through its codec.
void CheckHostCodecs(const Bytes& stream) {
  FrameDecoder decoder(TrpMaxBody);
  if (!decoder.Push(stream)) return;
  for (;;) {
    auto f = decoder.PopView();
    if (!f || !*f) return;
    const FrameView& v = **f;
    switch (static_cast<TrpType>(v.type)) {
      case TrpType::kRelease: RoundTrip<TrpRelease>(v, ParseTrpRelease); break;
      case TrpType::kRun: RoundTrip<TrpRun>(v, ParseTrpRun); break;
      case TrpType::kOpen: RoundTrip<TrpOpen>(v, ParseTrpOpen); break;
      default: break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)Fix();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = Fix();
  OpReader in(data, size);
  const uint8_t plan = in.U8();
  const int fd_count = std::min(plan & 7, 6);
  const int source = (plan >> 3) & 3;
  const bool flip = plan & 0x20;
  // Operands only when a package descriptor travels: otherwise every byte
  // after the plan is the stream.
  const bool with_package = fd_count > 1;
  Bytes content;
  const Licensed* licensed = nullptr;
  if (with_package && source == 0) {
    content = in.Blob();
  } else if (with_package && static_cast<size_t>(source - 1) < f.packages.size()) {
    licensed = &f.packages[source - 1];
    content = licensed->file;
  }
  bool tampered = false;
  if (with_package && flip) {
    uint32_t at = in.U32();
    uint8_t mask = in.U8();
    if (!content.empty() && mask != 0) {
      content[at % content.size()] ^= mask;
      tampered = true;
    }
  }
  const Bytes stream = in.Take(SIZE_MAX);
  CheckHostCodecs(stream);

  const size_t fds_before = OpenFds();
  int sv[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  std::optional<fuzz::MemFd> out_fd, pkg_fd;
  if (fd_count > 0) out_fd.emplace(ByteView());
  if (fd_count > 1) pkg_fd.emplace(content);

  // The host's whole stream is in the socket before the handler runs (a
  // fuzz input is far smaller than the socket buffer), so the handler never
  // waits for a writer thread to be scheduled; a thread sends only what did
  // not fit.
  size_t sent = 0;
  if (fd_count > 0 && !stream.empty()) {
    int fds[6];
    for (int i = 0; i < fd_count; ++i) fds[i] = i == 0 ? out_fd->fd() : pkg_fd->fd();
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
    iovec iov{const_cast<uint8_t*>(stream.data()), 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * fd_count);
    if (::sendmsg(sv[0], &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) sent = 1;
  }
  // Sends the stream from `at` until it is all sent or send fails; returns
  // where it stopped.
  auto send_from = [&](size_t at, int flags) {
    while (at < stream.size()) {
      ssize_t n = ::send(sv[0], stream.data() + at, stream.size() - at, MSG_NOSIGNAL | flags);
      if (n <= 0) break;
      at += static_cast<size_t>(n);
    }
    return at;
  };
  sent = send_from(sent, MSG_DONTWAIT);
  std::thread writer;
  if (sent < stream.size()) {
    writer = std::thread([&, sent] {
      send_from(sent, 0);
      ::shutdown(sv[0], SHUT_WR);
    });
  } else {
    ::shutdown(sv[0], SHUT_WR);
  }
  Bytes replies;
  std::thread reader([&] {
    uint8_t buf[65536];
    for (;;) {
      ssize_t n = ::recv(sv[0], buf, sizeof buf, 0);
      if (n <= 0) break;
      replies.insert(replies.end(), buf, buf + n);
    }
  });
  HandleProcessorConnection(*f.state, sv[1]);
  ::close(sv[1]);
  if (writer.joinable()) writer.join();
  reader.join();
  ::close(sv[0]);

  Replies r;
  CheckReplies(replies, r);
  for (const Frame& fr : r.frames) {
    if (fr.type != static_cast<uint8_t>(TrpType::kExit)) continue;
    // Only an export (Open without "with") can exit here: Run and Open with
    // a program are refused on an unconfined processor.
    auto exit = ParseTrpExit(FrameView{fr.type, fr.body});
    FUZZ_CHECK(exit && exit->signal == 0 && exit->exit_code == 0, "an exit reply that is not an export's");
    FUZZ_CHECK(licensed != nullptr && licensed->exportable && !tampered,
               "an export succeeded for a package that is tampered, unlicensed or not exportable");
    Bytes written(licensed->plaintext.size() + 1);
    ssize_t n = ::pread(out_fd->fd(), written.data(), written.size(), 0);
    // Each export appends; the first one must be the whole plaintext.
    FUZZ_CHECK(n >= static_cast<ssize_t>(licensed->plaintext.size()) &&
                   std::equal(licensed->plaintext.begin(), licensed->plaintext.end(), written.begin()),
               "the exported plaintext differs from the package's");
  }
  out_fd.reset();
  pkg_fd.reset();
  FUZZ_CHECK(OpenFds() == fds_before, "descriptors leaked: " + std::to_string(fds_before) + " before, " +
                                          std::to_string(OpenFds()) + " after");
  return 0;
}
