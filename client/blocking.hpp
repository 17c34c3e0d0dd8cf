// The blocking API: the coroutine API (connection.hpp) as plain calls that
// return values, for programs that are not built around an io_context. It
// reads like pika's BlockingConnection:
//
//   auto conn = warren::blocking::connect("amqp://guest:guest@127.0.0.1:5672/");
//   auto ch = conn.open_channel();
//   ch.queue_declare("eeg", {.durable = true});
//   ch.publish("", "eeg", "hello");
//   ch.basic_consume("eeg", [](warren::blocking::channel& c, const warren::message& m) {
//     c.ack(m.delivery_tag);
//   });
//   ch.start_consuming();
//
// Operations and option structs are those of the coroutine API; see
// connection.hpp for what each one does.
//
// Threads. A connection owns an io_context and runs it on a thread of its own,
// the I/O thread. Every call hands a coroutine to that thread and waits for
// it, so connections, channels and consumers may be used from any number of
// threads at once: calls from different threads are served in the order they
// reach the I/O thread, and two calls on one channel never interleave their
// frames. A channel's broker-side order still matters: publishes from two
// threads on one channel arrive in whichever order the calls ran.
//   - Callbacks given to basic_consume() run on the thread that called
//     start_consuming(), never on the I/O thread, so they may call anything,
//     acks and publishes included, and stop_consuming().
//   - Code running on the I/O thread itself (a handler or coroutine you hand
//     to get_executor()) must not make blocking calls: each would wait for
//     the thread it runs on. Such a call is refused at once with
//     std::errc::resource_deadlock_would_occur. What does not wait is
//     allowed there: the queries (is_open(), close_reason()...), ack, nack,
//     reject, and stop_consuming() (which then does not wait for its cancels).
//   - connect_options::log's sink is called on the I/O thread: it must not
//     make blocking calls either (see log_sink in types.hpp), and it shares
//     whatever it writes to with your threads. counters() may be called
//     from any thread.
//   - Do not destroy a connection while another thread is inside one of its
//     calls. Channels and consumers may outlive their connection: once it is
//     closed, their calls fail with errc::connection_closed.
//
// Errors. Each call comes in two forms. The first throws warren::error
// (reply code, the broker's text, class and method ids), as the coroutine API
// does. The second, in the style of Asio's overloads, takes every argument
// explicitly followed by a std::error_code&: it sets the code (cleared on
// success) instead of throwing, and returns a default value on error.
// Channel errors close only their channel; close_reason() then has the
// broker's text.
//
// Timeouts. Every call that waits for the broker takes a timeout: zero (the
// default) sets none of its own, and connect_options::request_timeout still
// bounds each reply. When the timeout passes, the operation is cancelled on
// the I/O thread and the call fails with errc::timeout; the connection stays
// usable (a cancelled request's late reply is matched and dropped).
// start_consuming()'s argument is a time limit instead: reaching it is not an
// error.
//
// Lifetime. Destroying a connection closes it (connection.close, waiting for
// close-ok within request_timeout), stops the I/O thread and joins it; nothing
// is left running. channel and consumer are cheap shared handles: when the
// last copy of a channel goes, the channel is closed; when the last copy of a
// consumer goes, the broker is told to stop delivering to it.
#pragma once

#include <asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "warren/client/connection.hpp"
#include "warren/client/types.hpp"
#include "warren/client/uri.hpp"

