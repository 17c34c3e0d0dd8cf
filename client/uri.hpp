// Connection parameters and the "amqp"/"amqps" URI that describes them, as
// RabbitMQ's URI specification and URI query parameters define it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace warren {

// Whether the broker's certificate is checked (amqps only).
enum class tls_verify {
  peer,  // the chain must lead to a trusted CA and name the host (the default)
  none,  // anything is accepted: encryption without authentication
};

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

  // TLS settings, used only with tls. Files are PEM.
  // CA certificates that may sign the broker's certificate; empty = the
  // system's trust store.
  std::string cacertfile;
  // The client's certificate (with its chain) and private key (unencrypted),
  // for brokers that ask for one and for EXTERNAL authentication. keyfile
  // empty: the key is read from certfile.
  std::string certfile;
  std::string keyfile;
  tls_verify verify = tls_verify::peer;
  // The name sent in SNI and matched against the broker's certificate; empty
  // = host. (No SNI is sent for a host given as an IP address, as RFC 6066
  // requires; the certificate must then name that address.)
  std::string server_name_indication;

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
// (milliseconds), auth_mechanism (plain, amqplain, external), and for amqps
// only cacertfile, certfile, keyfile, verify (verify_peer, verify_none) and
// server_name_indication; any other name is an error.
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

// True when the library was built with TLS (amqps) support.
bool tls_supported() noexcept;

}  // namespace warren
