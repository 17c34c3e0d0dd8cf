// The coroutine API: connect, channels, every AMQP 0-9-1 operation RabbitMQ
// speaks, consumers as awaitable streams.
//
// Threading. A connection lives on the executor of the coroutine that called
// connect(). Every member function must be called from a coroutine (or a
// handler) running on that executor; with an io_context run by one thread that
// is automatic. To use a connection from another thread, hand the work to its
// executor: asio::co_spawn(conn.get_executor(), ..., ...) or asio::post. If
// the io_context runs on several threads, pass connect() a strand.
//
// Errors. Operations throw warren::error (a std::system_error) carrying the
// reply code in the "amqp" category for errors the broker reports, or a
// warren::errc for client-side ones, plus the broker's reply text and the
// class/method ids of the failing method. A channel error closes only that
// channel; a connection error (or a lost socket, or a missed heartbeat) fails
// every pending operation of the connection promptly.
//
// Cancellation. Every awaitable honours Asio per-operation cancellation
// (cancellation slots, awaitable operators, with_timeout below). Cancelling
// a synchronous request already on the wire only stops the wait: the broker
// still acts on it, and its reply is consumed when it arrives.
//
// Lifetime. connection, channel and consumer are cheap handles sharing the
// connection. When the last handle goes away the connection is closed.
// Operations are lazy coroutines: arguments passed by view or reference (names,
// bodies, properties, argument tables) must stay alive until the co_await
// completes, which they do when the call is written inside the co_await.
//
// g++ 12 note: that compiler destroys a braced temporary that owns memory
// twice when it appears inside a co_await expression. Build basic_properties
// and field_table values as named variables, not as {...} in the call. The
// option structs below are safe as {...}: they own nothing.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "warren/client/types.hpp"
#include "warren/client/uri.hpp"
#include "warren/client/publish.hpp"

namespace warren {

class connection;
namespace detail {
class driver;
struct connection_handle;
struct logical_channel;
struct consumer_state;
}  // namespace detail

}  // namespace warren

namespace asio::ssl {
class context;
}

