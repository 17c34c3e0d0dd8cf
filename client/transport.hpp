// What the driver needs of a byte stream: TCP today, TLS next, and an
// in-memory stream for the driver's own tests. Private to the library.
//
// Completions go to a transport_sink (the driver), held by shared_ptr for as
// long as an operation is pending; they run on the transport's executor, never
// inline from the call that started the operation.
#pragma once

#include <asio/any_io_executor.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include "warren/codec/bytes.hpp"

namespace warren::detail {

class transport_sink {
 public:
  virtual void on_read(std::error_code ec, std::size_t n) = 0;
  virtual void on_written(std::error_code ec) = 0;

 protected:
  ~transport_sink() = default;
};

class transport {
 public:
  virtual ~transport() = default;

  virtual asio::any_io_executor get_executor() const = 0;
  // One read of at most into.size() bytes; `into` stays valid until on_read.
  virtual void async_read_some(std::span<std::uint8_t> into, std::shared_ptr<transport_sink> sink) = 0;
  // Writes what it can at once without waiting; would_block (or 0 bytes)
  // when the stream has no room.
  virtual std::size_t write_some(bytes_view bytes, std::error_code& ec) = 0;
  // Writes all of `bytes` (kept valid by the caller until on_written).
  virtual void async_write(bytes_view bytes, std::shared_ptr<transport_sink> sink) = 0;
  // Bytes that arrived and wait unread: a paused reader's proof that the
  // peer is alive.
  virtual std::size_t unread() = 0;
  // Receive batching (SO_RCVLOWAT): only where the stream supports it.
  virtual bool can_batch() const noexcept { return false; }
  virtual void set_receive_low_watermark(int /*bytes*/) {}
  // Ends the stream; pending operations complete with operation_aborted.
  virtual void close() = 0;
  // "host:port" or a name for messages.
  virtual std::string describe() const = 0;
};

}  // namespace warren::detail