namespace warren::blocking {

// How long a call may wait; zero means no deadline of the call's own.
using duration = std::chrono::steady_clock::duration;

class connection;
class channel;
class consumer;
class rpc_client;

// Why start_consuming() returned.
enum class consuming_end : std::uint8_t {
  stopped,       // stop_consuming() was called
  no_consumers,  // every callback consumer is cancelled (by us or the broker)
  time_limit,    // the time limit passed
};

namespace detail {
struct io_state;
struct channel_state;
struct channel_handle;
struct consumer_handle;
struct rpc_holder;
connection connect_uri(std::string_view uri, const connect_options& options, duration timeout,
                       std::error_code* ec);
consuming_end consume_loop(channel& self, duration time_limit, std::error_code* ec);
}  // namespace detail

// A callback for basic_consume(): the channel that consumes (to ack on) and
// the delivery. Runs on the thread inside start_consuming().
using consume_callback = std::function<void(channel&, const message&)>;

// Connects (see warren::connect for the forms and the errors) and starts the
// connection's I/O thread. `timeout` bounds the whole attempt, every
// endpoint included; connection_params::connection_timeout still bounds each.
// The error_code forms return an empty connection on failure.
// clang-format off
template <class S>
  requires std::is_convertible_v<const S&, std::string_view>
connection connect(const S& uri, const connect_options& options = {}, duration timeout = {});
template <class S>
  requires std::is_convertible_v<const S&, std::string_view>
connection connect(const S& uri, const connect_options& options, duration timeout,
                   std::error_code& ec);
// clang-format on
connection connect(const connection_params& params, const connect_options& options = {},
                   duration timeout = {});
connection connect(const connection_params& params, const connect_options& options,
                   duration timeout, std::error_code& ec);
// Several endpoints, tried in turn (connect_options::shuffle_endpoints).
connection connect(std::vector<connection_params> candidates, const connect_options& options = {},
                   duration timeout = {});
connection connect(std::vector<connection_params> candidates, const connect_options& options,
                   duration timeout, std::error_code& ec);
connection connect(const std::vector<std::string>& uris, const connect_options& options = {},
                   duration timeout = {});
connection connect(const std::vector<std::string>& uris, const connect_options& options,
                   duration timeout, std::error_code& ec);
connection connect(const connection_params& shared, const std::vector<endpoint>& endpoints,
                   const connect_options& options, duration timeout = {});
connection connect(const connection_params& shared, const std::vector<endpoint>& endpoints,
                   const connect_options& options, duration timeout, std::error_code& ec);

// One AMQP connection and the thread that runs it. Movable, not copyable: it
// owns the thread.
class connection {
 public:
  connection() = default;  // not connected: every call fails with connection_closed
  connection(connection&&) noexcept;
  connection& operator=(connection&&) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  // Closes the connection (errors are ignored) and joins the I/O thread.
  // Destroyed on the I/O thread itself, it cannot wait: the close then runs
  // on that thread, which ends by itself afterwards.
  ~connection();

  channel open_channel(duration timeout = {});
  channel open_channel(duration timeout, std::error_code& ec);
  // A client for request/reply over direct reply-to (see rpc_client below),
  // on a channel of its own.
  rpc_client open_rpc_client(duration timeout = {});
  rpc_client open_rpc_client(duration timeout, std::error_code& ec);

  // connection.close, waiting for close-ok; then the I/O thread is stopped
  // and joined. Calls still waiting fail with errc::connection_closed.
  // Closing a closed connection does nothing.
  void close(std::uint16_t code = 200, std::string_view text = "closed by the client",
             duration timeout = {});
  void close(std::uint16_t code, std::string_view text, duration timeout, std::error_code& ec);

  // The next connection.blocked / unblocked notice (errc::timeout when none
  // comes in time).
  connection_notice next_notice(duration timeout = {});
  connection_notice next_notice(duration timeout, std::error_code& ec);
  void update_secret(std::string_view new_secret, std::string_view reason, duration timeout = {});
  void update_secret(std::string_view new_secret, std::string_view reason, duration timeout,
                     std::error_code& ec);

  bool is_open() const;
  bool blocked() const;
  error_info close_reason() const;
  std::uint32_t frame_max() const;
  std::uint16_t channel_max() const;
  std::uint16_t heartbeat() const;
  field_table server_properties() const;
  // The endpoint reached, as a URI with the password shown as "***".
  std::string endpoint() const;
  // What the connection has done so far (see connection_counters). Safe
  // from any thread at any time: the copy is taken on the I/O thread (so it
  // waits for the call that thread is serving, if any), or directly when
  // called there; after the connection closed, the final counts.
  connection_counters counters() const;

  // The I/O thread's executor, for code that wants to run there (with the
  // coroutine API, say). Blocking calls from there are refused (see above).
  asio::any_io_executor get_executor() const;
  // True on the I/O thread of this connection.
  bool on_io_thread() const noexcept;

  explicit operator bool() const noexcept { return static_cast<bool>(state_); }

