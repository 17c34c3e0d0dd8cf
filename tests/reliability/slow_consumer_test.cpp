// Check 3: a consumer that takes 10 s over each message, on a connection with a
// 2 s heartbeat. The connection stays up (no false heartbeat timeout), and
// another channel of the same connection keeps publishing and getting its
// confirms meanwhile. Once through the blocking API (the callback sleeps on the
// consuming thread while the I/O thread runs) and once through the coroutine
// API (the handler awaits a timer on the connection's own io_context).
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "reliability.hpp"
#include "warren/client/blocking.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace rel = warren::test::reliability;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int messages = 2;
constexpr auto handling = 10s;
constexpr auto publish_every = 50ms;

// The side publisher's figures: confirms, and the longest wait for one.
struct side_tally {
  std::uint64_t confirmed = 0;
  double longest_wait = 0;  // seconds from one confirm to the next
  std::string error;
};

void print(const char* api, double elapsed, int handled, const side_tally& s, bool open) {
  std::printf(
      "reliability: slow-consumer (%s): %d messages handled at 10 s each in %.1f s, heartbeat "
      "2 s, connection %s; side channel: %llu confirms, longest gap %.3f s %s\n",
      api, handled, elapsed, open ? "open" : "CLOSED", static_cast<unsigned long long>(s.confirmed),
      s.longest_wait, s.error.empty() ? "" : s.error.c_str());
}

// The coroutine API's side publisher: one confirmed publish every publish_every.
asio::awaitable<void> side_publisher(channel ch, std::shared_ptr<side_tally> side,
                                     std::shared_ptr<bool> stop) {
  auto last = clock_type::now();
  try {
    while (!*stop) {
      auto pending = ch.publish("", "", "side");
      const auto out = co_await with_timeout(std::move(pending), 5s);
      if (out.status == publish_status::acked) ++side->confirmed;
      const auto now = clock_type::now();
      side->longest_wait = std::max(side->longest_wait, rel::seconds_between(last, now));
      last = now;
      co_await test::sleep_for(publish_every);
    }
  } catch (const std::exception& e) {
    side->error = e.what();
  }
}

}  // namespace

TEST_CASE("reliability: a slow consumer (blocking API) keeps its connection; other channels publish" *
          doctest::skip(!rel::wanted())) {
  const std::string queue = test::unique_name("rel-slow-blocking");
  auto conn = blocking::connect(rel::node_url_with("heartbeat=2"), connect_options{}, 10s);
  REQUIRE(conn.heartbeat() == 2);
  auto setup = conn.open_channel();
  setup.queue_declare(queue, {.auto_delete = true});
  for (int i = 0; i < messages + 1; ++i) setup.publish("", queue, "slow " + std::to_string(i));

  std::atomic<bool> stop{false};
  side_tally side;
  std::thread publisher([&] {
    try {
      auto ch = conn.open_channel();
      ch.confirm_select();
      auto last = clock_type::now();
      while (!stop) {
        const auto out = ch.publish("", "", "side", publish_flags{}, 5s);
        if (out.status == publish_status::acked) ++side.confirmed;
        const auto now = clock_type::now();
        side.longest_wait = std::max(side.longest_wait, rel::seconds_between(last, now));
        last = now;
        std::this_thread::sleep_for(publish_every);
      }
    } catch (const std::exception& e) {
      side.error = e.what();
    }
  });

  auto consuming = conn.open_channel();
  int handled = 0;
  const auto t0 = clock_type::now();
  consuming.basic_consume(
      queue,
      [&](blocking::channel& ch, const message& m) {
        std::this_thread::sleep_for(handling);
        ch.ack(m.delivery_tag);
        if (++handled == messages) ch.stop_consuming();
      },
      {.prefetch = 1});
  const auto end = consuming.start_consuming(60s);
  const double elapsed = rel::seconds_between(t0, clock_type::now());
  stop = true;
  publisher.join();

  print("blocking", elapsed, handled, side, conn.is_open());
  CHECK(end == blocking::consuming_end::stopped);
  CHECK(handled == messages);
  CHECK(conn.is_open());
  CHECK_MESSAGE(side.error.empty(), side.error);
  // A confirm every publish_every, give or take: never a stall near the heartbeat.
  CHECK(side.confirmed > 100);
  CHECK(side.longest_wait < 1.0);
  conn.close();
}

TEST_CASE("reliability: a slow consumer (coroutine API) keeps its connection; other channels publish" *
          doctest::skip(!rel::wanted())) {
  test::run(
      []() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const std::string queue = test::unique_name("rel-slow-coro");
        const std::string uri = rel::node_url_with("heartbeat=2");
        auto opening = rel::open_node(uri);
        auto c = co_await std::move(opening);
        REQUIRE(c.heartbeat() == 2);
        auto ch = co_await c.open_channel();
        co_await ch.queue_declare(queue, {.auto_delete = true});
        for (int i = 0; i < messages + 1; ++i) co_await ch.publish("", queue, "slow");

        auto side = std::make_shared<side_tally>();
        auto stop = std::make_shared<bool>(false);
        auto side_ch = co_await c.open_channel();
        co_await side_ch.confirm_select();
        asio::co_spawn(ex, side_publisher(side_ch, side, stop), asio::detached);

        auto cons = co_await ch.consume(queue, {.prefetch = 1});
        const auto t0 = clock_type::now();
        int handled = 0;
        while (handled < messages) {
          auto m = co_await test::next_within(cons, 20s);
          co_await test::sleep_for(handling);
          ch.ack(m.delivery_tag);
          ++handled;
        }
        const double elapsed = rel::seconds_between(t0, clock_type::now());
        *stop = true;
        co_await test::sleep_for(2 * publish_every);

        print("coroutine", elapsed, handled, *side, c.is_open());
        CHECK(c.is_open());
        CHECK_MESSAGE(side->error.empty(), side->error);
        CHECK(side->confirmed > 100);
        CHECK(side->longest_wait < 1.0);
        co_await c.close();
      },
      90s);
}
