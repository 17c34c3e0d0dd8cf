// An in-memory transport for tests of the driver: the test plays the broker
// on the other end of a memory_link, and can make it misbehave (stop
// reading, fall silent, hang up) or make the transport itself fail.
// Single-threaded: everything runs on one executor.
#pragma once

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "warren/client/transport.hpp"

namespace warren::test {

struct memory_link {
  explicit memory_link(asio::any_io_executor e) : ex(e), broker_wake(e) {
    broker_wake.expires_at(asio::steady_timer::time_point::max());
  }

  asio::any_io_executor ex;
  // Client to broker: bytes the broker has not read yet. The "network"
  // holds at most `window` of them; a client write waits beyond that.
  std::vector<std::uint8_t> to_broker;
  std::size_t window = std::numeric_limits<std::size_t>::max();
  // Broker to client: bytes the client has not read yet.
  std::deque<std::uint8_t> to_client;
  bool client_closed = false;  // the driver closed its transport
  bool broker_closed = false;  // the broker hung up
  bool throw_on_read = false;  // the next read call throws
  std::size_t write_calls = 0;  // write_some and async_write calls the driver made
  asio::steady_timer broker_wake;  // cancelled whenever the client writes

  std::span<std::uint8_t> read_into;
  std::shared_ptr<detail::transport_sink> reader;
  bytes_view write_rest;
  std::shared_ptr<detail::transport_sink> writer;

  // ---- the broker's side ----
  void broker_write(const std::vector<std::uint8_t>& bytes) {
    to_client.insert(to_client.end(), bytes.begin(), bytes.end());
    pump();
  }
  std::vector<std::uint8_t> broker_read() {
    std::vector<std::uint8_t> out;
    out.swap(to_broker);
    pump();
    return out;
  }
  void broker_hang_up() {
    broker_closed = true;
    pump();
  }

  // ---- the client's side ----
  std::size_t room() const {
    return to_broker.size() >= window ? 0 : window - to_broker.size();
  }
  std::size_t accept(bytes_view bytes) {
    const std::size_t n = std::min(room(), bytes.size());
    to_broker.insert(to_broker.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    if (n != 0) broker_wake.cancel();
    return n;
  }

  // Completes what can complete, always through the executor.
  void pump() {
    if (reader && (!to_client.empty() || broker_closed)) {
      std::size_t n = std::min(read_into.size(), to_client.size());
      std::copy_n(to_client.begin(), n, read_into.begin());
      to_client.erase(to_client.begin(), to_client.begin() + static_cast<std::ptrdiff_t>(n));
      std::error_code ec = n == 0 ? std::error_code(asio::error::eof) : std::error_code();
      asio::post(ex, [sink = std::move(reader), ec, n] { sink->on_read(ec, n); });
      reader = nullptr;
    }
    if (writer) {
      const std::size_t n = accept(write_rest);
      write_rest = write_rest.subspan(n);
      if (write_rest.empty())
        asio::post(ex, [sink = std::move(writer)] { sink->on_written({}); });
      if (write_rest.empty()) writer = nullptr;
    }
  }
};

class memory_transport final : public detail::transport {
 public:
  explicit memory_transport(std::shared_ptr<memory_link> link) : link_(std::move(link)) {}

  asio::any_io_executor get_executor() const override { return link_->ex; }
  void async_read_some(std::span<std::uint8_t> into,
                       std::shared_ptr<detail::transport_sink> sink) override {
    if (link_->throw_on_read) {
      link_->throw_on_read = false;
      throw std::runtime_error("injected read failure");
    }
    link_->read_into = into;
    link_->reader = std::move(sink);
    link_->pump();
  }
  std::size_t write_some(bytes_view bytes, std::error_code& ec) override {
    ++link_->write_calls;
    if (link_->client_closed || link_->broker_closed) {
      ec = asio::error::broken_pipe;
      return 0;
    }
    const std::size_t n = link_->accept(bytes);
    if (n == 0) ec = asio::error::would_block;
    return n;
  }
  void async_write(bytes_view bytes, std::shared_ptr<detail::transport_sink> sink) override {
    ++link_->write_calls;
    link_->write_rest = bytes;
    link_->writer = std::move(sink);
    link_->pump();
  }
  std::size_t unread() override { return link_->to_client.size(); }
  void close() override {
    link_->client_closed = true;
    link_->broker_wake.cancel();
    if (auto r = std::move(link_->reader))
      asio::post(link_->ex, [r] { r->on_read(asio::error::operation_aborted, 0); });
    if (auto w = std::move(link_->writer))
      asio::post(link_->ex, [w] { w->on_written(asio::error::operation_aborted); });
    link_->reader = nullptr;
    link_->writer = nullptr;
  }
  std::string describe() const override { return "memory"; }

 private:
  std::shared_ptr<memory_link> link_;
};

}  // namespace warren::test
