// Check 8: large messages. Bodies of 0 B, 1 B, frame_max - 8 (the most one body
// frame carries), frame_max - 7 (the least that takes two) and 128 MiB round-trip
// byte for byte through a consumer. A delivery larger than the consumer
// connection's max_body_size fails with a clear error (errc::message_too_large,
// naming the sizes); the protocol lets the client skip the body frames, so only
// that channel closes, the connection survives, and the broker requeues the
// message.
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "reliability.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace rel = warren::test::reliability;
using clock_type = std::chrono::steady_clock;

namespace {

// Bytes that differ at every offset and from size to size (xorshift).
std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  std::uint64_t x = 0x9E3779B97F4A7C15ull ^ size;
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

// The first offset where a and b differ (their common size if none).
std::size_t first_difference(const std::string& a, const std::string& b) {
  std::size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

TEST_CASE("reliability: bodies of 0, 1, frame_max-8, frame_max-7 and 128 MiB round-trip byte for byte" *
          doctest::skip(!rel::wanted())) {
  test::run(
      []() -> asio::awaitable<void> {
        const std::string queue = test::unique_name("rel-large");
        auto c = co_await rel::open_node();
        const std::size_t frame_max = c.frame_max();
        REQUIRE(frame_max > 8);
        auto ch = co_await c.open_channel();
        co_await ch.queue_declare(queue, {.exclusive = true});
        co_await ch.confirm_select();
        auto sub = co_await c.open_channel();
        auto cons = co_await sub.consume(queue, {.prefetch = 1});

        const std::vector<std::size_t> sizes = {0, 1, frame_max - 8, frame_max - 7, 128u << 20};
        std::string report;
        for (const std::size_t size : sizes) {
          const std::string body = pattern(size);
          const auto t0 = clock_type::now();
          auto pending = ch.publish("", queue, body);
          const publish_outcome out = co_await std::move(pending);
          REQUIRE(out.status == publish_status::acked);
          auto m = co_await test::next_within(cons, 60s);
          const double took = rel::seconds_between(t0, clock_type::now());
          sub.ack(m.delivery_tag);
          const bool same = m.body == body;
          CHECK_MESSAGE(m.body.size() == size, "size ", size);
          CHECK_MESSAGE(same, "size ", size, ": first difference at byte ",
                        first_difference(m.body, body));
          char line[96];
          std::snprintf(line, sizeof line, "%s%zu B %s (%.3f s)", report.empty() ? "" : ", ", size,
                        same ? "ok" : "DIFFERENT", took);
          report += line;
        }
        std::printf("reliability: large-bodies (frame_max %zu): %s\n", frame_max, report.c_str());
        co_await c.close();
      },
      300s);
}

TEST_CASE("reliability: a delivery over max_body_size fails its channel clearly; the connection survives" *
          doctest::skip(!rel::wanted())) {
  test::run(
      []() -> asio::awaitable<void> {
        const std::string queue = test::unique_name("rel-too-large");
        auto c = co_await rel::open_node();
        auto ch = co_await c.open_channel();
        co_await ch.queue_declare(queue, {.auto_delete = false});
        co_await ch.confirm_select();
        const std::string body = pattern(2u << 20);
        co_await ch.publish("", queue, body);

        connect_options small;
        small.max_body_size = 1u << 20;
        auto limited = co_await rel::open_node(small);
        auto lch = co_await limited.open_channel();
        auto cons = co_await lch.consume(queue);
        auto next = test::error_of(with_timeout(cons.next(), 10s));
        const error_info e = co_await std::move(next);
        std::printf("reliability: max-body-size (1 MiB, delivery of 2 MiB): %s; connection %s\n",
                    e.describe().c_str(), limited.is_open() ? "open" : "CLOSED");
        CHECK(e.code == errc::message_too_large);
        CHECK(e.text.find(std::to_string(2u << 20)) != std::string::npos);
        CHECK_FALSE(lch.is_open());
        CHECK(lch.close_reason().code == errc::message_too_large);
        // The connection survives and works.
        REQUIRE(limited.is_open());
        auto other = co_await limited.open_channel();
        co_await other.queue_declare(queue, {.passive = true});
        // The broker gave the message back: the unlimited connection gets it whole.
        std::optional<message> m;
        for (int i = 0; i < 100 && !m; ++i) {
          m = co_await ch.get(queue, true);
          if (!m) co_await test::sleep_for(20ms);
        }
        REQUIRE(m.has_value());
        CHECK(m->body == body);
        co_await ch.queue_delete(queue);
        co_await limited.close();
        co_await c.close();
      },
      120s);
}
