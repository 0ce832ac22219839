// Every message of sealdrop's protocol, its encoding and its limits.
// docs/protocol.md is the prose companion of this file.
//
// Three channels:
//  * Outer control messages (host <-> server): JSON objects in WebSocket text
//    messages, at most kMaxControlSize bytes, with a "type" member.
//  * Inner messages (processor <-> server, inside the inner TLS): frames
//    (protocol/frames.h) of the InnerType below; the host only relays the TLS
//    records that carry them, as WebSocket binary messages.
//  * Processor socket messages (host <-> processor): frames of TrpType.
//
// Parsers here read untrusted bytes: every field is required and type
// checked, strings have maximum sizes, and unknown members are ignored only
// where the table in docs/protocol.md says so (control messages, for forward
// compatibility), never in signed payloads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/sha256.h"

namespace sealdrop {

// ---- Outer control messages -------------------------------------------------
inline constexpr size_t kMaxControlSize = 64 * 1024;       // host -> server
inline constexpr size_t kMaxServerControlSize = 8 << 20;  // server -> host (receipt lists)
inline constexpr size_t kMaxReceiptsPerReply = 5000;
inline constexpr size_t kMaxFieldSize = 256;
// Largest WebSocket binary message the server or host accepts (inner records).
inline constexpr size_t kMaxInnerRelaySize = 1 << 20;

struct ControlMessage {
  std::string type;
  // Common fields; which are present depends on type (see docs/protocol.md).
  std::string user, password, program, version, idempotency_key, order_id;
  std::string receipt, release, code, message, package_digest, token;
  bool remember = false;  // login: ask for a token to log in with later
  // purchase: the user knowingly buys a second licence of a version they
  // already own (without it the server refuses with already_owned).
  bool again = false;
  int64_t balance = 0, price = 0, amount = 0;
  uint64_t size = 0;
  bool charge_required = false;
  std::vector<std::string> receipts;
};

std::string EncodeControl(const ControlMessage& message);
// max_size: kMaxControlSize for what a host sends, kMaxServerControlSize for
// what a server sends.
Result<ControlMessage> ParseControl(std::string_view text, size_t max_size = kMaxControlSize);
ControlMessage ErrorControl(const Error& error);

// ---- Inner messages ----------------------------------------------------------
enum class InnerType : uint8_t {
  kCapabilities = 1,  // processor -> server: JSON (InnerCapabilities)
  kPackageBegin = 2,  // server -> processor: u64 total package size
  kPackageData = 3,   // server -> processor: package bytes
  kPackageEnd = 4,    // server -> processor: SHA-256 of the package (32)
  kReceived = 5,      // processor -> server: SHA-256 of what it holds (32)
  kError = 6,         // either way: JSON {"code","message"}
};
inline constexpr size_t kMaxCapabilitiesSize = 64 * 1024;
inline constexpr size_t kMaxPackageDataSize = 256 * 1024;
std::optional<size_t> InnerMaxBody(uint8_t type);

struct InnerCapabilities {
  int version = 1;
  std::vector<std::string> package_suites;
  std::string key_wrap_chain_pem;  // key-wrap certificate first, then issuers
};
Bytes EncodeCapabilities(const InnerCapabilities& caps);
Result<InnerCapabilities> ParseCapabilities(ByteView body);

// ---- Signed payloads -----------------------------------------------------
inline constexpr char kReceiptJwsType[] = "sealdrop-receipt+jws";
inline constexpr char kReleaseJwsType[] = "sealdrop-release+jws";
inline constexpr char kReleaseExporterLabel[] = "EXPORTER-sealdrop-release";

struct ReceiptClaims {
  std::string receipt_id;
  std::string user;
  int64_t program_id = 0;
  std::string program;
  std::string version;
  int64_t amount = 0;
  std::string device_serial;
  int64_t issued_at = 0;
  std::string issuer;  // server name
};
std::string EncodeReceiptClaims(const ReceiptClaims& claims);
Result<ReceiptClaims> ParseReceiptClaims(ByteView json);

// The release signature (step 1010-1011): binds the package digest to this
// inner session (TLS exporter), this device and this order.
struct ReleaseClaims {
  std::string package_id;
  std::string package_digest;  // hex package digest (package/digest.h)
  std::string device_serial;
  std::string order_id;
  std::string receipt_id;
  std::string session;         // base64url of the 32-byte TLS exporter value
};
std::string EncodeReleaseClaims(const ReleaseClaims& claims);
Result<ReleaseClaims> ParseReleaseClaims(ByteView json);

// ---- Processor socket messages ----------------------------------------------
// Each body's codec (a struct, one Encode, one Parse) is in
// protocol/trp_messages.h.
enum class TrpType : uint8_t {
  // host -> processor
  kOpenSession = 1,   // empty: start an inner session (processor sends ClientHello)
  kInnerIn = 2,       // inner TLS records from the server
  kRelease = 3,       // JSON {"release": jws, "receipt": jws}
  kList = 4,          // empty
  kInfo = 5,          // empty
  kRun = 6,           // JSON {"args":[...],"cwd","env":[...]}; stdin, stdout, stderr
                      // and the package as fds (SCM_RIGHTS)
  kAbort = 7,         // empty: drop the held package
  kOpen = 8,          // JSON {"with": bool, "args", "cwd", "env"}: a data package's
                      // plaintext, with=false: to the host (export right needed),
                      // fds stdout and the data package; with=true: as stdin of a
                      // licensed program, fds stdin, stdout, stderr, the program's
                      // package and the data package. Replies kExit or kError.
  // processor -> host
  kInnerOut = 0x81,         // inner TLS records for the server
  kDownloadComplete = 0x82, // JSON {"package_digest","size","package_id","name","version"}
  kPackageEnd = 0x84,       // JSON {"package_id","name","version","kind","size","package_digest"},
                            // with the released package file as a read-only
                            // descriptor (SCM_RIGHTS) for the host to copy
  kResult = 0x85,           // JSON reply to kList, kInfo
  kExit = 0x86,             // JSON {"exit_code"} or {"signal"} after kRun
  kError = 0xff,            // JSON {"code","message"}
};
std::optional<size_t> TrpMaxBody(uint8_t type);

Bytes ErrorJson(const Error& error);
Error ParseErrorJson(ByteView body);

std::string DigestHex(const Digest& d);

}  // namespace sealdrop