 private:
  friend connection detail::connect_uri(std::string_view, const connect_options&, duration,
                                        std::error_code*);
  friend struct detail::io_state;
  explicit connection(std::shared_ptr<detail::io_state> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::io_state> state_;
};

// A pull consumer (channel::consume): deliveries are taken with next().
class consumer {
 public:
  consumer() = default;

  const std::string& tag() const noexcept;
  // The next delivery; std::nullopt once the stream has ended (after
  // cancel(), or when the broker cancelled the consumer). errc::timeout when
  // nothing comes in time; the consumer stays usable.
  std::optional<message> next(duration timeout = {});
  std::optional<message> next(duration timeout, std::error_code& ec);
  // The same into `m`; false once the stream has ended.
  bool next(message& m, duration timeout = {});
  bool next(message& m, duration timeout, std::error_code& ec);
  // basic.cancel; deliveries already buffered can still be read.
  void cancel(duration timeout = {});
  void cancel(duration timeout, std::error_code& ec);
  // Why the stream ended (empty while it runs, or after cancel()).
  error_info end_reason() const;
  // Deliveries received and not yet taken.
  std::size_t buffered() const;

  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

 private:
  friend class channel;
  explicit consumer(std::shared_ptr<detail::consumer_handle> h) : handle_(std::move(h)) {}
  std::shared_ptr<detail::consumer_handle> handle_;
};

class channel {
 public:
  channel() = default;

  std::uint16_t id() const noexcept;
  bool is_open() const;
  error_info close_reason() const;
  // channel.close, waiting for close-ok. Callback consumers end, and a
  // start_consuming() running on this channel throws channel_closed.
  void close(duration timeout = {});
  void close(duration timeout, std::error_code& ec);
  bool flow(bool active, duration timeout = {});
  bool flow(bool active, duration timeout, std::error_code& ec);

  // exchange.*
  void exchange_declare(std::string_view name, const exchange_declare_options& o = {},
                        duration timeout = {});
  void exchange_declare(std::string_view name, const exchange_declare_options& o, duration timeout,
                        std::error_code& ec);
  void exchange_delete(std::string_view name, const exchange_delete_options& o = {},
                       duration timeout = {});
  void exchange_delete(std::string_view name, const exchange_delete_options& o, duration timeout,
                       std::error_code& ec);
  void exchange_bind(std::string_view destination, std::string_view source,
                     std::string_view routing_key, const bind_options& o = {},
                     duration timeout = {});
  void exchange_bind(std::string_view destination, std::string_view source,
                     std::string_view routing_key, const bind_options& o, duration timeout,
                     std::error_code& ec);
  void exchange_unbind(std::string_view destination, std::string_view source,
                       std::string_view routing_key, const bind_options& o = {},
                       duration timeout = {});
  void exchange_unbind(std::string_view destination, std::string_view source,
                       std::string_view routing_key, const bind_options& o, duration timeout,
                       std::error_code& ec);

  // queue.*  An empty name asks the broker to name the queue.
  queue_declare_result queue_declare(std::string_view name = {},
                                     const queue_declare_options& o = {}, duration timeout = {});
  queue_declare_result queue_declare(std::string_view name, const queue_declare_options& o,
                                     duration timeout, std::error_code& ec);
  void queue_bind(std::string_view queue, std::string_view exchange, std::string_view routing_key,
                  const bind_options& o = {}, duration timeout = {});
  void queue_bind(std::string_view queue, std::string_view exchange, std::string_view routing_key,
                  const bind_options& o, duration timeout, std::error_code& ec);
  void queue_unbind(std::string_view queue, std::string_view exchange, std::string_view routing_key,
                    const field_table* arguments = nullptr, duration timeout = {});
  void queue_unbind(std::string_view queue, std::string_view exchange, std::string_view routing_key,
                    const field_table* arguments, duration timeout, std::error_code& ec);
  // The number of messages purged / deleted with the queue.
  std::uint32_t queue_purge(std::string_view queue, duration timeout = {});
  std::uint32_t queue_purge(std::string_view queue, duration timeout, std::error_code& ec);
  std::uint32_t queue_delete(std::string_view queue, const queue_delete_options& o = {},
                             duration timeout = {});
  std::uint32_t queue_delete(std::string_view queue, const queue_delete_options& o,
                             duration timeout, std::error_code& ec);

