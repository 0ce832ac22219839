#include "protocol/channel_bio.h"

#include <cstring>

#include "crypto/ossl_internal.h"

namespace sealdrop {
namespace {

int BioWrite(BIO* b, const char* data, size_t len, size_t* written) {
  auto* buf = static_cast<ChannelBuffers*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  buf->out.insert(buf->out.end(), reinterpret_cast<const uint8_t*>(data),
                  reinterpret_cast<const uint8_t*>(data) + len);
  *written = len;
  return 1;
}

int BioRead(BIO* b, char* data, size_t len, size_t* read) {
  auto* buf = static_cast<ChannelBuffers*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  size_t avail = buf->pending_input();
  if (avail == 0) {
    BIO_set_retry_read(b);  // "no data yet", never end of stream
    *read = 0;
    return 0;
  }
  size_t n = std::min(len, avail);
  std::memcpy(data, buf->in.data() + buf->in_offset, n);
  buf->in_offset += n;
  if (buf->in_offset == buf->in_end) buf->in_offset = buf->in_end = 0;
  *read = n;
  return 1;
}

long BioCtrl(BIO* b, int cmd, long, void*) {
  auto* buf = static_cast<ChannelBuffers*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return static_cast<long>(buf->pending_input());
    case BIO_CTRL_WPENDING: return static_cast<long>(buf->out.size());
    default: return 0;
  }
}

int BioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* ChannelBioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sealdrop channel");
    if (m == nullptr || BIO_meth_set_write_ex(m, BioWrite) != 1 || BIO_meth_set_read_ex(m, BioRead) != 1 ||
        BIO_meth_set_ctrl(m, BioCtrl) != 1 || BIO_meth_set_create(m, BioCreate) != 1)
      OsslFatal("cannot create the channel BIO method");
    return m;
  }();
  return method;
}

}  // namespace

std::span<uint8_t> ChannelBuffers::PrepareInput(size_t n) {
  // Move what is left to the front once it is no more than what was read.
  if (in_offset > 0 && in_offset >= pending_input()) {
    std::memmove(in.data(), in.data() + in_offset, pending_input());
    in_end -= in_offset;
    in_offset = 0;
  }
  if (in.size() < in_end + n) in.resize(in_end + n);
  return std::span<uint8_t>(in.data() + in_end, n);
}

void ChannelBuffers::CommitInput(size_t used) { in_end += used; }

void ChannelBuffers::AppendInput(ByteView bytes) {
  auto room = PrepareInput(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  CommitInput(bytes.size());
}

BIO* NewChannelBio(ChannelBuffers* buffers) {
  BIO* bio = BIO_new(ChannelBioMethod());
  if (bio != nullptr) BIO_set_data(bio, buffers);
  return bio;
}

}  // namespace sealdrop
