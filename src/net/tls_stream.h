// The outer TLS as an AsyncStream for Beast (HTTP and WebSocket): a TCP
// stream plus an OuterTls engine.
//
// Why not boost::asio::ssl::stream: it moves one TLS record (at most 17 KB)
// per asynchronous operation, so a 1 GiB download costs ~65,000 rounds of
// executor dispatch, allocation and system calls on each side. Here a write
// encrypts the whole buffer sequence (a WebSocket message of up to ~1 MiB)
// into one buffer and sends it with one async_write, and a read pulls up to
// kReadChunk of ciphertext per system call.
//
// Thread safety: like any Asio stream, one read and one write at a time,
// from one strand. Timeouts are the TCP stream's (next_layer()).
#pragma once

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <memory>
#include <stdexcept>

#include "net/outer_tls.h"

namespace sealdrop {

namespace tls_stream_detail {
inline boost::system::error_code TlsError() {
  return boost::system::errc::make_error_code(boost::system::errc::protocol_error);
}
}  // namespace tls_stream_detail

class TlsStream {
 public:
  static constexpr size_t kReadChunk = 256 * 1024;
  using next_layer_type = boost::beast::tcp_stream;
  using executor_type = next_layer_type::executor_type;

  TlsStream(next_layer_type tcp, std::unique_ptr<OuterTls> engine)
      : tcp_(std::move(tcp)), engine_(std::move(engine)) {}

  executor_type get_executor() { return tcp_.get_executor(); }
  next_layer_type& next_layer() { return tcp_; }
  OuterTls& engine() { return *engine_; }

  // Runs the handshake; throws boost::system::system_error on failure, with
  // OpenSSL's reason (for example a certificate verify failure) in what().
  boost::asio::awaitable<void> Handshake() {
    for (;;) {
      OuterTls::Step step = engine_->Handshake();
      if (engine_->has_outgoing()) {
        Bytes out = engine_->TakeOutgoing();
        co_await boost::asio::async_write(tcp_, boost::asio::buffer(out), boost::asio::use_awaitable);
      }
      if (step == OuterTls::Step::kDone) co_return;
      if (step != OuterTls::Step::kWantRead)
        throw boost::system::system_error(tls_stream_detail::TlsError(), engine_->LastError());
      auto room = engine_->PrepareInput(kReadChunk);
      size_t n = 0;
      try {
        n = co_await tcp_.async_read_some(boost::asio::buffer(room.data(), room.size()),
                                          boost::asio::use_awaitable);
      } catch (...) {
        engine_->CommitInput(0);
        throw;
      }
      engine_->CommitInput(n);
    }
  }

  // Sends close_notify (best effort).
  boost::asio::awaitable<void> Shutdown() {
    engine_->Shutdown();
    if (engine_->has_outgoing()) {
      Bytes out = engine_->TakeOutgoing();
      co_await boost::asio::async_write(tcp_, boost::asio::buffer(out), boost::asio::use_awaitable);
    }
  }

  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(boost::beast::error_code, std::size_t)>(
        ReadOp<MutableBufferSequence>{*this, buffers}, token, tcp_);
  }

  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(boost::beast::error_code, std::size_t)>(
        WriteOp<ConstBufferSequence>{*this, buffers}, token, tcp_);
  }

 private:
  // States: start -> (data | error: post, then complete) or (want read:
  // socket read, then try again as a continuation).
  template <class Buffers>
  struct ReadOp {
    TlsStream& s;
    Buffers buffers;
    int state = 0;  // 0 start, 1 after a socket read, 2 after a post
    boost::beast::error_code result_ec{};
    size_t result_n = 0;

    template <class Self>
    void operator()(Self& self, boost::beast::error_code ec = {}, std::size_t n = 0) {
      if (state == 2) return self.complete(result_ec, result_n);
      bool continuation = state == 1;
      if (state == 1) {
        s.engine_->CommitInput(ec ? 0 : n);
        if (ec) return self.complete(ec, 0);
      }
      boost::asio::mutable_buffer first;
      for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
        boost::asio::mutable_buffer b(*it);
        if (b.size() > 0) {
          first = b;
          break;
        }
      }
      size_t got = 0;
      OuterTls::Step step = first.size() == 0
                                ? OuterTls::Step::kDone
                                : s.engine_->Read(static_cast<uint8_t*>(first.data()), first.size(), &got);
      if (step == OuterTls::Step::kWantRead) {
        auto room = s.engine_->PrepareInput(kReadChunk);
        state = 1;
        s.tcp_.async_read_some(boost::asio::buffer(room.data(), room.size()), std::move(self));
        return;
      }
      result_n = step == OuterTls::Step::kDone ? got : 0;
      result_ec = step == OuterTls::Step::kDone  ? boost::beast::error_code{}
                  : step == OuterTls::Step::kEof ? boost::beast::error_code(boost::asio::error::eof)
                                                 : tls_stream_detail::TlsError();
      if (continuation) return self.complete(result_ec, result_n);
      state = 2;  // never complete from inside the initiating call
      boost::asio::post(s.tcp_.get_executor(), std::move(self));
    }
  };

  template <class Buffers>
  struct WriteOp {
    TlsStream& s;
    Buffers buffers;
    int state = 0;  // 0 start, 1 after the socket write, 2 after a post
    size_t consumed = 0;
    Bytes data;  // owned here: stable while the socket write runs
    boost::beast::error_code result_ec{};

    template <class Self>
    void operator()(Self& self, boost::beast::error_code ec = {}, std::size_t = 0) {
      if (state == 2) return self.complete(result_ec, 0);
      if (state == 1) return self.complete(ec, ec ? 0 : consumed);
      for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
        boost::asio::const_buffer b(*it);
        if (b.size() == 0) continue;
        if (s.engine_->Write(static_cast<const uint8_t*>(b.data()), b.size()) != OuterTls::Step::kDone) {
          result_ec = tls_stream_detail::TlsError();
          state = 2;
          boost::asio::post(s.tcp_.get_executor(), std::move(self));
          return;
        }
        consumed += b.size();
      }
      data = s.engine_->TakeOutgoing();
      state = 1;
      boost::asio::async_write(s.tcp_, boost::asio::buffer(data), std::move(self));
    }
  };

  next_layer_type tcp_;
  std::unique_ptr<OuterTls> engine_;
};

// WebSocket teardown (found by argument-dependent lookup): close the TCP
// connection; the WebSocket close handshake has already happened.
inline void teardown(boost::beast::role_type, TlsStream& stream, boost::beast::error_code& ec) {
  stream.next_layer().socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
  stream.next_layer().socket().close(ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, TlsStream& stream, TeardownHandler&& handler) {
  boost::beast::error_code ec;
  teardown(role, stream, ec);
  boost::asio::post(stream.get_executor(),
                    [h = std::forward<TeardownHandler>(handler), ec]() mutable { h(ec); });
}

}  // namespace sealdrop
