// The integration suite's basic.* scenarios through the blocking API: get,
// consume, qos, cancel, ack / nack / reject / recover, flow.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "blocking_harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

message next_within(blocking::consumer& c, std::chrono::milliseconds limit = 5000ms) {
  auto m = c.next(limit);
  REQUIRE(m.has_value());
  return std::move(*m);
}

}  // namespace

TEST_CASE("blocking basic.get: nullopt on an empty queue; message fields and message_count") {
  auto conn = test::open_blocking();
  CHECK(conn.is_open());
  CHECK(conn.frame_max() > 0);
  CHECK(conn.heartbeat() == 60);
  CHECK(conn.server_properties().find("product") != nullptr);
  auto ch = conn.open_channel();
  CHECK(ch.id() >= 1);
  auto q = ch.queue_declare("", {.exclusive = true});
  CHECK_FALSE(ch.get(q.queue).has_value());

  test::fill(ch, q.queue, 3);
  auto m0 = ch.get(q.queue);
  REQUIRE(m0.has_value());
  CHECK(m0->body == "m0");
  CHECK(m0->message_count == 2);
  CHECK(m0->exchange == "");
  CHECK(m0->routing_key == q.queue);
  CHECK(m0->consumer_tag.empty());
  CHECK_FALSE(m0->redelivered);
  CHECK(m0->delivery_tag == 1);
  auto m1 = ch.get(q.queue);
  REQUIRE(m1.has_value());
  CHECK(m1->body == "m1");
  CHECK(m1->message_count == 1);

  ch.reject(m0->delivery_tag, true);
  ch.ack(m1->delivery_tag);
  auto again = ch.get(q.queue, true);
  REQUIRE(again.has_value());
  CHECK(again->body == "m0");
  CHECK(again->redelivered);
  CHECK(again->delivery_tag == 3);
  auto m2 = ch.get(q.queue, true);
  REQUIRE(m2.has_value());
  CHECK(m2->body == "m2");
  CHECK(m2->message_count == 0);
  CHECK_FALSE(ch.get(q.queue, true).has_value());
  CHECK(test::ready(ch, q.queue) == 0);
  conn.close();
  CHECK_FALSE(conn.is_open());
}

TEST_CASE("blocking basic.consume: deliveries in order with tag, exchange and routing key") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto pub = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  const std::string tag = test::unique_name("tag");
  auto cons = ch.consume(q.queue, {.consumer_tag = tag});
  CHECK(cons.tag() == tag);
  test::fill(pub, q.queue, 5);
  for (int i = 0; i < 5; ++i) {
    auto m = next_within(cons);
    CHECK(m.body == "m" + std::to_string(i));
    CHECK(m.consumer_tag == tag);
    CHECK(m.delivery_tag == static_cast<std::uint64_t>(i + 1));
    CHECK(m.routing_key == q.queue);
    CHECK(m.exchange == "");
    CHECK_FALSE(m.redelivered);
    ch.ack(m.delivery_tag);
  }
  CHECK(test::ready(pub, q.queue) == 0);

  // next(message&) reuses one message.
  test::fill(pub, q.queue, 2, "r");
  message m;
  REQUIRE(cons.next(m, 5s));
  CHECK(m.body == "r0");
  REQUIRE(cons.next(m, 5s));
  CHECK(m.body == "r1");
  ch.ack(m.delivery_tag, true);

  auto cons2 = ch.consume(q.queue);
  CHECK(cons2.tag().rfind("amq.ctag-", 0) == 0);
}

TEST_CASE("blocking basic.qos: prefetch_count bounds unacked deliveries per consumer") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto pub = conn.open_channel();
  auto q = pub.queue_declare("", {.exclusive = true});
  ch.qos({.prefetch_count = 2});
  auto cons = ch.consume(q.queue);
  test::fill(pub, q.queue, 5);
  CHECK(test::eventually([&] { return cons.buffered() == 2; }));
  CHECK(test::ready(pub, q.queue) == 3);
  auto a = next_within(cons);
  auto b = next_within(cons);
  CHECK(a.body == "m0");
  CHECK(b.body == "m1");
  std::this_thread::sleep_for(100ms);
  CHECK(cons.buffered() == 0);
  ch.ack(b.delivery_tag, true);
  auto c = next_within(cons);
  auto d = next_within(cons);
  CHECK(c.body == "m2");
  CHECK(d.body == "m3");
  ch.ack(d.delivery_tag, true);
  auto e = next_within(cons);
  CHECK(e.body == "m4");
  ch.ack(e.delivery_tag);
  CHECK(test::ready(pub, q.queue) == 0);
}

