#include "warren/codec/error.hpp"

#include <string>

namespace warren {

namespace {

class warren_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "warren"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::truncated: return "a length or field runs past the end of its frame";
      case errc::trailing_bytes: return "unexpected bytes after the last field of a method";
      case errc::bad_frame_end: return "frame does not end with 0xCE";
      case errc::bad_frame_type: return "unknown frame type";
      case errc::frame_too_large: return "frame larger than the negotiated frame_max";
      case errc::protocol_mismatch: return "the server does not speak AMQP 0-9-1";
      case errc::unknown_field_type: return "unknown field-table type letter";
      case errc::nesting_too_deep: return "field tables nested too deep";
      case errc::unknown_class: return "unknown method class";
      case errc::unknown_method: return "unknown method";
      case errc::bad_content_header: return "malformed content header";
      case errc::string_too_long: return "short string longer than 255 bytes";
      case errc::value_too_large: return "value too large for its length prefix";
      case errc::unexpected_frame: return "unexpected frame";
      case errc::body_size_mismatch: return "content body larger than its header declared";
      case errc::heartbeat_timeout: return "no heartbeat from the peer for two intervals";
      case errc::channel_closed: return "channel closed";
      case errc::connection_closed: return "connection closed";
      case errc::connection_lost: return "connection lost";
      case errc::authentication_failed: return "authentication failed";
      case errc::no_common_mechanism: return "no SASL mechanism in common with the server";
      case errc::channel_limit: return "no free channel id below channel_max";
      case errc::bad_uri: return "malformed AMQP URI";
      case errc::timeout: return "operation timed out";
      case errc::blocked_timeout: return "connection blocked by the broker past the deadline";
      case errc::not_in_confirm_mode: return "channel is not in confirm mode";
      case errc::consumer_cancelled: return "consumer cancelled by the broker";
      case errc::message_too_large: return "message body larger than the client accepts";
      case errc::publish_too_large: return "message larger than the broker accepts";
      case errc::output_overflow: return "the broker does not read what the client must send";
      case errc::internal_error: return "internal error in the client";
      case errc::tls_unavailable: return "TLS is not available: the library was built without it";
      case errc::tls_setup_failed: return "TLS set-up failed (CA, certificate or key file)";
      case errc::tls_handshake_failed: return "TLS handshake failed";
      case errc::certificate_rejected: return "the broker's certificate was rejected";
      case errc::no_endpoint: return "no endpoint could be reached";
      case errc::interrupted: return "interrupted by the loss of the connection; retry after recovery";
      case errc::recovery_failed: return "connection recovery gave up";
    }
    return "warren error " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& warren_category() noexcept {
  static const warren_category_impl c;
  return c;
}

namespace detail {
const std::error_code no_error{};
}  // namespace detail

}  // namespace warren
