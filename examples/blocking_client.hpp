// The pika guide's SenderClient, on warren's blocking API: credentials and
// connection parameters, a connection and a channel made on first use (and
// again after they close), the durable queue, exchange and binding it
// declares, and a persistent publish. blocking_sender uses it as it is;
// blocking_receiver's receiver_client builds on it, as ReceiverClient does.
#pragma once

#include <iostream>
#include <string>
#include <string_view>

#include "example.hpp"
#include "warren/client/blocking.hpp"

namespace example {

inline constexpr std::string_view blocking_options_help =
    "  --host H --port P --user U --password P --vhost V   override the URI's parts\n"
    "  --queue Q --exchange E --routing-key K   the topology (default: eeg, eeg, eeg)";

// What the guide passes to SenderClient's constructor.
struct client_settings {
  warren::connection_params params;
  std::string queue{eeg};
  std::string exchange{eeg};
  std::string routing_key{eeg};
};

// Reads the connection options and the topology names; call before
// command_line::uri(), whose parts they override.
inline client_settings read_client_settings(command_line& cli) {
  auto host = cli.option("--host");
  auto port = cli.number("--port", 0);
  auto user = cli.option("--user");
  auto password = cli.option("--password");
  auto vhost = cli.option("--vhost");
  client_settings s;
  if (auto q = cli.option("--queue")) s.queue = *q;
  if (auto e = cli.option("--exchange")) s.exchange = *e;
  if (auto k = cli.option("--routing-key")) s.routing_key = *k;
  const std::string uri = cli.uri();
  std::string why;
  if (warren::parse_uri(uri, s.params, &why)) cli.fail("bad URI: " + why);
  // The guide's PlainCredentials and ConnectionParameters.
  if (host) s.params.host = *host;
  if (port > 65535) cli.fail("--port must be at most 65535");
  if (port != 0) s.params.port = static_cast<std::uint16_t>(port);
  if (user) s.params.username = *user;
  if (password) s.params.password = *password;
  if (vhost) s.params.vhost = *vhost;
  return s;
}

class sender_client {
 public:
  explicit sender_client(client_settings settings) : settings_(std::move(settings)) {}
  virtual ~sender_client() = default;

  // Connects unless a connection is open.
  void connect_mq() {
    if (connection_ && connection_.is_open()) return;
    connection_ = warren::blocking::connect(settings_.params);
    std::cerr << "connected to " << connection_.endpoint() << '\n';
  }

  // Opens a channel unless one is open, and on a new channel declares what
  // the scenario uses: a durable queue, a durable direct exchange, and the
  // binding between them (declaring is idempotent).
  warren::blocking::channel& channel_mq() {
    connect_mq();
    if (channel_ && channel_.is_open()) return channel_;
    channel_ = connection_.open_channel();
    channel_.queue_declare(settings_.queue, {.durable = true});
    channel_.exchange_declare(settings_.exchange, {.type = "direct", .durable = true});
    channel_.queue_bind(settings_.queue, settings_.exchange, settings_.routing_key);
    return channel_;
  }

  // One persistent message (delivery_mode 2: the broker writes it to disk).
  warren::publish_outcome send_data(std::string_view data) {
    warren::basic_properties persistent;
    persistent.delivery_mode = 2;
    return channel_mq().publish(settings_.exchange, settings_.routing_key, data, persistent);
  }

  void close_channel() {
    if (channel_) channel_.close();
  }
  // Closes the TCP connection; destroying the client would do it too.
  void close_connect() { connection_.close(); }

  const client_settings& settings() const { return settings_; }
  warren::blocking::connection& connection() { return connection_; }

 protected:
  client_settings settings_;
  warren::blocking::connection connection_;
  warren::blocking::channel channel_;
};

// main()'s body: runs `body`, printing what it throws (a warren::error with
// the broker's diagnostics) and turning it into exit status 1.
template <class Body>
int run_blocking(const char* program, Body body) {
  try {
    return body();
  } catch (const warren::error& e) {
    std::cerr << program << ": " << e.info().describe() << '\n';
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << '\n';
  }
  return 1;
}

}  // namespace example
