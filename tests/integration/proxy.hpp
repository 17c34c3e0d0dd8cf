// A TCP relay between the client and the broker, run on the test's own
// io_context, so a test can make the network misbehave: cut every connection
// at once (a lost socket) or swallow everything silently (a dead peer).
#pragma once

#include <array>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace warren::test {

class tcp_proxy {
 public:
  // Listens on 127.0.0.1 (an ephemeral port) and relays each accepted
  // connection to the broker of broker_params(), or to another port of
  // that host (its TLS listener, say).
  explicit tcp_proxy(asio::any_io_executor ex, std::uint16_t upstream_port = 0)
      : state_(std::make_shared<state>(ex)) {
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    state_->acceptor.open(ep.protocol());
    state_->acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
    state_->acceptor.bind(ep);
    state_->acceptor.listen();
    auto p = broker_params();
    state_->upstream =
        asio::ip::tcp::endpoint(asio::ip::make_address(resolve_host(p.host)),
                                upstream_port != 0 ? upstream_port : p.port);
    asio::co_spawn(ex, accept_loop(state_), asio::detached);
  }
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;
  ~tcp_proxy() { state_->stop(); }

  std::uint16_t port() const { return state_->acceptor.local_endpoint().port(); }

  // The broker's connection parameters, pointed at this relay.
  connection_params params() const {
    auto p = broker_params();
    p.host = "127.0.0.1";
    p.port = port();
    return p;
  }

  // Closes every relayed socket, both sides: the client sees the connection drop.
  void cut() {
    for (auto& s : state_->sockets) {
      std::error_code ignored;
      s->close(ignored);
    }
  }

  // From now on bytes in either direction are read and dropped: to the
  // client the broker has gone silent, and the socket stays open.
  void freeze() { state_->frozen = true; }
  // Relays again (what was swallowed meanwhile is lost).
  void unfreeze() { state_->frozen = false; }

  std::size_t accepted() const { return state_->accepted; }

 private:
  using socket_ptr = std::shared_ptr<asio::ip::tcp::socket>;

  struct state {
    explicit state(asio::any_io_executor ex) : ex(ex), acceptor(ex) {}
    void stop() {
      std::error_code ignored;
      acceptor.close(ignored);
      for (auto& s : sockets) s->close(ignored);
    }
    asio::any_io_executor ex;
    asio::ip::tcp::acceptor acceptor;
    asio::ip::tcp::endpoint upstream;
    std::vector<socket_ptr> sockets;
    bool frozen = false;
    std::size_t accepted = 0;
  };

  static std::string resolve_host(const std::string& host) {
    return host == "localhost" ? "127.0.0.1" : host;
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
    constexpr auto tuple = asio::experimental::as_tuple(asio::use_awaitable);
    for (;;) {
      auto client = std::make_shared<asio::ip::tcp::socket>(st->ex);
      auto [ec] = co_await st->acceptor.async_accept(*client, tuple);
      if (ec) co_return;
      ++st->accepted;
      auto server = std::make_shared<asio::ip::tcp::socket>(st->ex);
      auto [cec] = co_await server->async_connect(st->upstream, tuple);
      if (cec) {
        std::error_code ignored;
        client->close(ignored);
        continue;
      }
      st->sockets.push_back(client);
      st->sockets.push_back(server);
      asio::co_spawn(st->ex, pump(st, client, server), asio::detached);
      asio::co_spawn(st->ex, pump(st, server, client), asio::detached);
    }
  }

  static asio::awaitable<void> pump(std::shared_ptr<state> st, socket_ptr from, socket_ptr to) {
    constexpr auto tuple = asio::experimental::as_tuple(asio::use_awaitable);
    std::array<char, 16384> buf;
    for (;;) {
      auto [ec, n] = co_await from->async_read_some(asio::buffer(buf), tuple);
      if (ec) break;
      if (st->frozen) continue;
      auto [wec, w] = co_await asio::async_write(*to, asio::buffer(buf.data(), n), tuple);
      if (wec) break;
    }
    std::error_code ignored;
    if (!st->frozen) to->shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }

  std::shared_ptr<state> state_;
};

}  // namespace warren::test