  // basic.*
  void qos(const qos_options& o, duration timeout = {});
  void qos(const qos_options& o, duration timeout, std::error_code& ec);
  // A pull consumer.
  consumer consume(std::string_view queue, const consume_options& o = {}, duration timeout = {});
  consumer consume(std::string_view queue, const consume_options& o, duration timeout,
                   std::error_code& ec);
  // basic.get: a message, or std::nullopt when the queue is empty.
  std::optional<message> get(std::string_view queue, bool no_ack = false, duration timeout = {});
  std::optional<message> get(std::string_view queue, bool no_ack, duration timeout,
                             std::error_code& ec);
  // Not acknowledged by the broker: they return once the frame is queued for
  // the socket. They fail if the channel is closed.
  void ack(std::uint64_t delivery_tag, bool multiple = false);
  void ack(std::uint64_t delivery_tag, bool multiple, std::error_code& ec);
  void nack(std::uint64_t delivery_tag, bool multiple = false, bool requeue = true);
  void nack(std::uint64_t delivery_tag, bool multiple, bool requeue, std::error_code& ec);
  void reject(std::uint64_t delivery_tag, bool requeue = true);
  void reject(std::uint64_t delivery_tag, bool requeue, std::error_code& ec);
  void recover(bool requeue = true, duration timeout = {});
  void recover(bool requeue, duration timeout, std::error_code& ec);

  // Callback consuming, as pika's channels do it. basic_consume() starts a
  // consumer whose deliveries go to `callback`, called on the thread inside
  // start_consuming(); it returns the consumer tag. Deliveries wait for
  // start_consuming() in a buffer bounded like the pull consumer's (prefetch,
  // or consume_options::buffer); when it is full the broker is not read
  // from on behalf of this consumer.
  std::string basic_consume(std::string_view queue, consume_callback callback,
                            const consume_options& o = {}, duration timeout = {});
  std::string basic_consume(std::string_view queue, consume_callback callback,
                            const consume_options& o, duration timeout, std::error_code& ec);
  // basic.cancel of one callback consumer. Deliveries received but not yet
  // handed to the callback are nacked back to the queue (no_ack consumers'
  // are still handed over by the next start_consuming()).
  void basic_cancel(std::string_view consumer_tag, duration timeout = {});
  void basic_cancel(std::string_view consumer_tag, duration timeout, std::error_code& ec);
  // Hands deliveries to their callbacks on the calling thread until
  // stop_consuming() is called (from any thread, or from a callback), every
  // callback consumer has ended, or `time_limit` (if non-zero) has passed.
  // What a callback throws leaves start_consuming() at once (that delivery
  // is not acked). A channel or connection error is thrown. Several threads
  // may consume one channel at once; each delivery goes to one of them.
  consuming_end start_consuming(duration time_limit = {});
  consuming_end start_consuming(duration time_limit, std::error_code& ec);
  // Makes every start_consuming() on this channel return (after the
  // callback it is running, if any) and cancels every callback consumer of
  // the channel, as basic_cancel() does. Safe from any thread and from a
  // callback; on the I/O thread it starts the cancels without waiting.
  void stop_consuming(duration timeout = {});
  void stop_consuming(duration timeout, std::error_code& ec);

  // Publishing; see channel::publish in connection.hpp. In confirm mode a
  // publish waits for the broker's ack, nack or return.
  publish_outcome publish(std::string_view exchange, std::string_view routing_key,
                          std::string_view body, const basic_properties& properties,
                          publish_flags flags = {}, duration timeout = {});
  publish_outcome publish(std::string_view exchange, std::string_view routing_key,
                          std::string_view body, const basic_properties& properties,
                          publish_flags flags, duration timeout, std::error_code& ec);
  publish_outcome publish(std::string_view exchange, std::string_view routing_key,
                          std::string_view body, publish_flags flags = {}, duration timeout = {});
  publish_outcome publish(std::string_view exchange, std::string_view routing_key,
                          std::string_view body, publish_flags flags, duration timeout,
                          std::error_code& ec);
  // Without waiting for the confirm: the sequence number (0 outside confirm
  // mode). With a confirm window, waits while the window is full.
  std::uint64_t publish_pipelined(std::string_view exchange, std::string_view routing_key,
                                  std::string_view body, const basic_properties& properties,
                                  publish_flags flags = {}, duration timeout = {});
  std::uint64_t publish_pipelined(std::string_view exchange, std::string_view routing_key,
                                  std::string_view body, const basic_properties& properties,
                                  publish_flags flags, duration timeout, std::error_code& ec);
  std::uint64_t publish_pipelined(std::string_view exchange, std::string_view routing_key,
                                  std::string_view body, publish_flags flags = {},
                                  duration timeout = {});
  std::uint64_t publish_pipelined(std::string_view exchange, std::string_view routing_key,
                                  std::string_view body, publish_flags flags, duration timeout,
                                  std::error_code& ec);
  confirm_summary wait_for_confirms(duration timeout = {});
  confirm_summary wait_for_confirms(duration timeout, std::error_code& ec);
  // The next basic.return (errc::timeout when none comes in time).
  returned_message next_return(duration timeout = {});
  returned_message next_return(duration timeout, std::error_code& ec);
  std::uint64_t returns_dropped() const;