TEST_CASE("blocking basic.cancel: the stream ends after what was buffered") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto pub = conn.open_channel();
  auto q = pub.queue_declare("", {.exclusive = true});
  auto cons = ch.consume(q.queue, {.no_ack = true});
  test::fill(pub, q.queue, 2);
  CHECK(test::eventually([&] { return cons.buffered() == 2; }));
  cons.cancel();
  CHECK(pub.queue_declare(q.queue, {.passive = true}).consumer_count == 0);
  test::fill(pub, q.queue, 1, "after-cancel");
  auto a = cons.next(1s);
  auto b = cons.next(1s);
  auto end = cons.next(1s);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(a->body == "m0");
  CHECK(b->body == "m1");
  CHECK_FALSE(end.has_value());
  CHECK_FALSE(cons.end_reason());
  CHECK(test::ready(pub, q.queue) == 1);
}

TEST_CASE("blocking: a consumer handle dropped unread stops the broker delivering to it") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto pub = conn.open_channel();
  auto q = pub.queue_declare("", {.exclusive = true});
  {
    auto cons = ch.consume(q.queue);
    test::fill(pub, q.queue, 2);
    CHECK(test::eventually([&] { return cons.buffered() == 2; }));
  }
  CHECK(test::eventually(
      [&] { return pub.queue_declare(q.queue, {.passive = true}).consumer_count == 0; }));
  CHECK(test::eventually([&] { return test::ready(pub, q.queue) == 2; }));
  auto m = pub.get(q.queue, true);
  REQUIRE(m.has_value());
  CHECK(m->body == "m0");
  CHECK(m->redelivered);
  CHECK(ch.is_open());
}

TEST_CASE("blocking: deleting the queue ends a consumer with consumer_cancelled") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto admin = conn.open_channel();
  const std::string name = test::unique_name("server-cancel");
  admin.queue_declare(name, {.exclusive = true});
  auto cons = ch.consume(name);
  std::optional<message> got{message{}};
  std::thread waiter([&] { got = cons.next(5s); });
  std::this_thread::sleep_for(50ms);
  CHECK(admin.queue_delete(name) == 0);
  waiter.join();
  CHECK_FALSE(got.has_value());
  CHECK(cons.end_reason().code == errc::consumer_cancelled);
  CHECK(ch.is_open());
}

TEST_CASE("blocking basic.ack multiple; unacked deliveries come back on channel close") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto pub = conn.open_channel();
  auto q = pub.queue_declare("", {.exclusive = true});
  auto cons = ch.consume(q.queue);
  test::fill(pub, q.queue, 4);
  std::vector<message> got;
  for (int i = 0; i < 4; ++i) got.push_back(next_within(cons));
  ch.ack(got[2].delivery_tag, true);
  ch.close();
  CHECK_FALSE(ch.is_open());
  auto back = pub.get(q.queue, true);
  REQUIRE(back.has_value());
  CHECK(back->body == "m3");
  CHECK(back->redelivered);
  CHECK_FALSE(pub.get(q.queue, true).has_value());
  // Acking on a closed channel fails.
  std::error_code ec;
  ch.ack(1, false, ec);
  CHECK(ec == errc::channel_closed);
  CHECK_THROWS_AS(ch.ack(1), error);
}

TEST_CASE("blocking basic.nack and basic.reject: multiple, requeue, drop") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  test::fill(ch, q.queue, 4);
  std::vector<message> got;
  for (int i = 0; i < 4; ++i) {
    auto m = ch.get(q.queue);
    REQUIRE(m.has_value());
    got.push_back(std::move(*m));
  }
  ch.nack(got[1].delivery_tag, true, true);
  ch.nack(got[2].delivery_tag, false, false);
  ch.reject(got[3].delivery_tag, true);
  std::vector<std::string> bodies;
  while (auto m = ch.get(q.queue, true)) {
    CHECK(m->redelivered);
    bodies.push_back(m->body);
  }
  CHECK(bodies == std::vector<std::string>{"m0", "m1", "m3"});
  test::fill(ch, q.queue, 1, "x");
  auto x = ch.get(q.queue);
  REQUIRE(x.has_value());
  ch.reject(x->delivery_tag, false);
  CHECK(test::ready(ch, q.queue) == 0);
}

TEST_CASE("blocking basic.recover: unacked deliveries come again, marked redelivered") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto pub = conn.open_channel();
  auto q = pub.queue_declare("", {.exclusive = true});
  auto cons = ch.consume(q.queue);
  test::fill(pub, q.queue, 2);
  auto a = next_within(cons);
  auto b = next_within(cons);
  CHECK_FALSE(a.redelivered);
  ch.recover(true);
  auto a2 = next_within(cons);
  auto b2 = next_within(cons);
  CHECK(a2.body == "m0");
  CHECK(b2.body == "m1");
  CHECK(a2.redelivered);
  CHECK(b2.redelivered);
  ch.ack(b2.delivery_tag, true);
  CHECK(test::eventually([&] { return test::ready(pub, q.queue) == 0; }));
}

TEST_CASE("blocking channel.flow: the broker acknowledges flow changes") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  // RabbitMQ does not support flow(false) from the client: 540 closes the
  // connection. flow(true) is acknowledged.
  CHECK(ch.flow(true));
  CHECK(ch.is_open());
}
