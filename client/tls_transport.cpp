#include "warren/client/tls_transport.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/ssl/error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "warren/client/driver.hpp"

namespace warren::detail {

namespace {

std::string where_of(const connection_params& p) {
  return (p.host.find(':') != std::string::npos ? "[" + p.host + "]" : p.host) + ":" +
         std::to_string(p.port);
}

// OpenSSL's reason for the last failure of a context call, without the
// library's internal prefix; never the contents of a file.
std::string reason_of(const std::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    const char* r = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    if (r) return r;
  }
  return ec.message();
}

[[noreturn]] void setup_failed(std::string text) {
  throw_error(make_info(errc::tls_setup_failed, std::move(text)));
}

bool is_ip_literal(const std::string& name) {
  std::error_code ec;
  (void)asio::ip::make_address(name, ec);
  return !ec;
}

// Why a handshake failed, in words a user can act on.
error_info handshake_failure(const std::error_code& ec, SSL* ssl, const connection_params& p,
                             const std::string& name) {
  const std::string where = where_of(p);
  if (p.verify == tls_verify::peer) {
    const long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
      std::string text = "the TLS certificate of " + where + " was rejected: " +
                         X509_verify_cert_error_string(v);
      if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        text += " (it is not issued for '" + name + "')";
      } else if (v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                 v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                 v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                 v == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE) {
        text += p.cacertfile.empty()
                    ? " (no CA in the system's trust store signed it; give cacertfile)"
                    : " (the CA in " + p.cacertfile + " did not sign it)";
      }
      return make_info(errc::certificate_rejected, std::move(text));
    }
  }
  if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof ||
      ec == asio::error::connection_reset) {
    return make_info(errc::tls_handshake_failed,
                     "TLS handshake with " + where +
                         " failed: the broker closed the connection (is it a TLS port, and "
                         "does it accept our certificate?)");
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    std::string text = "TLS handshake with " + where + " failed: " + reason_of(ec);
    if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
        reason == SSL_R_NO_PROTOCOLS_AVAILABLE) {
      text += " (the broker offers no TLS version this client accepts: 1.2 or later)";
    } else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG) {
      text += " (the port does not speak TLS: is it the plain AMQP port?)";
    }
    return make_info(errc::tls_handshake_failed, std::move(text));
  }
  return make_info(ec, "TLS handshake with " + where + " failed: " + ec.message());
}

}  // namespace

// ---- the context --------------------------------------------------------------

std::shared_ptr<asio::ssl::context> make_tls_context(const connection_params& p) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1)
    setup_failed("cannot require TLS 1.2 or later");
  // An encrypted key must fail to load, not prompt on the terminal.
  ctx->set_password_callback([](std::size_t, asio::ssl::context::password_purpose) {
    return std::string();
  });
  std::error_code ec;
  if (!p.cacertfile.empty()) {
    ctx->load_verify_file(p.cacertfile, ec);
    if (ec) setup_failed("cannot load cacertfile " + p.cacertfile + ": " + reason_of(ec));
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) setup_failed("cannot load the system's trusted CAs: " + reason_of(ec));
  }
  if (!p.keyfile.empty() && p.certfile.empty())
    setup_failed("keyfile is given without certfile");
  if (!p.certfile.empty()) {
    ctx->use_certificate_chain_file(p.certfile, ec);
    if (ec) setup_failed("cannot load certfile " + p.certfile + ": " + reason_of(ec));
    const std::string& key = p.keyfile.empty() ? p.certfile : p.keyfile;
    ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
    if (ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH &&
        ec.category() == asio::error::get_ssl_category()) {
      setup_failed("the private key in " + key + " does not match the certificate in " + p.certfile);
    }
    if (ec) {
      setup_failed("cannot load the private key from " + key + ": " + reason_of(ec) +
                   " (keys must be PEM and unencrypted)");
    }
    if (SSL_CTX_check_private_key(native) != 1) {
      ERR_clear_error();
      setup_failed("the private key in " + key + " does not match the certificate in " + p.certfile);
    }
  }
  return ctx;
}

