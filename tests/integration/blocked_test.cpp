// connection.blocked / unblocked: the broker runs out of memory (a watermark
// set absurdly low with rabbitmqctl) and stops publishers until it recovers.
// This changes broker-wide state; the watermark is always restored.
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <string>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

asio::awaitable<std::uint32_t> ready(channel& ch, const std::string& queue) {
  auto q = co_await ch.queue_declare(queue, {.passive = true});
  co_return q.message_count;
}

}  // namespace

TEST_CASE("blocked: a memory alarm blocks publishing until it clears") {
  test::watermark_guard restore;
  test::run(
      []() -> asio::awaitable<void> {
        connect_options impatient_opts;
        impatient_opts.connection_name = test::unique_name("blocked-impatient");
        impatient_opts.blocked_timeout = 500ms;
        connect_options patient_opts;
        patient_opts.connection_name = test::unique_name("blocked-patient");
        patient_opts.blocked_timeout = 30s;
        auto impatient = co_await test::open_connection(impatient_opts);
        auto patient = co_await test::open_connection(patient_opts);
        auto ch = co_await impatient.open_channel();   // confirm mode, for counting
        auto ich = co_await impatient.open_channel();  // plain publishes
        auto pch = co_await patient.open_channel();
        auto q = co_await ch.queue_declare("", {.exclusive = true});
        co_await test::publish_settled(ch, "", q.queue, "before the alarm");
        CHECK_FALSE(impatient.blocked());

        auto r = test::rabbitmqctl("set_vm_memory_high_watermark 0.00001");
        REQUIRE(r.status == 0);
        // RabbitMQ blocks a connection when it next publishes after the
        // alarm, and tells it so with connection.blocked. The alarm reaches
        // each connection's process in its own time, and a publish that gets
        // there first goes through unblocked (a loaded machine saw this), so
        // wait until both are "blocking": their next publish blocks them.
        for (const auto until = std::chrono::steady_clock::now() + 10s;;) {
          const std::string table = test::list_connections("state");
          const bool both =
              test::connection_row(table, impatient_opts.connection_name).find("block") !=
                  std::string::npos &&
              test::connection_row(table, patient_opts.connection_name).find("block") !=
                  std::string::npos;
          if (both) break;
          REQUIRE(std::chrono::steady_clock::now() < until);
          co_await test::sleep_for(50ms);
        }
        co_await ich.publish("", q.queue, "triggers the block");
        co_await pch.publish("", q.queue, "triggers the block too");
        auto blocked = co_await with_timeout(impatient.next_notice(), 10s);
        CHECK(blocked.type == connection_event_type::blocked);
        CHECK(blocked.reason == "low on memory");
        CHECK(impatient.blocked());
        CHECK(impatient.is_open());
        auto pblocked = co_await with_timeout(patient.next_notice(), 10s);
        CHECK(pblocked.type == connection_event_type::blocked);
        CHECK(patient.blocked());

        // A publish now waits, and gives up after blocked_timeout.
        const auto t0 = std::chrono::steady_clock::now();
        auto e = co_await test::error_of(ich.publish("", q.queue, "waits and gives up"));
        const auto waited = std::chrono::steady_clock::now() - t0;
        CHECK(e.code == errc::blocked_timeout);
        CHECK(waited >= 450ms);
        CHECK(waited < 3s);
        CHECK(impatient.is_open());
        CHECK(ich.is_open());

        // A publish still waiting when the alarm clears goes through.
        auto ex = co_await asio::this_coro::executor;
        auto waiting = test::start(ex, pch.publish("", q.queue, "waited for the unblock"));
        co_await test::sleep_for(100ms);
        CHECK_FALSE(waiting->done);

        r = test::rabbitmqctl("set_vm_memory_high_watermark 0.4");
        REQUIRE(r.status == 0);
        auto unblocked = co_await with_timeout(impatient.next_notice(), 10s);
        CHECK(unblocked.type == connection_event_type::unblocked);
        CHECK_FALSE(impatient.blocked());
        auto punblocked = co_await with_timeout(patient.next_notice(), 10s);
        CHECK(punblocked.type == connection_event_type::unblocked);
        const bool done = co_await test::wait_done(*waiting, 5s);
        CHECK(done);
        CHECK_FALSE(waiting->error.code);

        // Everything flows again; what the broker held back has arrived:
        // before, both triggers, the waiting one, after (the timed-out
        // publish never left the client).
        co_await test::publish_settled(ch, "", q.queue, "after the alarm");
        co_await test::publish_settled(pch, "", q.queue, "after the alarm too");
        const std::uint32_t n = co_await ready(ch, q.queue);
        CHECK(n == 6);
        co_await impatient.close();
        co_await patient.close();
      },
      std::chrono::seconds(90));
}
