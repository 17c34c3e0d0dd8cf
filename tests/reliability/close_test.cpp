// Check 2: `rabbitmqctl close_connection` while 1000 confirms are in flight.
// 1000 publishers each keep one confirm-mode publish waiting for its confirm at
// every moment; a consumer and a second channel's wait_for_confirms wait too.
// When the broker closes the connection (320 CONNECTION_FORCED) every one of
// them fails with 320 within 1 s.
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "reliability.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace rel = warren::test::reliability;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int publishers = 1000;

struct tally {
  std::uint64_t confirmed = 0;
  int failed_320 = 0, failed_other = 0, running = 0;
  error_info other_error;
  clock_type::time_point first_fail = clock_type::time_point::max(), last_fail{};

  void failure(const error_info& e) {
    const auto now = clock_type::now();
    if (now < first_fail) first_fail = now;
    if (now > last_fail) last_fail = now;
    if (e.reply_code() == 320) {
      ++failed_320;
    } else {
      ++failed_other;
      if (!other_error) other_error = e;
    }
  }
};

asio::awaitable<void> publisher(channel ch, std::string queue, std::shared_ptr<tally> t) {
  ++t->running;
  const std::string body(256, 'x');
  for (;;) {
    try {
      auto pending = ch.publish("", queue, body);
      const publish_outcome out = co_await std::move(pending);
      if (out.status == publish_status::acked) ++t->confirmed;
    } catch (const error& e) {
      t->failure(e.info());
      break;
    }
  }
  --t->running;
}

// A consumer waiting for a delivery that never comes, and a second channel
// waiting for confirms that never come: both must fail with 320 as well.
asio::awaitable<void> idle_consumer(consumer cons, std::shared_ptr<tally> t) {
  ++t->running;
  try {
    auto m = co_await cons.next();
    if (m) {
      error_info e;
      e.text = "a delivery on an empty queue";
      t->failure(e);
    }
  } catch (const error& e) {
    t->failure(e.info());
  }
  --t->running;
}

}  // namespace

TEST_CASE("reliability: close_connection with 1000 confirms in flight fails each with 320 within 1 s" *
          doctest::skip(!rel::wanted())) {
  test::run(
      []() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const std::string name = test::unique_name("rel-close");
        const std::string queue = test::unique_name("rel-close");
        const std::string idle_queue = queue + ".idle";
        connect_options o;
        o.connection_name = name;
        auto c = co_await rel::open_node(o);
        auto ch = co_await c.open_channel();
        co_await ch.queue_declare(queue, {.auto_delete = true});
        co_await ch.queue_declare(idle_queue, {.auto_delete = true});
        co_await ch.confirm_select();
        auto idle_ch = co_await c.open_channel();
        auto cons = co_await idle_ch.consume(idle_queue);

        auto t = std::make_shared<tally>();
        for (int i = 0; i < publishers; ++i)
          asio::co_spawn(ex, publisher(ch, queue, t), asio::detached);
        asio::co_spawn(ex, idle_consumer(std::move(cons), t), asio::detached);
        const int expected = publishers + 1;

        // Under load for a while first, so that the broker is busy.
        while (t->confirmed < 20000) co_await test::sleep_for(5ms);
        const std::string pid = rel::connection_pid(name);
        REQUIRE_FALSE(pid.empty());

        // Every publisher, and the consumer, waits on the broker now.
        const int waiting = t->running;
        // rabbitmqctl on a thread of its own: the connection keeps working meanwhile.
        std::atomic<bool> done{false};
        clock_type::time_point issued = clock_type::now(), returned{};
        test::command_result r;
        std::thread closer([&] {
          r = rel::ctl("close_connection '" + pid + "' 'reliability: forced close'");
          returned = clock_type::now();
          done = true;
        });
        while (!done || (t->running > 0 && clock_type::now() < returned + 5s))
          co_await test::sleep_for(1ms);
        closer.join();
        REQUIRE_MESSAGE(r.status == 0, r.output);

        const double after_close = rel::seconds_between(t->first_fail, t->last_fail);
        const double after_command = rel::seconds_between(returned, t->last_fail);
        std::printf(
            "reliability: forced-close: waiting %d (1000 publishes and a consumer) failed-320 %d "
            "failed-other %d, last failure "
            "%.3f s after the first, %.3f s after rabbitmqctl returned (it ran %.3f s); "
            "%llu confirmed before\n",
            waiting, t->failed_320, t->failed_other, after_close, after_command,
            rel::seconds_between(issued, returned),
            static_cast<unsigned long long>(t->confirmed));
        CHECK(waiting == expected);
        CHECK(t->running == 0);
        CHECK(t->failed_320 == expected);
        CHECK_MESSAGE(t->failed_other == 0, t->other_error.describe());
        CHECK(after_close < 1.0);
        CHECK(after_command < 1.0);
        CHECK_FALSE(c.is_open());
        CHECK(c.close_reason().reply_code() == 320);
      },
      120s);
}