namespace warren {

// One broker of a list sharing the other connection parameters.
struct endpoint {
  std::string host;
  std::uint16_t port = 0;  // 0: 5672, or 5671 with TLS
};

// Automatic recovery after an unexpected loss of the connection (a socket
// error, a missed heartbeat, or the broker's 320 CONNECTION_FORCED): the
// client reconnects over the same endpoints with backoff, re-declares what
// was declared through this connection, and re-opens every channel with its
// qos, confirm mode and consumers (same tags). Handles stay valid. Never
// after the user's close or an access refusal. See README "Recovery".
struct recovery_options {
  bool enabled = false;
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{10000};
  double jitter = 0.2;          // each wait is scaled by 1 ± jitter, at random
  std::uint32_t max_attempts = 0;  // 0: no limit
  // A confirm-mode publish() unconfirmed at the loss: complete it with
  // publish_status::unknown (false), or publish it again after recovery and
  // report the new outcome with republished = true (true). Pipelined
  // publishes likewise: counted as confirm_summary::unknown, or kept (a copy
  // of their frames, until confirmed) and published again, counted as
  // confirm_summary::republished.
  bool republish_unconfirmed = false;
};

// Options beyond what the URI carries.
struct connect_options {
  std::string connection_name;  // shown by rabbitmqctl list_connections / the management UI
  // How long a publish may wait while the broker blocks the connection
  // (connection.blocked) before failing with errc::blocked_timeout.
  std::chrono::milliseconds blocked_timeout{60000};
  // Largest message body accepted from the broker. A larger one is skipped
  // unstored and closes its channel with errc::message_too_large (the broker
  // requeues it); the connection stays open.
  std::uint64_t max_body_size = 512ull << 20;
  // Receive batching, for connections that consume at high rates; off (0) by
  // default. Once one read brings at least 1 KiB (or receive_batch_bytes, if
  // smaller), the kernel is asked (SO_RCVLOWAT) to wake the connection only
  // when receive_batch_bytes have arrived, until receive_batch_wait passes
  // without a read; then every byte wakes it again. A busy consumer then
  // wakes once per batch of deliveries instead of once per TCP segment, which
  // is most of its CPU cost. The price: any frame arriving while batching
  // (deliveries, replies, confirms, heartbeats) may wait up to
  // receive_batch_wait (never more than a quarter of the heartbeat interval).
  // At most 4 MiB; the wait must be positive and at most one second. Linux
  // 4.18 or later; on other systems the option is ignored.
  std::size_t receive_batch_bytes = 0;
  std::chrono::microseconds receive_batch_wait{1000};
  // How long a synchronous request (declare, bind, get, qos, channel.close,
  // connection.close...) waits for the broker's reply; 0 waits for ever.
  // A late reply fails the request with errc::timeout and closes its
  // channel (the connection, for connection-level methods): after a lost
  // reply the channel's replies can no longer be matched to requests.
  std::chrono::milliseconds request_timeout{60000};
  // With several endpoints: try them in random order instead of as listed,
  // so that many clients spread over a cluster.
  bool shuffle_endpoints = false;
  // amqps: a TLS context of your own (trust store, client certificate,
  // protocol versions, ciphers...), shared by every connection given it.
  // The parameters' verify setting, SNI and host name check still apply per
  // connection; cacertfile, certfile and keyfile must then be empty. Null:
  // a context is made from the parameters (TLS 1.2 or later).
  std::shared_ptr<asio::ssl::context> tls_context;
  // Off by default.
  recovery_options recovery;
  // The logging hook: connection lifecycle (connecting, connected, closing,
  // closed, closed by the broker with its code and text, connection or
  // channel failures), heartbeats missed, blocked and unblocked, recovery
  // (lost, reconnecting, recovered, gave up, a declaration it could not
  // replay), and protocol warnings (a stale ack not sent, returns dropped,
  // a channel or consumer the broker closed, a late reply). See log_sink in
  // types.hpp for the thread it runs on and what it must not do. Empty (the
  // default): nothing is logged, at no cost.
  log_sink log;
  // Sent in connection.start-ok's client-properties next to the client's own
  // (product, version, platform, information, capabilities) and
  // connection_name; rabbitmqctl list_connections client_properties and the
  // management UI show them. A key of yours replaces the client's, except
  // "capabilities": entries of a capabilities table you give are added,
  // but the client's own capabilities keep their values (it relies on
  // them). connection_name above, when set, wins over a "connection_name"
  // key here. connect() fails with std::errc::invalid_argument if the table
  // cannot be encoded (a key over 255 bytes), and with errc::frame_too_large
  // if they take start-ok over the 4096 bytes allowed before tuning.
  field_table client_properties;
};


class channel;
class consumer;
namespace detail {
connection make_connection(std::shared_ptr<driver> d);
}

class connection {
 public:
  connection() = default;

  // Opens a channel (channel.open) on the lowest free id past the last one used.
  asio::awaitable<channel> open_channel();
  // connection.close, waiting for close-ok. Pending operations fail with
  // errc::connection_closed. Closing a closed connection does nothing.
  asio::awaitable<void> close(std::uint16_t code = 200,
                              std::string_view text = "closed by the client");
  // The next connection.blocked / unblocked notice, in order. Throws once the
  // connection is closed.
  asio::awaitable<connection_notice> next_notice();
  // connection.update-secret: replaces the credential (e.g. an OAuth token).
  asio::awaitable<void> update_secret(std::string new_secret, std::string reason);

  bool is_open() const noexcept;
  bool blocked() const noexcept;
  // Why the connection closed (empty while open).
  error_info close_reason() const;
  std::uint32_t frame_max() const noexcept;
  std::uint16_t channel_max() const noexcept;
  std::uint16_t heartbeat() const noexcept;
  const field_table& server_properties() const noexcept;
  asio::any_io_executor get_executor() const noexcept;
  // The endpoint this connection reached, as a URI with the password shown
  // as "***".
  std::string endpoint() const;
  // With recovery on: the name a queue declared through this connection has
  // now. A server-named queue gets a new name from each recovery; any other
  // name is returned as it is.
  std::string current_queue_name(std::string_view queue) const;
  // With recovery on: whether a recovery is running now.
  bool recovering() const noexcept;
  // What the connection has done so far (see connection_counters): a few
  // plain integers the connection bumps as it goes, copied out here, so call
  // it, like any member, on the connection's executor. With recovery on,
  // the counts run on across recoveries.
  connection_counters counters() const noexcept;

  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

