// Request/reply over RabbitMQ's direct reply-to: a request is published with
// reply_to "amq.rabbitmq.reply-to" and a fresh correlation_id, and the
// server's reply (published to the default exchange with the reply_to as its
// routing key and the same correlation_id) comes straight back to this
// client's channel, with no reply queue to declare.
//
//   auto rpc = co_await warren::rpc_client::open(conn);
//   warren::message reply = co_await rpc.call("", "rpc.requests", "ping", 5s);
//
// Threading and lifetime follow the coroutine API (connection.hpp): call it
// on the connection's executor. Several calls may wait at once; each gets
// its own reply. The client owns a channel of its own, closed when the last
// copy of the client goes (or with close()).
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "warren/client/connection.hpp"
#include "warren/client/types.hpp"

namespace warren {

namespace detail {
struct rpc_handle;
}

class rpc_client {
 public:
  rpc_client() = default;

  // Opens the client's channel on `conn` and subscribes it (no_ack, as the
  // broker requires) to amq.rabbitmq.reply-to.
  static asio::awaitable<rpc_client> open(connection& conn);

  // Publishes `body` to `exchange` with `routing_key`, then waits for the
  // reply whose correlation_id is the request's. `properties` are sent as
  // given but for correlation_id and reply_to, which the client sets.
  // Throws warren::error: errc::timeout when no reply comes within `timeout`
  // (zero: no limit; a reply that comes later is dropped and counted by
  // late_replies()), the channel's or connection's error if they fail, or
  // what the publish throws. Honours Asio cancellation.
  asio::awaitable<message> call(std::string_view exchange, std::string_view routing_key,
                                std::string_view body, std::chrono::steady_clock::duration timeout);
  asio::awaitable<message> call(std::string_view exchange, std::string_view routing_key,
                                std::string_view body, const basic_properties& properties,
                                std::chrono::steady_clock::duration timeout);

  // Closes the client's channel; waiting calls fail with channel_closed.
  asio::awaitable<void> close();

  // Replies that came for no waiting call (their call had timed out).
  std::uint64_t late_replies() const noexcept;
  // Calls waiting for their reply.
  std::size_t waiting() const noexcept;

  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

 private:
  std::shared_ptr<detail::rpc_handle> handle_;
};

}  // namespace warren