  // confirm.select (pika's confirm_delivery); `window` bounds the
  // unconfirmed publishes of publish_pipelined (0 = unbounded), and opens
  // again once full as warren::channel::confirm_select describes.
  void confirm_select(std::size_t window = 0, duration timeout = {});
  void confirm_select(std::size_t window, duration timeout, std::error_code& ec);
  bool in_confirm_mode() const;
  std::uint64_t unconfirmed() const;

  // With recovery on: channel::reopen() of the coroutine API.
  void reopen(duration timeout = {});
  void reopen(duration timeout, std::error_code& ec);

  // tx.*
  void tx_select(duration timeout = {});
  void tx_select(duration timeout, std::error_code& ec);
  void tx_commit(duration timeout = {});
  void tx_commit(duration timeout, std::error_code& ec);
  void tx_rollback(duration timeout = {});
  void tx_rollback(duration timeout, std::error_code& ec);

  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

 private:
  friend class connection;
  friend consuming_end detail::consume_loop(channel&, duration, std::error_code*);
  explicit channel(std::shared_ptr<detail::channel_handle> h) : handle_(std::move(h)) {}
  std::shared_ptr<detail::channel_handle> handle_;
};

// Request/reply over RabbitMQ's direct reply-to (warren::rpc_client in
// rpc.hpp): call() publishes the request with reply_to
// "amq.rabbitmq.reply-to" and a fresh correlation_id and waits for the reply
// that carries it. Calls from several threads may wait at once. A shared
// handle: its channel closes when the last copy goes.
class rpc_client {
 public:
  rpc_client() = default;

  // errc::timeout when no reply comes within `timeout` (zero: no limit); a
  // reply that comes later is dropped and counted by late_replies().
  message call(std::string_view exchange, std::string_view routing_key, std::string_view body,
               duration timeout);
  message call(std::string_view exchange, std::string_view routing_key, std::string_view body,
               duration timeout, std::error_code& ec);
  // `properties` are sent as given but for correlation_id and reply_to.
  message call(std::string_view exchange, std::string_view routing_key, std::string_view body,
               const basic_properties& properties, duration timeout);
  message call(std::string_view exchange, std::string_view routing_key, std::string_view body,
               const basic_properties& properties, duration timeout, std::error_code& ec);
  // Closes the client's channel; waiting calls fail with channel_closed.
  void close(duration timeout = {});
  void close(duration timeout, std::error_code& ec);
  std::uint64_t late_replies() const;

  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

 private:
  friend class connection;
  explicit rpc_client(std::shared_ptr<detail::rpc_holder> h) : handle_(std::move(h)) {}
  std::shared_ptr<detail::rpc_holder> handle_;
};

// clang-format off
template <class S>
  requires std::is_convertible_v<const S&, std::string_view>
connection connect(const S& uri, const connect_options& options, duration timeout) {
  return detail::connect_uri(std::string_view(uri), options, timeout, nullptr);
}

template <class S>
  requires std::is_convertible_v<const S&, std::string_view>
connection connect(const S& uri, const connect_options& options, duration timeout,
                   std::error_code& ec) {
  return detail::connect_uri(std::string_view(uri), options, timeout, &ec);
}
// clang-format on

}  // namespace warren::blocking
