#include "base/reader.h"

#include <string>

namespace sealdrop {

void StoreU32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
void StoreU64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint32_t LoadU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}
uint64_t LoadU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

bool Reader::ReadU8(uint8_t* out) {
  if (data_.size() < 1) return false;
  *out = data_[0];
  data_ = data_.subspan(1);
  return true;
}

bool Reader::PeekU8(uint8_t* out) const {
  if (data_.empty()) return false;
  *out = data_[0];
  return true;
}

bool Reader::ReadU16(uint16_t* out) {
  if (data_.size() < 2) return false;
  *out = static_cast<uint16_t>((data_[0] << 8) | data_[1]);
  data_ = data_.subspan(2);
  return true;
}

bool Reader::ReadU32(uint32_t* out) {
  if (data_.size() < 4) return false;
  *out = LoadU32(data_.data());
  data_ = data_.subspan(4);
  return true;
}

bool Reader::ReadU64(uint64_t* out) {
  if (data_.size() < 8) return false;
  *out = LoadU64(data_.data());
  data_ = data_.subspan(8);
  return true;
}

bool Reader::ReadBytes(size_t n, ByteView* out) {
  if (data_.size() < n) return false;
  *out = data_.first(n);
  data_ = data_.subspan(n);
  return true;
}

bool Reader::Skip(size_t n) {
  if (data_.size() < n) return false;
  data_ = data_.subspan(n);
  return true;
}

Reader::Prefixed Reader::ReadU32PrefixedIn(size_t min, size_t max, ByteView* out, uint32_t* length) {
  if (data_.size() < 4) return Prefixed::kIncomplete;
  uint32_t n = LoadU32(data_.data());
  if (length != nullptr) *length = n;
  if (n < min || n > max) return Prefixed::kOutOfRange;
  if (data_.size() - 4 < n) return Prefixed::kIncomplete;
  *out = data_.subspan(4, n);
  data_ = data_.subspan(4 + n);
  return Prefixed::kOk;
}

bool Reader::ReadCString(std::string_view* out) {
  const void* nul = data_.empty() ? nullptr : std::memchr(data_.data(), 0, data_.size());
  if (nul == nullptr) return false;
  size_t n = static_cast<size_t>(static_cast<const uint8_t*>(nul) - data_.data());
  *out = AsString(data_.first(n));
  data_ = data_.subspan(n + 1);
  return true;
}

bool SliceAt(ByteView data, uint64_t offset, uint64_t size, ByteView* out) {
  if (offset > data.size() || size > data.size() - offset) return false;
  *out = data.subspan(static_cast<size_t>(offset), static_cast<size_t>(size));
  return true;
}

bool Reader::ReadU32Prefixed(size_t max, ByteView* out) {
  if (data_.size() < 4) return false;
  uint32_t n = LoadU32(data_.data());
  if (n > max || data_.size() - 4 < n) return false;
  *out = data_.subspan(4, n);
  data_ = data_.subspan(4 + n);
  return true;
}

ByteView Reader::ReadRest() {
  ByteView rest = data_;
  data_ = {};
  return rest;
}

Status Reader::ExpectEnd(std::string_view what) const {
  if (!data_.empty())
    return Fail(ErrorCode::kMalformed,
                std::string(what) + " has " + std::to_string(data_.size()) +
                    " unexpected trailing bytes");
  return Ok();
}

void Writer::U16(uint16_t v) {
  out_.push_back(static_cast<uint8_t>(v >> 8));
  out_.push_back(static_cast<uint8_t>(v));
}
void Writer::U32(uint32_t v) {
  uint8_t b[4];
  StoreU32(b, v);
  out_.insert(out_.end(), b, b + 4);
}
void Writer::U64(uint64_t v) {
  uint8_t b[8];
  StoreU64(b, v);
  out_.insert(out_.end(), b, b + 8);
}

}  // namespace sealdrop
