// Connection parameters and the "amqp"/"amqps" URI that describes them, as
// RabbitMQ's URI specification and URI query parameters define it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace warren {

// Everything needed to open a connection. The defaults are what a URI with the
// component left out means.
struct connection_params {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5672;
  std::string username = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  // Proposed to the broker in connection.tune-ok; 0 = no heartbeats.
  std::uint16_t heartbeat = 60;
  // 0 = no limit (the broker's own limit then applies); otherwise >= 4096.
  std::uint32_t frame_max = 131072;
  // 0 = no limit.
  std::uint16_t channel_max = 2047;
  // From the start of the TCP connect to connection.open-ok.
  std::chrono::milliseconds connection_timeout{30000};
  // "PLAIN", "AMQPLAIN" or "EXTERNAL"; empty = choose from what the broker
  // offers (see choose_mechanism in sasl.hpp).
  std::string auth_mechanism;
  // Set by the amqps scheme.
  bool tls = false;

  bool operator==(const connection_params&) const = default;
};

// Parses `uri` into `out`:
//
//   amqp[s]://[user[:password]@]host[:port][/vhost][?name=value&...]
//
// Components left out take connection_params{}'s values (amqps: port 5671 and
// tls = true). user, password, host and vhost are %-decoded. The vhost is the
// path without its leading '/': no path and a lone "/" ("amqp://host/") both
// mean the default vhost "/", which can also be written %2F.
// Query parameters: heartbeat, frame_max, channel_max, connection_timeout
// (milliseconds), auth_mechanism (plain, amqplain, external); any other name
// is an error.
//
// Errors: errc::bad_uri for anything malformed, out of range or unknown; `out`
// is left untouched and `*what` (when given) receives a one-line reason that
// never repeats the password.
std::error_code parse_uri(std::string_view uri, connection_params& out,
                          std::string* what = nullptr);

// Throwing form: std::system_error carrying errc::bad_uri and the reason.
connection_params parse_uri(std::string_view uri);

// The URI for `params`, with every component spelled out and only non-default
// query parameters. parse_uri(to_uri(p)) == p for every p that parse_uri can
// produce. With redact_password the password is written as "***" (for logs).
std::string to_uri(const connection_params& params, bool redact_password = false);

}  // namespace warren
