// warren's own error codes, one std::error_category ("warren").
//
// These are the client-side errors: malformed input from the network, protocol
// violations by the peer, and the connection/channel lifecycle. Errors the broker
// reports with a reply code (404, 406, 320...) live in the "amqp" category that
// proto/ generates from the spec constants.
#pragma once

#include <system_error>

namespace warren {

enum class errc {
  // Decoding (codec/, proto/).
  truncated = 1,          // a length or field runs past the end of its frame
  trailing_bytes,         // a method payload has bytes after its last field
  bad_frame_end,          // the octet after a frame's payload is not 0xCE
  bad_frame_type,         // a frame type that is not method, header, body or heartbeat
  frame_too_large,        // a frame larger than the negotiated frame_max
  protocol_mismatch,      // the server answered with its own protocol header
  unknown_field_type,     // a field-table value with a type letter RabbitMQ does not use
  nesting_too_deep,       // tables/arrays nested deeper than the decoder allows
  unknown_class,          // a method frame for a class the spec does not define
  unknown_method,         // a method id the class does not define
  bad_content_header,     // a content header whose class or flags are invalid
  // Encoding.
  string_too_long,        // a shortstr over 255 bytes
  value_too_large,        // a longstr, table or array over 4 GiB
  // Protocol and lifecycle (client/).
  unexpected_frame,       // a frame the state machine did not expect here
  body_size_mismatch,     // content bodies that overrun the size in the header
  heartbeat_timeout,      // the peer was silent for two heartbeat intervals
  channel_closed,         // the channel is closed (by the user or the broker)
  connection_closed,      // the connection is closed (by the user or the broker)
  connection_lost,        // the socket failed or the peer hung up
  authentication_failed,  // the broker refused the credentials
  no_common_mechanism,    // the broker offers none of the SASL mechanisms we can do
  channel_limit,          // every channel id up to channel_max is in use
  bad_uri,                // the connection URI could not be parsed
  timeout,                // an operation's deadline passed
  blocked_timeout,        // a publish waited too long on a blocked connection
  not_in_confirm_mode,    // a confirm outcome was asked for without confirm.select
  consumer_cancelled,     // the broker cancelled the consumer (queue deleted...)
  message_too_large,      // a content header declares a body over the client's limit
  publish_too_large,      // a message over the broker's max message size
  output_overflow,        // the broker stopped reading while the client owed it replies
  internal_error,         // the client's own loop failed (an exception); the connection ends
  // TLS (amqps).
  tls_unavailable,        // amqps was asked for, but the library was built without TLS
  tls_setup_failed,       // a CA, certificate or key file could not be loaded, or they do not match
  tls_handshake_failed,   // the TLS handshake failed (protocol version, ciphers, an alert from the peer)
  certificate_rejected,   // the broker's certificate failed verification (untrusted, expired, another host)
  no_endpoint,            // none of the endpoints given to connect() could be reached
  // Recovery.
  interrupted,            // the connection was lost during the operation; retry once recovered
  recovery_failed,        // recovery gave up: the connection is closed for good
};

const std::error_category& warren_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), warren_category()};
}

namespace detail {
// A std::error_code meaning success, copied rather than default-constructed:
// the default constructor calls into the C++ library (system_category()),
// which shows on per-message paths.
extern const std::error_code no_error;
}  // namespace detail

}  // namespace warren

template <>
struct std::is_error_code_enum<warren::errc> : std::true_type {};