 private:
  friend asio::awaitable<connection> connect(std::vector<connection_params>, const connect_options&);
  friend struct detail::connection_handle;
  friend connection detail::make_connection(std::shared_ptr<detail::driver>);
  explicit connection(std::shared_ptr<detail::connection_handle> h) : handle_(std::move(h)) {}
  std::shared_ptr<detail::connection_handle> handle_;
};

// Connects, authenticates and opens the virtual host, within the
// connection_timeout of the parameters. amqps connects over TLS (see
// connection_params for what is verified). Throws warren::error:
// errc::bad_uri, errc::timeout, errc::authentication_failed (wrong
// credentials), a reply code such as 530 NOT_ALLOWED (unknown vhost),
// errc::certificate_rejected, errc::tls_handshake_failed,
// errc::tls_setup_failed, errc::tls_unavailable (a build without TLS), or
// the socket's error. No error text contains the password.
asio::awaitable<connection> connect(connection_params params, const connect_options& options);
asio::awaitable<connection> connect(connection_params params);

// The same over several endpoints (the nodes of a cluster, say): each is
// tried within its own connection_timeout, in order (or shuffled, see
// connect_options), until one opens. If none does, the error lists every
// endpoint and why it failed; its code is the failures' common code, or
// errc::no_endpoint when they differ. connection::endpoint() tells which
// one answered.
asio::awaitable<connection> connect(std::vector<connection_params> candidates,
                                    const connect_options& options);
// Several URIs, each parsed as parse_uri does (errc::bad_uri names the bad one).
asio::awaitable<connection> connect(const std::vector<std::string>& uris,
                                    const connect_options& options);
// Host and port pairs sharing the rest of `shared` (credentials, vhost, TLS).
asio::awaitable<connection> connect(const connection_params& shared,
                                    const std::vector<endpoint>& endpoints,
                                    const connect_options& options);

namespace detail {
asio::awaitable<connection> connect_uri(std::string_view uri, const connect_options& options);
}
// One URI (a template so that a braced list of strings picks the list form).
template <class S>
  requires std::is_convertible_v<const S&, std::string_view>
asio::awaitable<connection> connect(const S& uri, const connect_options& options) {
  return detail::connect_uri(std::string_view(uri), options);
}
template <class S>
  requires std::is_convertible_v<const S&, std::string_view>
asio::awaitable<connection> connect(const S& uri) {
  static const connect_options defaults;
  return detail::connect_uri(std::string_view(uri), defaults);
}

// A delivery stream of basic.consume.
class consumer {
 public:
  consumer() = default;
  consumer(consumer&&) noexcept = default;
  consumer& operator=(consumer&&) noexcept;
  ~consumer();

  const std::string& tag() const noexcept;
  // The next delivery; std::nullopt once the stream has ended: after cancel(),
  // or when the broker cancelled the consumer (end_reason() then holds
  // errc::consumer_cancelled). Throws if the channel or connection failed.
  asio::awaitable<std::optional<message>> next();
  // The same into `m`, trading storage with the stream: a loop that reads
  // every delivery into one message allocates nothing per delivery once
  // warm. False once the stream has ended, where next() gives std::nullopt.
  asio::awaitable<bool> next(message& m);
  // A buffered delivery into `m` without waiting (as next(m)); false when
  // none is buffered. Lets a loop drain what one read brought in without a
  // coroutine per message.
  bool try_next(message& m);
  // basic.cancel; deliveries already buffered can still be read.
  asio::awaitable<void> cancel();
  // Why the stream ended (empty while it runs, or after a cancel()).
  error_info end_reason() const;
  // Deliveries received and not yet taken with next().
  std::size_t buffered() const noexcept;

