// RabbitMQ 3.10 and a quorum queue without a leader: a channel whose first
// publish to the queue comes while its leader's node is down gets every
// later publish to that queue nacked, for as long as the channel lives, even
// once a new leader is elected (a channel that also consumes from the queue
// learns of the new leader and recovers: this is a publisher's problem).
// channel::reopen() gives the same handle a new broker channel: publishes are
// acked again; a consumer on a reopened channel carries on with its tag.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "cluster.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace cluster = warren::test::cluster;

namespace {
struct restart_at_exit {
  bool armed = false;
  ~restart_at_exit() {
    if (armed && cluster::script("start") != 0) MESSAGE("scripts/cluster start failed after the test");
  }
};
}  // namespace

TEST_CASE("cluster: a channel spoilt by a leaderless quorum queue is reopened under its handle" *
          doctest::skip(!cluster::wanted())) {
  test::run(
      []() -> asio::awaitable<void> {
        // The queue's leader on node 1 (declared there); the client on node 2.
        // connect() is lazy: its arguments must outlive the co_await.
        const std::string node1 = cluster::uri_of(1);
        auto d = connect(node1);
        auto declarer = co_await std::move(d);
        const std::string queue = test::unique_name("quorum-reopen");
        {
          auto ch = co_await declarer.open_channel();
          field_table quorum;
          quorum.set("x-queue-type", "quorum");
          co_await ch.queue_declare(queue, {.durable = true, .arguments = &quorum});
        }
        connect_options o;
        o.connection_name = test::unique_name("quorum-reopen");
        o.recovery.enabled = true;
        const std::vector<std::string> uris{cluster::uri_of(2), cluster::uri_of(3)};
        auto c = connect(uris, o);
        auto conn = co_await std::move(c);
        REQUIRE(cluster::node_of(conn.endpoint()) == 2);
        auto ch = co_await conn.open_channel();
        co_await ch.confirm_select();

        const long pid = cluster::os_pid(1);
        REQUIRE(pid > 0);
        restart_at_exit restart;
        restart.armed = true;
        REQUIRE(cluster::kill_hard(pid));
        // The first publish to the queue, while it has no leader.
        basic_properties persistent;
        persistent.delivery_mode = 2;
        auto first = co_await ch.publish("", queue, "leaderless", persistent);
        MESSAGE("first publish after the kill: status " << static_cast<int>(first.status));
        if (first.status != publish_status::nacked) {
          MESSAGE("a leader was elected before the first publish: nothing to show");
          co_await ch.queue_delete(queue);
          co_await conn.close();
          co_return;
        }
        // A new leader comes within seconds; the channel stays spoilt.
        co_await test::sleep_for(5s);
        auto later = co_await ch.publish("", queue, "still", persistent);
        CHECK(later.status == publish_status::nacked);

        co_await ch.reopen();
        CHECK(ch.is_open());
        CHECK(conn.is_open());
        auto fixed = co_await ch.publish("", queue, "reopened", persistent);
        CHECK(fixed.status == publish_status::acked);
        // Every publish since confirm_select, the first channel's included.
        auto tallies = co_await ch.wait_for_confirms();
        CHECK(tallies.nacked == 2);
        CHECK(tallies.acked == 1);
        CHECK(tallies.unknown == 0);

        // A consumer on the channel: a delivery left unacked, a reopen, and
        // the consumer carries on under its tag; the old delivery tag is stale.
        auto cons = co_await ch.consume(queue, {.prefetch = 10});
        const std::string tag = cons.tag();
        auto m = co_await test::next_within(cons, 10000ms);
        CHECK(m.body == "reopened");
        co_await ch.reopen();
        CHECK(cons.tag() == tag);
        CHECK_FALSE(ch.ack(m.delivery_tag));
        auto again = co_await test::next_within(cons, 10000ms);
        CHECK(again.body == "reopened");
        CHECK(again.redelivered);
        CHECK(ch.ack(again.delivery_tag));
        auto more = co_await ch.publish("", queue, "more", persistent);
        CHECK(more.status == publish_status::acked);
        auto last = co_await test::next_within(cons, 10000ms);
        CHECK(last.body == "more");
        CHECK(ch.ack(last.delivery_tag));
        CHECK(ch.is_open());

        co_await ch.queue_delete(queue);
        co_await conn.close();
        try {
          co_await declarer.close();
        } catch (const error&) {
        }
      },
      std::chrono::seconds(120));
}
