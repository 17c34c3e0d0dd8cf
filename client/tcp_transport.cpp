#include "warren/client/tcp_transport.hpp"

#include <asio/write.hpp>

namespace warren::detail {

tcp_transport::tcp_transport(asio::ip::tcp::socket socket)
    : socket_(std::move(socket)), executor_(socket_.get_executor()) {
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  auto ep = socket_.remote_endpoint(ec);
  where_ = ec ? std::string("tcp") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

void tcp_transport::async_read_some(std::span<std::uint8_t> into,
                                    std::shared_ptr<transport_sink> sink) {
  socket_.async_read_some(asio::buffer(into.data(), into.size()),
                          [sink = std::move(sink)](std::error_code ec, std::size_t n) {
                            sink->on_read(ec, n);
                          });
}

std::size_t tcp_transport::write_some(bytes_view bytes, std::error_code& ec) {
  return socket_.write_some(asio::buffer(bytes.data(), bytes.size()), ec);
}

void tcp_transport::async_write(bytes_view bytes, std::shared_ptr<transport_sink> sink) {
  asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                    [sink = std::move(sink)](std::error_code ec, std::size_t) { sink->on_written(ec); });
}

std::size_t tcp_transport::unread() {
  std::error_code ec;
  const std::size_t n = socket_.available(ec);
  return ec ? 0 : n;
}

// Receive batching needs Linux's wake-up when the low-water mark is lowered;
// elsewhere a batch could wait for data that never comes.
bool tcp_transport::can_batch() const noexcept {
#if defined(__linux__)
  return true;
#else
  return false;
#endif
}

void tcp_transport::set_receive_low_watermark(int bytes) {
  std::error_code ignored;
  socket_.set_option(asio::socket_base::receive_low_watermark(bytes), ignored);
}

void tcp_transport::close() {
  std::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace warren::detail
