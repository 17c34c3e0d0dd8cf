// Check 4: a memory alarm in the middle of a confirmed publishing run. The
// node's watermark is dropped so that it blocks publishers, and raised again a
// few seconds later. Publishes begun on the blocked connection fail with
// errc::blocked_timeout once their deadline (connect_options::blocked_timeout)
// passes, not later; publishes already on the wire are confirmed once the
// broker unblocks; and the queue then holds exactly the confirmed messages.
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

using namespace warren;
using namespace std::chrono_literals;
namespace rel = warren::test::reliability;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int workers = 32;
constexpr int late_workers = 8;  // started while the connection is blocked
constexpr auto deadline = 1500ms;   // connect_options::blocked_timeout
constexpr auto alarm_for = 5s;      // how long the node stays blocked

struct tally {
  std::uint64_t confirmed = 0, timed_out = 0, other = 0;
  std::uint64_t confirmed_during = 0;  // begun after the alarm was raised, and confirmed
  double longest_timeout_wait = 0;     // seconds a blocked_timeout failure waited
  double longest_confirm_wait = 0;     // seconds a confirmed publish waited
  bool stop = false, blocked_seen = false;
  int running = 0;
  clock_type::time_point alarm_at = clock_type::time_point::max();
  error_info other_error;
};

asio::awaitable<void> publisher(channel ch, std::string queue, std::shared_ptr<tally> t) {
  ++t->running;
  const std::string body(1024, 'a');
  while (!t->stop) {
    const auto start = clock_type::now();
    try {
      auto pending = ch.publish("", queue, body);
      const publish_outcome out = co_await std::move(pending);
      const double waited = rel::seconds_between(start, clock_type::now());
      if (out.status == publish_status::acked) {
        ++t->confirmed;
        if (start >= t->alarm_at) ++t->confirmed_during;
        t->longest_confirm_wait = std::max(t->longest_confirm_wait, waited);
      } else {
        ++t->other;
      }
    } catch (const error& e) {
      const double waited = rel::seconds_between(start, clock_type::now());
      if (e.code() == errc::blocked_timeout) {
        ++t->timed_out;
        t->longest_timeout_wait = std::max(t->longest_timeout_wait, waited);
      } else {
        ++t->other;
        if (!t->other_error) t->other_error = e.info();
        break;
      }
    }
  }
  --t->running;
}

asio::awaitable<void> watch(connection c, std::shared_ptr<tally> t) {
  try {
    for (;;) {
      auto n = co_await c.next_notice();
      if (n.type == connection_event_type::blocked) t->blocked_seen = true;
    }
  } catch (const error&) {
  }
}

// Runs `f` on a thread of its own while the io_context keeps going.
template <class F>
asio::awaitable<void> off_thread(F f) {
  std::atomic<bool> done{false};
  std::thread th([&] {
    f();
    done = true;
  });
  while (!done) co_await test::sleep_for(5ms);
  th.join();
}

}  // namespace

TEST_CASE("reliability: a memory alarm mid-run: publishes honour their deadline, no confirm lost" *
          doctest::skip(!rel::wanted())) {
  rel::watermark_restore restore;
  test::run(
      []() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const std::string queue = test::unique_name("rel-alarm");
        connect_options o;
        o.blocked_timeout = deadline;
        auto c = co_await rel::open_node(o);
        auto ch = co_await c.open_channel();
        co_await ch.queue_declare(queue);
        co_await ch.confirm_select();

        auto t = std::make_shared<tally>();
        asio::co_spawn(ex, watch(c, t), asio::detached);
        for (int i = 0; i < workers; ++i) asio::co_spawn(ex, publisher(ch, queue, t), asio::detached);
        while (t->confirmed < 5000) co_await test::sleep_for(5ms);

        bool set = false;
        auto raise = off_thread([&] { set = rel::set_watermark("1MB"); });
        co_await std::move(raise);
        REQUIRE(set);
        t->alarm_at = clock_type::now();
        // The publishers in flight now wait for confirms the blocked broker
        // does not send; publishes begun once the client knows it is blocked
        // wait to be sent, up to their deadline.
        while (!c.blocked() && clock_type::now() < t->alarm_at + alarm_for)
          co_await test::sleep_for(1ms);
        REQUIRE(c.blocked());
        for (int i = 0; i < late_workers; ++i)
          asio::co_spawn(ex, publisher(ch, queue, t), asio::detached);
        co_await test::sleep_for(alarm_for);
        const bool blocked_then = c.blocked();
        const std::uint64_t timed_out_then = t->timed_out;
        auto lower = off_thread([&] { set = rel::set_watermark("2GB"); });
        co_await std::move(lower);
        REQUIRE(set);
        const auto unblocked_at = clock_type::now();
        // Publishing resumes: more confirms after the unblock.
        const std::uint64_t before = t->confirmed;
        while (t->confirmed < before + 5000 && clock_type::now() < unblocked_at + 20s)
          co_await test::sleep_for(5ms);
        t->stop = true;
        while (t->running > 0 && clock_type::now() < unblocked_at + 30s)
          co_await test::sleep_for(5ms);
        REQUIRE(t->running == 0);

        auto q = co_await ch.queue_declare(queue, {.passive = true});
        std::printf(
            "reliability: memory-alarm: confirmed %llu (%llu begun after the alarm) timed-out %llu "
            "(deadline %.1f s, longest wait %.3f s) other %llu; queue holds %u, lost %lld; "
            "longest confirm wait %.3f s\n",
            static_cast<unsigned long long>(t->confirmed),
            static_cast<unsigned long long>(t->confirmed_during),
            static_cast<unsigned long long>(t->timed_out),
            std::chrono::duration<double>(deadline).count(), t->longest_timeout_wait,
            static_cast<unsigned long long>(t->other), q.message_count,
            static_cast<long long>(t->confirmed) - static_cast<long long>(q.message_count),
            t->longest_confirm_wait);
        CHECK(t->blocked_seen);
        CHECK(blocked_then);
        CHECK(timed_out_then > 0);
        CHECK_MESSAGE(t->other == 0, t->other_error.describe());
        // The deadline is honoured: no blocked publish waited much past it.
        CHECK(t->longest_timeout_wait < std::chrono::duration<double>(deadline).count() + 0.5);
        CHECK(t->longest_timeout_wait >= std::chrono::duration<double>(deadline).count() - 0.05);
        // No confirm lost, nothing taken that was not confirmed.
        CHECK(q.message_count == t->confirmed);
        CHECK(c.is_open());
        co_await ch.queue_delete(queue);
        co_await c.close();
      },
      120s);
}
