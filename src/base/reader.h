// Bounded reading of untrusted bytes, and the matching writer.
//
// Reader is a cursor over a ByteView (after BoringSSL's CBS): every Read*
// either succeeds and advances, or fails and leaves the cursor where it was.
// Length-prefixed reads take the maximum the caller accepts, checked before
// anything is copied. A parser ends with ExpectEnd() so that trailing bytes
// are an error, never silently ignored. All integers are big-endian, except
// ReadRaw's structs, which are copied as stored (for formats in the host's
// own byte order, such as ELF64 little-endian on the hosts sealdrop supports).
//
// Offsets from inside a format (an ELF header's e_phoff, a trailer's length)
// become views through SliceAt, which checks offset + size against the data
// without overflowing; a Reader over that view then reads the entries.
//
// Lifetimes: the Reader's view, and every view it hands out, point into the
// caller's buffer, which must stay alive while they are used.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}

  size_t remaining() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

  bool ReadU8(uint8_t* out);
  // The next byte, without consuming it.
  bool PeekU8(uint8_t* out) const;
  bool ReadU16(uint16_t* out);
  bool ReadU32(uint32_t* out);
  bool ReadU64(uint64_t* out);
  bool ReadBytes(size_t n, ByteView* out);
  bool Skip(size_t n);
  // Reads a u32 length, rejects it if above max, then that many bytes.
  bool ReadU32Prefixed(size_t max, ByteView* out);

  // The same for parsers that see a stream arrive, or must size a buffer
  // from the length: a length outside [min, max] is kOutOfRange as soon as
  // its four bytes are there, before anything waits for, or allocates, the
  // body; kIncomplete means more bytes are needed. On kIncomplete and
  // kOutOfRange the cursor is unchanged and `length` (if given) holds the
  // length read, when its four bytes were there.
  enum class Prefixed { kOk, kIncomplete, kOutOfRange };
  Prefixed ReadU32PrefixedIn(size_t min, size_t max, ByteView* out, uint32_t* length = nullptr);

  // A NUL-terminated string: the bytes before the first NUL (consumed with
  // it). Fails if no NUL is left.
  bool ReadCString(std::string_view* out);

  // sizeof(T) bytes copied into a trivially copyable T as they are stored.
  template <typename T>
  bool ReadRaw(T* out) {
    static_assert(std::is_trivially_copyable_v<T>);
    ByteView raw;
    if (!ReadBytes(sizeof(T), &raw)) return false;
    std::memcpy(out, raw.data(), sizeof(T));
    return true;
  }
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

// The `size` bytes at `offset` in `data`, or false (out untouched) when any
// of them lies outside: offset + size is checked without overflow.
bool SliceAt(ByteView data, uint64_t offset, uint64_t size, ByteView* out);

// Store and load big-endian integers at a pointer (no bounds checks; callers
// have already checked the size).
void StoreU32(uint8_t* p, uint32_t v);
void StoreU64(uint8_t* p, uint64_t v);
uint32_t LoadU32(const uint8_t* p);
uint64_t LoadU64(const uint8_t* p);

}  // namespace sealdrop
