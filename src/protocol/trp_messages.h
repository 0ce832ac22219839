// One codec per message on the processor's Unix socket (host <-> processor),
// used by both ends: the `sealdrop` client (client/, cli/sealdrop_main.cc,
// protocol/host_session.cc) and `sealdrop-trp` (trp/server.cc).
//
// Each message is a frame (protocol/frames.h) of a TrpType
// (protocol/messages.h, which also holds each type's body limit); this file
// gives each frame body a typed struct, one Encode and one Parse. Bodies are
// JSON objects encoded by nlohmann::json with its default member order
// (sorted by name), so the bytes are those sealdrop has always sent; unknown
// members are ignored on parse (a newer peer may add some), every known
// member is required and type checked unless marked optional below.
// Bodies without a struct here: kOpenSession, kList, kInfo and kAbort are
// empty (the frame limit is 0); kInnerIn and kInnerOut carry inner TLS
// records the host cannot read; kError is ErrorJson/ParseErrorJson.
//
// Every Parse takes the whole frame: a frame of another type is kMalformed,
// as is a body that is not one JSON object (trailing bytes included) or a
// member of the wrong type; a body above the type's limit is kTooLarge.
// Descriptors that travel with a frame (SCM_RIGHTS) are the adapters'.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "protocol/frames.h"
#include "protocol/messages.h"

namespace sealdrop {

// Longest JWS in a release request (the same bound as the control message
// that brought it from the server).
inline constexpr size_t kMaxTrpJwsSize = 16 * 1024;

// kRelease, host -> processor (step 1010): {"receipt","release"}.
struct TrpRelease {
  static constexpr TrpType kType = TrpType::kRelease;
  std::string release;  // the release JWS
  std::string receipt;  // the receipt JWS
};

// kRun, host -> processor: {"args","cwd","env"}, each optional (absent:
// empty). With it travel stdin, stdout, stderr and the package.
struct TrpRun {
  static constexpr TrpType kType = TrpType::kRun;
  std::vector<std::string> args;
  std::string cwd;
  std::vector<std::string> env;  // NAME=VALUE
};

// kOpen, host -> processor: {"with"} required, then kRun's members.
// with=false: export (fds stdout, the data package); with=true: the data as
// the program's stdin (fds stdin, stdout, stderr, the program, the data).
struct TrpOpen {
  static constexpr TrpType kType = TrpType::kOpen;
  bool with = false;
  TrpRun program;  // args, cwd, env: used only when `with`
};

// kDownloadComplete, processor -> host: the package is held.
struct TrpDownloadComplete {
  static constexpr TrpType kType = TrpType::kDownloadComplete;
  std::string package_digest;  // hex
  uint64_t size = 0;
  std::string package_id;
  std::string name;
  std::string version;
};

// kPackageEnd, processor -> host (step 1011), with the released package's
// read-only descriptor.
struct TrpPackageEnd {
  static constexpr TrpType kType = TrpType::kPackageEnd;
  std::string package_id;
  std::string name;
  std::string version;
  std::string kind;  // "elf" | "data"
  uint64_t size = 0;
  std::string package_digest;  // hex
};

// kResult in answer to kList: {"licences":[...]}.
struct TrpLicenceEntry {
  std::string package_id;
  std::string name;
  std::string version;
  std::string kind;
  std::string receipt_id;
  uint64_t size = 0;
  int64_t released_at = 0;  // seconds since the epoch
};
struct TrpLicenceList {
  static constexpr TrpType kType = TrpType::kResult;
  std::vector<TrpLicenceEntry> licences;
};

// kResult in answer to kInfo.
struct TrpInfo {
  static constexpr TrpType kType = TrpType::kResult;
  std::string serial;
  std::string backend;
  std::string identity_key_id;
  std::string keywrap_key_id;
  uint64_t vendor_roots = 0;
};

// kExit, processor -> host, after kRun or kOpen: {"exit_code"} or {"signal"}.
struct TrpExit {
  static constexpr TrpType kType = TrpType::kExit;
  int exit_code = 0;  // meaningful when signal == 0
  int signal = 0;     // the signal that ended the program, or 0
};

Bytes Encode(const TrpRelease& m);
Bytes Encode(const TrpRun& m);
Bytes Encode(const TrpOpen& m);
Bytes Encode(const TrpDownloadComplete& m);
Bytes Encode(const TrpPackageEnd& m);
Bytes Encode(const TrpLicenceList& m);
Bytes Encode(const TrpInfo& m);
Bytes Encode(const TrpExit& m);

// The whole frame (header and body) of a message.
template <typename M>
Bytes EncodeTrpFrame(const M& m) {
  return EncodeFrame(static_cast<uint8_t>(M::kType), Encode(m));
}

Result<TrpRelease> ParseTrpRelease(FrameView frame);
Result<TrpRun> ParseTrpRun(FrameView frame);
Result<TrpOpen> ParseTrpOpen(FrameView frame);
Result<TrpDownloadComplete> ParseTrpDownloadComplete(FrameView frame);
Result<TrpPackageEnd> ParseTrpPackageEnd(FrameView frame);
Result<TrpLicenceList> ParseTrpLicenceList(FrameView frame);
Result<TrpInfo> ParseTrpInfo(FrameView frame);
Result<TrpExit> ParseTrpExit(FrameView frame);

}  // namespace sealdrop
