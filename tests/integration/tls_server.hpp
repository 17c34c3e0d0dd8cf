// A TLS server on the test's own io_context, for what RabbitMQ's listener
// cannot show: a server that speaks only old TLS versions. It accepts on
// 127.0.0.1 (an ephemeral port), runs the server side of the handshake with
// the context it was given, and records how each handshake ended.
#pragma once

#include <openssl/ssl.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace warren::test {

// Where scripts/tls leaves the test certificates.
inline std::string tls_dir() {
  const char* d = std::getenv("WARREN_TLS_DIR");
  return d && *d ? d : "/tmp/warren-tls";
}
inline std::string tls_file(const std::string& name) { return tls_dir() + "/" + name; }

class tls_server {
 public:
  tls_server(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> ctx)
      : state_(std::make_shared<state>(ex, std::move(ctx))) {
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    state_->acceptor.open(ep.protocol());
    state_->acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
    state_->acceptor.bind(ep);
    state_->acceptor.listen();
    asio::co_spawn(ex, accept_loop(state_), asio::detached);
  }
  tls_server(const tls_server&) = delete;
  tls_server& operator=(const tls_server&) = delete;
  ~tls_server() {
    std::error_code ignored;
    state_->acceptor.close(ignored);
  }

  std::uint16_t port() const { return state_->acceptor.local_endpoint().port(); }
  // How each accepted connection's handshake ended, in order.
  const std::vector<std::error_code>& handshakes() const { return state_->results; }

  // A server context with the test CA's server certificate for localhost
  // that offers TLS 1.0 and 1.1 only (security level 0, which those
  // versions need on OpenSSL 3).
  static std::shared_ptr<asio::ssl::context> old_versions_only() {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    SSL_CTX_set_security_level(ctx->native_handle(), 0);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx->native_handle(), TLS1_1_VERSION);
    SSL_CTX_set_cipher_list(ctx->native_handle(), "DEFAULT:@SECLEVEL=0");
    ctx->use_certificate_chain_file(tls_file("server.pem"));
    ctx->use_private_key_file(tls_file("server.key"), asio::ssl::context::pem);
    return ctx;
  }

 private:
  struct state {
    state(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> c)
        : ex(ex), acceptor(ex), ctx(std::move(c)) {}
    asio::any_io_executor ex;
    asio::ip::tcp::acceptor acceptor;
    std::shared_ptr<asio::ssl::context> ctx;
    std::vector<std::error_code> results;
  };

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
    constexpr auto tuple = asio::experimental::as_tuple(asio::use_awaitable);
    for (;;) {
      asio::ip::tcp::socket socket(st->ex);
      auto [ec] = co_await st->acceptor.async_accept(socket, tuple);
      if (ec) co_return;
      asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), *st->ctx);
      auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, tuple);
      st->results.push_back(hec);
      std::error_code ignored;
      stream.lowest_layer().close(ignored);
    }
  }

  std::shared_ptr<state> state_;
};

}  // namespace warren::test
