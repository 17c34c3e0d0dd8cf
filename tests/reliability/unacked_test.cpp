// Check 5: a consumer that goes away with 500 deliveries unacked, by closing its
// channel and by closing its connection. The broker delivers every one of them
// again, each with redelivered=true, and nothing else.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>

#include "reliability.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace rel = warren::test::reliability;

namespace {

constexpr int count = 500;

// Publishes `count` numbered messages, consumes them all without acking, then
// closes the consumer's channel (or its whole connection), and checks what a
// second consumer receives. Prints the figures under `how`.
asio::awaitable<void> unacked_on_close(bool whole_connection, const char* how) {
  const std::string queue = test::unique_name("rel-unacked");
  auto c = co_await rel::open_node();
  auto ch = co_await c.open_channel();
  co_await ch.queue_declare(queue);
  co_await ch.confirm_select();
  for (int i = 0; i < count; ++i) {
    const std::string body = std::to_string(i);
    co_await ch.publish_pipelined("", queue, body);
  }
  co_await ch.wait_for_confirms();

  auto c2 = co_await rel::open_node();
  auto sub = co_await c2.open_channel();
  {
    auto cons = co_await sub.consume(queue, {.prefetch = count});
    for (int i = 0; i < count; ++i) {
      auto m = co_await test::next_within(cons);
      CHECK_FALSE(m.redelivered);
    }
    CHECK(cons.buffered() == 0);
    if (whole_connection)
      co_await c2.close();
    else
      co_await sub.close();
  }

  auto again = co_await c.open_channel();
  auto cons = co_await again.consume(queue, {.prefetch = count});
  std::set<std::string> bodies;
  int redelivered = 0;
  for (int i = 0; i < count; ++i) {
    auto m = co_await test::next_within(cons);
    if (m.redelivered) ++redelivered;
    bodies.insert(m.body);
    again.ack(m.delivery_tag);
  }
  // Nothing more comes.
  auto extra = test::error_of(with_timeout(cons.next(), 300ms));
  const error_info none = co_await std::move(extra);
  CHECK(none.code == errc::timeout);
  std::printf("reliability: unacked-on-close (%s): unacked %d, delivered again %zu distinct, "
              "%d with redelivered=true\n",
              how, count, bodies.size(), redelivered);
  CHECK(redelivered == count);
  CHECK(bodies.size() == static_cast<std::size_t>(count));
  const std::uint32_t left = co_await ch.queue_delete(queue);
  CHECK(left == 0);
  if (!whole_connection) co_await c2.close();
  co_await c.close();
}

}  // namespace

TEST_CASE("reliability: 500 unacked deliveries come back redelivered when the channel closes" *
          doctest::skip(!rel::wanted())) {
  test::run([]() -> asio::awaitable<void> { co_await unacked_on_close(false, "channel close"); });
}

TEST_CASE("reliability: 500 unacked deliveries come back redelivered when the connection closes" *
          doctest::skip(!rel::wanted())) {
  test::run([]() -> asio::awaitable<void> { co_await unacked_on_close(true, "connection close"); });
}
