// The blocking API with connection recovery on: the broker closes the
// connection (rabbitmqctl close_connection of this connection only) while a
// thread waits in consumer::next(); the same connection, channel and
// consumer objects carry on publishing and consuming once it is recovered,
// and after a channel::reopen().
#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "blocking_harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

TEST_CASE("blocking: a forced close is recovered; publishing and a waiting consumer carry on; reopen") {
  const std::string name = test::unique_name("blocking-recover");
  connect_options options;
  options.connection_name = name;
  options.recovery.enabled = true;
  options.recovery.initial_backoff = 100ms;
  options.recovery.max_backoff = 1000ms;
  auto conn = test::open_blocking(options);
  auto ch = conn.open_channel();
  const std::string queue = test::unique_name("blocking-rq");
  ch.queue_declare(queue, {.auto_delete = false});
  ch.confirm_select();
  auto cons = ch.consume(queue, {.prefetch = 10});

  CHECK(ch.publish("", queue, "before").status == publish_status::acked);
  auto first = cons.next(10s);
  REQUIRE(first.has_value());
  CHECK(first->body == "before");
  ch.ack(first->delivery_tag);
  // Delivered, not acked: the broker delivers it again after the recovery.
  CHECK(ch.publish("", queue, "unacked").status == publish_status::acked);
  auto unacked = cons.next(10s);
  REQUIRE(unacked.has_value());
  CHECK(unacked->body == "unacked");

  // A thread waits for the next delivery across the close.
  std::optional<message> waited;
  std::atomic<bool> waiting_done{false};
  std::string waiter_error;
  std::thread waiter([&] {
    try {
      waited = cons.next(30s);
    } catch (const std::exception& e) {
      waiter_error = e.what();
    }
    waiting_done = true;
  });
  std::this_thread::sleep_for(200ms);

  const std::string pid = test::connection_pid(name);
  REQUIRE_FALSE(pid.empty());
  auto r = test::rabbitmqctl("close_connection '" + pid + "' 'blocking recovery test'");
  REQUIRE(r.status == 0);
  // lost, reconnecting..., recovered
  auto lost = conn.next_notice(15s);
  CHECK(lost.type == connection_event_type::lost);
  for (;;) {
    auto n = conn.next_notice(15s);
    if (n.type == connection_event_type::reconnecting) continue;
    REQUIRE(n.type == connection_event_type::recovered);
    break;
  }
  CHECK(conn.is_open());

  // The waiting consumer gets the redelivered message, then new ones.
  waiter.join();
  CHECK(waiter_error.empty());
  REQUIRE(waited.has_value());
  CHECK(waited->body == "unacked");
  CHECK(waited->redelivered);
  CHECK(waited->delivery_tag > unacked->delivery_tag);
  // The old tag is stale: not sent, so the new channel stays open.
  ch.ack(unacked->delivery_tag);
  ch.ack(waited->delivery_tag);

  CHECK(ch.publish("", queue, "after").status == publish_status::acked);
  ch.publish_pipelined("", queue, "pipelined");
  auto tallies = ch.wait_for_confirms(10s);
  // Every publish since the first: the two acked before the close are
  // carried over from the lost channel.
  CHECK(tallies.acked == 4);
  CHECK(tallies.unknown == 0);
  for (const char* body : {"after", "pipelined"}) {
    auto m = cons.next(10s);
    REQUIRE(m.has_value());
    CHECK(m->body == body);
    ch.ack(m->delivery_tag);
  }
  CHECK(ch.is_open());

  // reopen(): a new broker channel under the same objects; the consumer
  // carries on.
  ch.reopen(10s);
  CHECK(ch.publish("", queue, "reopened").status == publish_status::acked);
  auto reopened = cons.next(10s);
  REQUIRE(reopened.has_value());
  CHECK(reopened->body == "reopened");
  ch.ack(reopened->delivery_tag);
  CHECK(ch.is_open());
  CHECK(test::eventually([&] { return test::ready(ch, queue) == 0; }));
  ch.queue_delete(queue);
  conn.close();
}
