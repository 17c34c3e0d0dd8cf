// Public value types of the client: errors with diagnostics, messages,
// publish outcomes and the option aggregates of each operation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "warren/codec/error.hpp"
#include "warren/codec/field.hpp"
#include "warren/proto/constants.hpp"
#include "warren/proto/properties.hpp"

namespace warren {

// What went wrong, with the broker's diagnostics when it closed a channel or
// the connection: its reply text and the class/method ids of the method that
// failed (0 when not applicable). `code` is in the "amqp" category for reply
// codes (404, 406, 320...) and in the "warren" category for client errors.
struct error_info {
  std::error_code code;
  std::string text;
  std::uint16_t class_id = 0;
  std::uint16_t method_id = 0;

  explicit operator bool() const noexcept { return static_cast<bool>(code); }
  // The AMQP reply code, or 0 for a client-side error.
  std::uint16_t reply_code() const noexcept {
    return code.category() == amqp_category() ? static_cast<std::uint16_t>(code.value()) : 0;
  }
  // "404 NOT_FOUND - no queue 'x' in vhost '/' (queue.declare)"-style text.
  std::string describe() const;
};

// The one exception type the coroutine API throws.
class error : public std::system_error {
 public:
  explicit error(error_info info);
  const error_info& info() const noexcept { return info_; }
  const std::string& reply_text() const noexcept { return info_.text; }
  std::uint16_t reply_code() const noexcept { return info_.reply_code(); }
  std::uint16_t class_id() const noexcept { return info_.class_id; }
  std::uint16_t method_id() const noexcept { return info_.method_id; }