// ---- the handshake ------------------------------------------------------------

asio::awaitable<std::unique_ptr<transport>> start_tls(asio::ip::tcp::socket socket,
                                                      const connection_params& p,
                                                      std::shared_ptr<asio::ssl::context> context) {
  if (context) {
    if (!p.cacertfile.empty() || !p.certfile.empty() || !p.keyfile.empty())
      setup_failed("cacertfile, certfile and keyfile cannot be combined with a TLS context of "
                   "your own: load them into that context");
  } else {
    context = make_tls_context(p);
  }
  auto stream = std::make_unique<tls_transport::stream_type>(std::move(socket), *context);
  SSL* ssl = stream->native_handle();
  const std::string name = p.server_name_indication.empty() ? p.host : p.server_name_indication;
  const bool ip = is_ip_literal(name);
  // RFC 6066: SNI carries host names only, never an address.
  if (!ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
    ERR_clear_error();
    setup_failed("cannot use '" + name + "' as the TLS server name");
  }
  if (p.verify == tls_verify::peer) {
    stream->set_verify_mode(asio::ssl::verify_peer);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                       : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (set != 1) {
      ERR_clear_error();
      setup_failed("cannot check the certificate against '" + name + "'");
    }
  } else {
    stream->set_verify_mode(asio::ssl::verify_none);
  }

  auto [ec] = co_await stream->async_handshake(asio::ssl::stream_base::client,
                                               asio::experimental::as_tuple(asio::use_awaitable));
  if (ec) {
    error_info why = handshake_failure(ec, ssl, p, name);
    std::error_code ignored;
    stream->lowest_layer().close(ignored);
    throw_error(std::move(why));
  }
  std::string where = where_of(p) + " (" + SSL_get_version(ssl) + ")";
  co_return std::make_unique<tls_transport>(std::move(context), std::move(stream), std::move(where));
}

// ---- the transport ------------------------------------------------------------

tls_transport::tls_transport(std::shared_ptr<asio::ssl::context> context,
                             std::unique_ptr<stream_type> stream, std::string where)
    : context_(std::move(context)),
      stream_(std::move(stream)),
      executor_(stream_->get_executor()),
      where_(std::move(where)) {
  std::error_code ignored;
  stream_->lowest_layer().set_option(asio::ip::tcp::no_delay(true), ignored);
}

void tls_transport::async_read_some(std::span<std::uint8_t> into,
                                    std::shared_ptr<transport_sink> sink) {
  stream_->async_read_some(asio::buffer(into.data(), into.size()),
                           [sink = std::move(sink)](std::error_code ec, std::size_t n) {
                             sink->on_read(ec, n);
                           });
}

std::size_t tls_transport::write_some(bytes_view, std::error_code& ec) {
  ec = asio::error::would_block;
  return 0;
}

void tls_transport::async_write(bytes_view bytes, std::shared_ptr<transport_sink> sink) {
  asio::async_write(*stream_, asio::buffer(bytes.data(), bytes.size()),
                    [sink = std::move(sink)](std::error_code ec, std::size_t) { sink->on_written(ec); });
}

std::size_t tls_transport::unread() {
  std::error_code ec;
  const std::size_t raw = stream_->lowest_layer().available(ec);
  const int decrypted = SSL_pending(stream_->native_handle());
  return (ec ? 0 : raw) + static_cast<std::size_t>(decrypted > 0 ? decrypted : 0);
}

// As tcp_transport: Linux wakes a waiting reader when the mark is lowered.
// Bytes the TLS engine holds already are read without waiting for the mark.
bool tls_transport::can_batch() const noexcept {
#if defined(__linux__)
  return true;
#else
  return false;
#endif
}

void tls_transport::set_receive_low_watermark(int bytes) {
  std::error_code ignored;
  stream_->lowest_layer().set_option(asio::socket_base::receive_low_watermark(bytes), ignored);
}

void tls_transport::close() {
  std::error_code ignored;
  stream_->lowest_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_->lowest_layer().close(ignored);
}

}  // namespace warren::detail
