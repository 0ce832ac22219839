// Bounded reading of untrusted bytes, and the matching writer.
//
// Reader is a cursor over a ByteView (after BoringSSL's CBS): every Read*
// either succeeds and advances, or fails and leaves the cursor where it was.
// Length-prefixed reads take the maximum the caller accepts, checked before
// anything is copied. A parser ends with ExpectEnd() so that trailing bytes
// are an error, never silently ignored. All integers are big-endian.
//
// Lifetimes: the Reader's view, and every view it hands out, point into the
// caller's buffer, which must stay alive while they are used.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}

  size_t remaining() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

  bool ReadU8(uint8_t* out);
  bool ReadU16(uint16_t* out);
  bool ReadU32(uint32_t* out);
  bool ReadU64(uint64_t* out);
  bool ReadBytes(size_t n, ByteView* out);
  // Reads a u32 length, rejects it if above max, then that many bytes.
  bool ReadU32Prefixed(size_t max, ByteView* out);
  // Consumes everything left.
  ByteView ReadRest();

  // Fails with kMalformed naming `what` unless the cursor is at the end.
  Status ExpectEnd(std::string_view what) const;

 private:
  ByteView data_;
};

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(v); }
  void U16(uint16_t v);
  void U32(uint32_t v);
  void U64(uint64_t v);
  void Append(ByteView b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void Append(std::string_view s) { Append(AsBytes(s)); }
  void U32Prefixed(ByteView b) {
    U32(static_cast<uint32_t>(b.size()));
    Append(b);
  }
  Bytes Take() { return std::move(out_); }
  const Bytes& bytes() const { return out_; }

 private:
  Bytes out_;
};

// Store and load big-endian integers at a pointer (no bounds checks; callers
// have already checked the size).
void StoreU32(uint8_t* p, uint32_t v);
void StoreU64(uint8_t* p, uint64_t v);
uint32_t LoadU32(const uint8_t* p);
uint64_t LoadU64(const uint8_t* p);

}  // namespace sealdrop