 private:
  friend class channel;
  consumer(std::shared_ptr<detail::logical_channel> ch, std::shared_ptr<detail::consumer_state> s)
      : channel_(std::move(ch)), state_(std::move(s)) {}
  std::shared_ptr<detail::logical_channel> channel_;
  std::shared_ptr<detail::consumer_state> state_;
};

class channel {
 public:
  channel() = default;

  std::uint16_t id() const noexcept;
  bool is_open() const noexcept;
  // Why the channel closed (empty while open).
  error_info close_reason() const;
  // channel.close, waiting for close-ok. Closing a closed channel does nothing.
  asio::awaitable<void> close();
  // channel.flow: asks the broker to pause (false) or resume deliveries.
  asio::awaitable<bool> flow(bool active);

  // exchange.*
  asio::awaitable<void> exchange_declare(std::string_view name, exchange_declare_options o = {});
  asio::awaitable<void> exchange_delete(std::string_view name, exchange_delete_options o = {});
  // Routes messages published to `source` on to `destination` (RabbitMQ's
  // exchange-to-exchange binding).
  asio::awaitable<void> exchange_bind(std::string_view destination, std::string_view source,
                                      std::string_view routing_key, bind_options o = {});
  asio::awaitable<void> exchange_unbind(std::string_view destination, std::string_view source,
                                        std::string_view routing_key, bind_options o = {});

  // queue.*  An empty name asks the broker to name the queue.
  asio::awaitable<queue_declare_result> queue_declare(std::string_view name = {},
                                                      queue_declare_options o = {});
  asio::awaitable<void> queue_bind(std::string_view queue, std::string_view exchange,
                                   std::string_view routing_key, bind_options o = {});
  asio::awaitable<void> queue_unbind(std::string_view queue, std::string_view exchange,
                                     std::string_view routing_key,
                                     const field_table* arguments = nullptr);
  // Returns the number of messages purged.
  asio::awaitable<std::uint32_t> queue_purge(std::string_view queue);
  // Returns the number of messages deleted with the queue.
  asio::awaitable<std::uint32_t> queue_delete(std::string_view queue, queue_delete_options o = {});

  // basic.*
  asio::awaitable<void> qos(qos_options o);
  asio::awaitable<consumer> consume(std::string_view queue, consume_options o = {});
  // basic.get: a message, or std::nullopt when the queue is empty.
  asio::awaitable<std::optional<message>> get(std::string_view queue, bool no_ack = false);
  // ack / nack / reject are not acknowledged by the broker: they are queued
  // for the socket at once. They throw if the channel is closed.
  // ack, nack and reject do not wait. With recovery on, a tag from before
  // the last recovery is stale, and so is every tag while the connection is
  // lost or being recovered: nothing is sent (the broker delivers that
  // message again), the call returns false and stale_acks() counts it.
  bool ack(std::uint64_t delivery_tag, bool multiple = false);
  bool nack(std::uint64_t delivery_tag, bool multiple = false, bool requeue = true);
  bool reject(std::uint64_t delivery_tag, bool requeue = true);
  std::uint64_t stale_acks() const noexcept;
  asio::awaitable<void> recover(bool requeue = true);

