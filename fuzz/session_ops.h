// The input format of the two state-machine fuzzers (trp_session,
// server_session): a sequence of operations read front to back, each an
// opcode byte and its operands. make_corpus writes seeds in this format
// with OpWriter; the fuzzers read them with OpReader, which never fails: an
// exhausted input reads as zeros and empty blobs, so every byte string is a
// valid program.
//
// A blob is a u16 length (big-endian) and that many bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"

namespace sealdrop::fuzz {

class OpReader {
 public:
  OpReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t U8() { return at_ < size_ ? data_[at_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>((U8() << 8) | U8()); }
  uint32_t U32() { return (uint32_t{U16()} << 16) | U16(); }
  uint64_t U64() { return (uint64_t{U32()} << 32) | U32(); }
  Bytes Take(size_t n) {
    n = std::min(n, size_ - std::min(at_, size_));
    Bytes out(data_ + at_, data_ + at_ + n);
    at_ += n;
    return out;
  }
  Bytes Blob() { return Take(U16()); }
  std::string Text() {
    Bytes b = Blob();
    return std::string(b.begin(), b.end());
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

class OpWriter {
 public:
  OpWriter& U8(uint8_t v) { out_.push_back(v); return *this; }
  OpWriter& U16(uint16_t v) { return U8(static_cast<uint8_t>(v >> 8)).U8(static_cast<uint8_t>(v)); }
  OpWriter& U32(uint32_t v) { return U16(static_cast<uint16_t>(v >> 16)).U16(static_cast<uint16_t>(v)); }
  OpWriter& U64(uint64_t v) { return U32(static_cast<uint32_t>(v >> 32)).U32(static_cast<uint32_t>(v)); }
  OpWriter& Blob(ByteView b) {
    U16(static_cast<uint16_t>(b.size()));
    out_.insert(out_.end(), b.begin(), b.begin() + std::min<size_t>(b.size(), 0xffff));
    return *this;
  }
  OpWriter& Text(std::string_view s) { return Blob(AsBytes(s)); }
  const Bytes& bytes() const { return out_; }

 private:
  Bytes out_;
};

// trp_session: byte 0 selects the peer (odd: the vendor server; even: a
// certificate whose key signed nothing), then one opcode per step after the
// (plain) handshake. An opcode with kHold set leaves the frames with the
// server (they travel with the next delivery), so deliveries can carry
// several frames or cut one.
namespace trp_ops {
enum DeepOp : uint8_t {
  kSelectPackage = 0,  // u8: 0 data package, 1 protected ELF (if available)
  kBeginValid,         // PackageBegin(total of the selected package)
  kBeginU64,           // u64: PackageBegin(value)
  kBeginBlob,          // blob: PackageBegin body
  kDataValid,          // u32: the next n (mod what is left + 1) package bytes
  kDataRest,           // all remaining package bytes, in frames of at most 256 KiB
  kDataBlob,           // blob: PackageData body
  kEndValid,           // PackageEnd(digest of the selected package)
  kEndBlob,            // blob: PackageEnd body
  kErrorBlob,          // blob: Error body
  kFrame,              // u8 type, blob body
  kRawRecords,         // blob: raw bytes in the inner stream (not a frame the harness built)
  kCutDelivery,        // u16: deliver what the server holds in two pieces, cut there
  kServerClose,        // the server sends close_notify (with what it holds)
  kReleaseValid,       // a genuine release for the held package
  kReleaseClaims,      // blob: claims JSON signed by the server's key as a release
  kReleaseRaw,         // blob release, blob receipt
  kAbort,              // the host gives up
  kDeepCount
};
inline constexpr uint8_t kHold = 0x80;
}  // namespace trp_ops

// server_session: one opcode per step.
namespace server_ops {
enum Op : uint8_t {
  kControlRaw = 0,    // blob: text to OnControl (password logins skipped, see the fuzzer)
  kLoginToken,        // u8: 0 alice's token, 1 bob's token, 2 wrong token, 3 alice's token as bob
  kPurchase,          // u8 program choice, blob idempotency key (empty: a valid fixed key)
  kRedownload,        // u8: 0 the receipt of the last charge, 1 a receipt made at set-up, 2 blob
  kCharge,            // u8: 0 the current order, 1 another id; (blob when 1)
  kSimple,            // u8: balance, receipts, bye, or an unknown type
  kProcessorStart,    // u8: which device (0 good, 1 revoked, 2 other manufacturer)
  kCapabilitiesValid, // the device's real capabilities
  kCapabilitiesBlob,  // blob: Capabilities body
  kReceivedValid,     // Received(digest the server sent in PackageEnd)
  kReceivedBlob,      // blob: Received body
  kInnerErrorBlob,    // blob: Error body from the processor
  kInnerFrame,        // u8 type, blob body
  kInnerRaw,          // blob: raw bytes in the inner stream (not a frame the harness built)
  kProcessorClose,    // the processor sends close_notify
  kOpCount
};
}  // namespace server_ops

}  // namespace sealdrop::fuzz
