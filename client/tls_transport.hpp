// TLS over a connected TCP socket (asio::ssl, OpenSSL). Private to the
// library; built only with the tls feature.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <memory>

#include "warren/client/transport.hpp"
#include "warren/client/uri.hpp"

namespace warren::detail {

class tls_transport final : public transport {
 public:
  using stream_type = asio::ssl::stream<asio::ip::tcp::socket>;

  // `stream` has finished its handshake; `context` is the one it was made from.
  tls_transport(std::shared_ptr<asio::ssl::context> context, std::unique_ptr<stream_type> stream,
                std::string where);

  asio::any_io_executor get_executor() const override { return executor_; }
  void async_read_some(std::span<std::uint8_t> into, std::shared_ptr<transport_sink> sink) override;
  // Always would_block: a synchronous write into the TLS engine over a
  // non-blocking socket could stop halfway through a record. Every flush is
  // one async_write of the whole batch, encrypted record by record.
  std::size_t write_some(bytes_view bytes, std::error_code& ec) override;
  void async_write(bytes_view bytes, std::shared_ptr<transport_sink> sink) override;
  std::size_t unread() override;
  // Receive batching sets the TCP socket's low-water mark, as for plain TCP:
  // a wake-up then brings whole TLS records instead of pieces of one.
  bool can_batch() const noexcept override;
  void set_receive_low_watermark(int bytes) override;
  void close() override;
  std::string describe() const override { return where_; }

 private:
  std::shared_ptr<asio::ssl::context> context_;
  std::unique_ptr<stream_type> stream_;
  asio::any_io_executor executor_;
  std::string where_;
};

// The client context for `params`: TLS 1.2 or later, the CA file (or the
// system's trust store), the client certificate and key. Throws warren::error
// with errc::tls_setup_failed, naming the file and OpenSSL's reason.
std::shared_ptr<asio::ssl::context> make_tls_context(const connection_params& params);

// Runs the TLS handshake over `socket` with SNI and, unless params.verify is
// none, peer verification and the host name check. `context` is the user's,
// or null for make_tls_context(params). Throws warren::error:
// errc::certificate_rejected (with the reason: untrusted, expired, another
// host...), errc::tls_handshake_failed, errc::tls_setup_failed, or the
// socket's error. Cancellation (a deadline) closes the socket.
asio::awaitable<std::unique_ptr<transport>> start_tls(asio::ip::tcp::socket socket,
                                                      const connection_params& params,
                                                      std::shared_ptr<asio::ssl::context> context);

}  // namespace warren::detail