 private:
  error_info info_;
};

// A message delivered to a consumer or fetched with basic.get.
struct message {
  std::string consumer_tag;       // empty for basic.get
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  std::uint32_t message_count = 0;  // basic.get: messages left in the queue
  basic_properties properties;
  std::string body;
};

// A mandatory publish the broker could not route, sent back with basic.return.
struct returned_message {
  std::uint16_t reply_code = 0;
  std::string reply_text;
  std::string exchange;
  std::string routing_key;
  basic_properties properties;
  std::string body;
};

// What became of one publish.
//   sent      the channel is not in confirm mode: the frames were handed to the socket
//   acked     the broker took responsibility for the message
//   nacked    the broker could not take it
//   returned  the broker returned it as unroutable (mandatory) and then acked it
// unknown: the connection was lost before the broker confirmed the publish
// (with recovery on): it may or may not have been taken.
enum class publish_status : std::uint8_t { sent, acked, nacked, returned, unknown };

struct publish_outcome {
  publish_status status = publish_status::sent;
  // Recovery republished it after a loss (connect_options::recovery with
  // republish_unconfirmed): the broker may hold it twice.
  bool republished = false;
  std::uint64_t sequence = 0;  // the publish sequence number in confirm mode, else 0
  std::uint16_t reply_code = 0;  // returned: the broker's reason (312 NO_ROUTE...)
  std::string reply_text;
};

// Options of each operation, meant for designated initializers:
//   co_await ch.exchange_declare("logs", {.type = "fanout", .durable = true});
//
// They are trivially destructible on purpose (views and a pointer to the
// arguments table, never owning members): g++ 12 destroys a braced temporary
// inside a co_await expression twice, which is harmless only for such types.
// Strings and tables they point to must outlive the co_await.

struct exchange_declare_options {
  std::string_view type = "direct";
  bool passive = false;
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  bool no_wait = false;
  const field_table* arguments = nullptr;
};

struct exchange_delete_options {
  bool if_unused = false;
  bool no_wait = false;
};

struct bind_options {
  const field_table* arguments = nullptr;
  bool no_wait = false;
};

struct queue_declare_options {
  bool passive = false;
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  bool no_wait = false;
  const field_table* arguments = nullptr;
};

struct queue_declare_result {
  std::string queue;
  std::uint32_t message_count = 0;
  std::uint32_t consumer_count = 0;
};

struct queue_delete_options {
  bool if_unused = false;
  bool if_empty = false;
  bool no_wait = false;
};

struct qos_options {
  std::uint16_t prefetch_count = 0;
  std::uint32_t prefetch_size = 0;
  bool global = false;
};

struct consume_options {
  std::string_view consumer_tag;  // empty: the broker picks one
  bool no_local = false;
  bool no_ack = false;
  bool exclusive = false;
  const field_table* arguments = nullptr;
  // If non-zero, basic.qos(prefetch) is sent first (per consumer). The stream
  // then buffers at most this many deliveries.
  std::uint16_t prefetch = 0;
  // The stream's bound when prefetch is 0 or no_ack is set. When a stream is
  // full the connection stops reading from the socket until it drains.
  std::size_t buffer = 1024;
};

struct publish_flags {
  bool mandatory = false;
  bool immediate = false;  // RabbitMQ refuses it (540 NOT_IMPLEMENTED)
};

// connection.blocked / connection.unblocked, as connection::next_notice()
// reports them.
// With recovery on, also its events: lost (reason: why), reconnecting
// (attempt, endpoint), recovered (endpoint), gave_up (reason: the last
// failure); and replay_failed when a recorded object could not be
// re-declared (reason: the broker's answer).
enum class connection_event_type : std::uint8_t {
  blocked,
  unblocked,
  lost,
  reconnecting,
  recovered,
  gave_up,
  replay_failed,
};
struct connection_notice {
  connection_event_type type = connection_event_type::blocked;
  std::string reason;  // blocked: the broker's reason ("low on memory"); lost, gave_up: why
  std::uint32_t attempt = 0;  // reconnecting: 1, 2, ...
  std::string endpoint;       // reconnecting, recovered: the URI, password as "***"
};

// Tallies returned by wait_for_confirms().
struct confirm_summary {
  std::uint64_t acked = 0;
  std::uint64_t nacked = 0;
  std::uint64_t returned = 0;
  // With recovery on: publishes unconfirmed when the connection was lost.
  // unknown: they may or may not have been taken (republish_unconfirmed
  // off). republished: they were published again after the recovery, and
  // their new outcomes are in acked, nacked and returned.
  std::uint64_t unknown = 0;
  std::uint64_t republished = 0;
};

// ---- logging ---------------------------------------------------------------

// How much a log message matters: debug (details of the handshake),
// info (connecting, connected, closing, closed, recovered), warning
// (something the application may want to act on: the broker closed the
// connection or a channel, blocked publishing, a heartbeat missed, a stale
// ack or a return dropped), error (the connection failed).
enum class log_level : std::uint8_t { debug, info, warning, error };
std::string_view to_string(log_level level) noexcept;

// The logging hook (connect_options::log). It receives one line per event,
// without a trailing newline. Text the broker sent is escaped (control
// characters as \xHH) and no message carries a password, a secret or key
// material: endpoints are written as URIs with the password as "***".
//
// It is called on the connection's executor (for the blocking API: its I/O
// thread), at the moment the event happens, often while the client is
// processing a frame or a timer. So it must return quickly, and must not
// call the connection, its channels or consumers directly (post such work
// instead); whatever it throws is ignored. Unset (the default) nothing is
// formatted or printed.
using log_sink = std::function<void(log_level, std::string_view)>;

// ---- counters --------------------------------------------------------------

// What a connection has done so far, per logical connection: with recovery
// on, the counts of every underlying connection add up, and survive each
// recovery. Read with connection::counters() (see there for the threads
// that may read them).
struct connection_counters {
  std::uint64_t frames_in = 0;   // frames received, heartbeats included
  std::uint64_t frames_out = 0;  // frames handed to the socket, heartbeats included
  std::uint64_t bytes_in = 0;    // bytes received
  std::uint64_t bytes_out = 0;   // bytes handed to the socket
  std::uint64_t publishes = 0;   // messages published (basic.publish)
  std::uint64_t acks = 0;        // publishes the broker confirmed with basic.ack
  std::uint64_t nacks = 0;       // publishes the broker refused with basic.nack
  std::uint64_t returns = 0;     // basic.return messages received
  std::uint64_t deliveries = 0;  // basic.deliver messages received
  std::uint64_t heartbeats_sent = 0;
  // Heartbeat intervals that passed without a byte from the broker; the
  // second in a row fails the connection (errc::heartbeat_timeout).
  std::uint64_t heartbeats_missed = 0;
  std::uint64_t recoveries = 0;  // successful recoveries (recovery_options)

  connection_counters& operator+=(const connection_counters& o) noexcept;
  bool operator==(const connection_counters&) const = default;
};

}  // namespace warren
