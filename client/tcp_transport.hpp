// The transport over a connected TCP socket. Private to the library.
#pragma once

#include <asio/ip/tcp.hpp>

#include "warren/client/transport.hpp"

namespace warren::detail {

class tcp_transport final : public transport {
 public:
  // `socket` is connected and non-blocking (write_some must not wait);
  // TCP_NODELAY is set here.
  explicit tcp_transport(asio::ip::tcp::socket socket);

  asio::any_io_executor get_executor() const override { return executor_; }
  void async_read_some(std::span<std::uint8_t> into, std::shared_ptr<transport_sink> sink) override;
  std::size_t write_some(bytes_view bytes, std::error_code& ec) override;
  void async_write(bytes_view bytes, std::shared_ptr<transport_sink> sink) override;
  std::size_t unread() override;
  bool can_batch() const noexcept override;
  void set_receive_low_watermark(int bytes) override;
  void close() override;
  std::string describe() const override { return where_; }

 private:
  asio::ip::tcp::socket socket_;
  asio::any_io_executor executor_;
  std::string where_;
};

}  // namespace warren::detail