  // Publishes a message. Without confirm mode it completes once the frames
  // are queued for the socket (waiting first while the broker blocks the
  // connection, up to connect_options::blocked_timeout, or while the socket
  // is behind); in confirm mode it also waits for the broker's ack, nack or
  // return.
  asio::awaitable<publish_outcome> publish(std::string_view exchange, std::string_view routing_key,
                                           std::string_view body, const basic_properties& properties,
                                           publish_flags flags = {});
  asio::awaitable<publish_outcome> publish(std::string_view exchange, std::string_view routing_key,
                                           std::string_view body, publish_flags flags = {});
  // Publishes without waiting for the confirm: completes once the frames are
  // queued and returns the sequence number (0 outside confirm mode). With a
  // confirm window set, waits while that many publishes are unconfirmed.
  // With recovery on, waits out a recovery; sequence numbers keep rising
  // across recoveries (see recovery_options::republish_unconfirmed).
  asio::awaitable<std::uint64_t> publish_pipelined(std::string_view exchange,
                                                   std::string_view routing_key,
                                                   std::string_view body,
                                                   const basic_properties& properties,
                                                   publish_flags flags = {});
  asio::awaitable<std::uint64_t> publish_pipelined(std::string_view exchange,
                                                   std::string_view routing_key,
                                                   std::string_view body,
                                                   publish_flags flags = {});
  // A publish encoded once for this channel: exchange, routing key,
  // properties and flags. publish_pipelined(prepared, body) then costs little
  // more than copying the body: what a publisher sending many messages alike
  // wants. Throws warren::error (string_too_long, frame_too_large) when they
  // cannot be encoded. Valid for this channel's connection only.
  prepared_publish prepare_publish(std::string_view exchange, std::string_view routing_key,
                                   const basic_properties& properties,
                                   publish_flags flags = {}) const;
  // publish_pipelined() with the frames prepared by prepare_publish(); the
  // prepared publish must outlive the co_await.
  asio::awaitable<std::uint64_t> publish_pipelined(const prepared_publish& prepared,
                                                   std::string_view body);
  // publish_pipelined(prepared, body) without a coroutine, for a publisher
  // in a tight loop: publishes at once when the channel can take it now and
  // returns true (the sequence number in *sequence, 0 outside confirm mode);
  // returns false, having done nothing, when publish_pipelined would have to
  // wait (confirm window full, socket behind, flow stopped, connection
  // blocked; with recovery on, while the connection is being recovered or the
  // channel reopened). Throws like publish_pipelined when the channel is closed.
  bool try_publish(const prepared_publish& prepared, std::string_view body,
                   std::uint64_t* sequence = nullptr);
  // Waits until every publish so far is confirmed; returns the tallies since
  // the previous call.
  asio::awaitable<confirm_summary> wait_for_confirms();
  // The next basic.return (unroutable mandatory publish), in order. A
  // confirm-mode publish() learns of its own return in its outcome, so that
  // return is not queued here too. At most 1024 returns wait to be read;
  // later ones are dropped (never blocking the connection) and counted.
  asio::awaitable<returned_message> next_return();
  // Returns dropped because nobody read next_return() in time.
  std::uint64_t returns_dropped() const noexcept;

  // confirm.select; `window` bounds the unconfirmed publishes of
  // publish_pipelined (0 = unbounded). Once full, the window opens again when
  // an eighth of it is free (at the first free place below 8).
  asio::awaitable<void> confirm_select(std::size_t window = 0);
  bool in_confirm_mode() const noexcept;
  std::uint64_t unconfirmed() const noexcept;

  // With recovery on: closes this channel on the broker and opens another in
  // its place under the same handle, restoring what recovery restores (qos,
  // confirm mode, transactions, consumers with their tags). For a channel
  // the broker has spoilt without closing it, such as one RabbitMQ 3.10 ties
  // to a quorum queue that had no leader at its first publish (every later
  // publish to that queue is nacked); a channel the broker closed (a 406,
  // say) is opened again too. Publishes unconfirmed at the close count as
  // after a loss of the connection (unknown, or republished if
  // republish_unconfirmed); delivery tags from before are stale. Other
  // operations on the channel, and its consumers' next(), wait for the
  // reopen instead of failing. Throws what a recovery would (errc::interrupted
  // if the connection is lost meanwhile: retry), and std::errc::
  // operation_not_supported without recovery.
  asio::awaitable<void> reopen();

  // tx.*
  asio::awaitable<void> tx_select();
  asio::awaitable<void> tx_commit();
  asio::awaitable<void> tx_rollback();

  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

 private:
  friend class connection;
  explicit channel(std::shared_ptr<detail::logical_channel> h) : handle_(std::move(h)) {}
  asio::awaitable<void> wait_writable();
  std::shared_ptr<detail::logical_channel> handle_;
};

}  // namespace warren
