// basic.qos / consume / cancel / get / ack / nack / reject / recover against
// the broker: what is delivered, to whom, and what comes back.
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

// Publishes "<stem>0".."<stem>n-1" to `queue` through the default exchange,
// each confirmed by the broker.
asio::awaitable<void> fill(channel& ch, const std::string& queue, int n,
                           std::string_view stem = "m") {
  for (int i = 0; i < n; ++i) {
    const std::string body = std::string(stem) + std::to_string(i);
    auto pending = test::publish_settled(ch, "", queue, body);
    const publish_status s = co_await std::move(pending);
    REQUIRE(s == publish_status::acked);
  }
}

asio::awaitable<std::uint32_t> ready(channel& ch, const std::string& queue) {
  auto q = co_await ch.queue_declare(queue, {.passive = true});
  co_return q.message_count;
}

}  // namespace

TEST_CASE("basic.get: nullopt on an empty queue; message fields and message_count") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    auto none = co_await ch.get(q.queue);
    CHECK_FALSE(none.has_value());

    co_await fill(ch, q.queue, 3);
    auto m0 = co_await ch.get(q.queue);
    REQUIRE(m0.has_value());
    CHECK(m0->body == "m0");
    CHECK(m0->message_count == 2);
    CHECK(m0->exchange == "");
    CHECK(m0->routing_key == q.queue);
    CHECK(m0->consumer_tag.empty());
    CHECK_FALSE(m0->redelivered);
    CHECK(m0->delivery_tag == 1);
    auto m1 = co_await ch.get(q.queue);
    REQUIRE(m1.has_value());
    CHECK(m1->body == "m1");
    CHECK(m1->message_count == 1);
    CHECK(m1->delivery_tag == 2);

    // reject(requeue) puts m0 back at the head, marked redelivered.
    ch.reject(m0->delivery_tag, true);
    ch.ack(m1->delivery_tag);
    auto again = co_await ch.get(q.queue, true);
    REQUIRE(again.has_value());
    CHECK(again->body == "m0");
    CHECK(again->redelivered);
    CHECK(again->delivery_tag == 3);
    auto m2 = co_await ch.get(q.queue, true);
    REQUIRE(m2.has_value());
    CHECK(m2->body == "m2");
    CHECK(m2->message_count == 0);
    CHECK_FALSE(m2->redelivered);
    auto empty = co_await ch.get(q.queue, true);
    CHECK_FALSE(empty.has_value());
    const std::uint32_t left = co_await ready(ch, q.queue);
    CHECK(left == 0);
    co_await conn.close();
  });
}

TEST_CASE("basic.consume: deliveries in order with consumer tag, exchange and routing key") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    const std::string tag = test::unique_name("tag");
    auto cons = co_await ch.consume(q.queue, {.consumer_tag = tag});
    CHECK(cons.tag() == tag);
    co_await fill(pub, q.queue, 5);
    for (int i = 0; i < 5; ++i) {
      auto m = co_await test::next_within(cons);
      CHECK(m.body == "m" + std::to_string(i));
      CHECK(m.consumer_tag == tag);
      CHECK(m.delivery_tag == static_cast<std::uint64_t>(i + 1));
      CHECK(m.routing_key == q.queue);
      CHECK(m.exchange == "");
      CHECK_FALSE(m.redelivered);
      ch.ack(m.delivery_tag);
    }
    const std::uint32_t left = co_await ready(pub, q.queue);
    CHECK(left == 0);

    // A broker-chosen tag.
    auto cons2 = co_await ch.consume(q.queue);
    CHECK(cons2.tag().rfind("amq.ctag-", 0) == 0);
    co_await conn.close();
  });
}

TEST_CASE("consumer::next(message&) and try_next: one reused message, every field, then the end") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q = co_await pub.queue_declare("", {.exclusive = true});
    const std::string tag = test::unique_name("reuse");
    auto cons = co_await ch.consume(q.queue, {.consumer_tag = tag});
    message m;
    CHECK_FALSE(cons.try_next(m));  // nothing buffered yet
    CHECK(m.body.empty());

    // Alternate long and short bodies and properties, so that storage traded
    // with the stream never leaks one message's fields into the next.
    basic_properties with;
    with.content_type = "text/plain";
    with.correlation_id = std::string(40, 'c');
    const basic_properties without;
    for (int i = 0; i < 6; ++i) {
      const std::string body = i % 2 == 0 ? std::string(300, char('a' + i)) : "s" + std::to_string(i);
      auto pending = test::publish_settled(pub, "", q.queue, body, i % 2 == 0 ? with : without);
      const publish_status status = co_await std::move(pending);
      REQUIRE(status == publish_status::acked);
    }
    co_await test::sleep_for(100ms);
    CHECK(cons.buffered() == 6);
    for (int i = 0; i < 6; ++i) {
      if (i < 3) {
        REQUIRE(cons.try_next(m));
      } else {
        const bool got = co_await with_timeout(cons.next(m), 5000ms);
        REQUIRE(got);
      }
      CHECK(m.body == (i % 2 == 0 ? std::string(300, char('a' + i)) : "s" + std::to_string(i)));
      CHECK(m.consumer_tag == tag);
      CHECK(m.delivery_tag == static_cast<std::uint64_t>(i + 1));
      CHECK(m.routing_key == q.queue);
      CHECK(m.exchange == "");
      CHECK(m.properties == (i % 2 == 0 ? with : without));
      ch.ack(m.delivery_tag);
    }
    CHECK(cons.buffered() == 0);
    CHECK_FALSE(cons.try_next(m));

    // A delivery that arrives while next(m) waits.
    auto waiting = with_timeout(cons.next(m), 5000ms);
    auto late = [&pub, &q]() -> asio::awaitable<void> {
      co_await test::sleep_for(50ms);
      auto pending = test::publish_settled(pub, "", q.queue, "late");
      co_await std::move(pending);
    };
    asio::co_spawn(co_await asio::this_coro::executor, late(), asio::detached);
    const bool got = co_await std::move(waiting);
    CHECK(got);
    CHECK(m.body == "late");
    CHECK(m.properties == without);
    ch.ack(m.delivery_tag);

    co_await cons.cancel();
    const bool more = co_await with_timeout(cons.next(m), 1000ms);
    CHECK_FALSE(more);
    CHECK_FALSE(cons.end_reason());
    const std::uint32_t left = co_await ready(pub, q.queue);
    CHECK(left == 0);
    co_await conn.close();
  });
}

TEST_CASE("receive batching: a stream, its tail, a late message and replies all come through") {
  test::run([]() -> asio::awaitable<void> {
    // Batches far larger than the stream's tail: the tail and everything
    // after it must come through the deadline, in order, with nothing lost.
    connect_options batched;
    batched.receive_batch_bytes = 256 * 1024;
    batched.receive_batch_wait = 20ms;
    auto conn = co_await test::open_connection(batched);
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    auto pub_conn = co_await test::open_connection();
    auto pub = co_await pub_conn.open_channel();
    const std::string pad(200, 'p');
    co_await fill(pub, q.queue, 3000, pad);
    co_await ch.qos({.prefetch_count = 1000});
    auto cons = co_await ch.consume(q.queue);
    message m;
    for (int i = 0; i < 3000; ++i) {
      const bool got = co_await with_timeout(cons.next(m), 5000ms);
      REQUIRE(got);
      REQUIRE(m.body == pad + std::to_string(i));
      if ((i + 1) % 100 == 0) ch.ack(m.delivery_tag, true);
    }
    // A reply on the batching connection, then one message on its own.
    const std::uint32_t left = co_await ready(ch, q.queue);
    CHECK(left == 0);
    co_await fill(pub, q.queue, 1, "late");
    const bool got = co_await with_timeout(cons.next(m), 5000ms);
    REQUIRE(got);
    CHECK(m.body == "late0");
    ch.ack(m.delivery_tag);
    co_await cons.cancel();
    co_await conn.close();
    co_await pub_conn.close();
  });
}

TEST_CASE("receive batching: out-of-range options are refused before connecting") {
  test::run([]() -> asio::awaitable<void> {
    connect_options huge;
    huge.receive_batch_bytes = std::size_t{5} << 20;
    connect_options no_wait;
    no_wait.receive_batch_bytes = 4096;
    no_wait.receive_batch_wait = 0ms;
    for (const connect_options* o : {&huge, &no_wait}) {
      bool refused = false;
      try {
        auto pending = test::open_connection(*o);
        co_await std::move(pending);
      } catch (const error& e) {
        refused = true;
        CHECK(e.code() == std::errc::invalid_argument);
        CHECK(e.info().describe().find("receive_batch") != std::string::npos);
      }
      CHECK(refused);
    }
  });
}

TEST_CASE("basic.consume no_ack: nothing to acknowledge, nothing comes back") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    const std::string name = test::unique_name("no-ack");
    co_await pub.queue_declare(name, {.exclusive = true});
    auto cons = co_await ch.consume(name, {.no_ack = true});
    co_await fill(pub, name, 3);
    for (int i = 0; i < 3; ++i) {
      auto m = co_await test::next_within(cons);
      CHECK(m.body == "m" + std::to_string(i));
    }
    co_await ch.close();  // with acks pending, the messages would be requeued now
    const std::uint32_t left = co_await ready(pub, name);
    CHECK(left == 0);
    co_await conn.close();
  });
}

TEST_CASE("basic.consume exclusive: a second consumer is refused with 403") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto other = co_await conn.open_channel();
    const std::string name = test::unique_name("exclusive-consumer");
    co_await ch.queue_declare(name, {.exclusive = true});
    auto cons = co_await ch.consume(name, {.exclusive = true});
    auto e = co_await test::error_of(other.consume(name));
    CHECK(e.reply_code() == 403);
    CHECK(e.text.find("exclusive") != std::string::npos);
    CHECK(e.class_id == 60);
    CHECK(e.method_id == 20);
    CHECK_FALSE(other.is_open());
    CHECK(ch.is_open());
    // And an exclusive consume where a consumer exists is refused too.
    auto third = co_await conn.open_channel();
    co_await cons.cancel();
    auto plain = co_await ch.consume(name);
    auto e2 = co_await test::error_of(third.consume(name, {.exclusive = true}));
    CHECK(e2.reply_code() == 403);
    co_await conn.close();
  });
}

TEST_CASE("basic.consume arguments: x-priority sends everything to the higher priority") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch_low = co_await conn.open_channel();
    auto ch_high = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q = co_await pub.queue_declare("", {.exclusive = true});
    field_table low_args;
    low_args.add("x-priority", std::int32_t{1});
    field_table high_args;
    high_args.add("x-priority", std::int32_t{10});
    auto low = co_await ch_low.consume(q.queue, {.no_ack = true, .arguments = &low_args});
    auto high = co_await ch_high.consume(q.queue, {.no_ack = true, .arguments = &high_args});
    co_await fill(pub, q.queue, 6);
    for (int i = 0; i < 6; ++i) {
      auto m = co_await test::next_within(high);
      CHECK(m.body == "m" + std::to_string(i));
    }
    co_await test::sleep_for(100ms);
    CHECK(low.buffered() == 0);
    auto none = co_await test::error_of(with_timeout(low.next(), 100ms));
    CHECK(none.code == errc::timeout);
    co_await conn.close();
  });
}

TEST_CASE("basic.qos: prefetch_count bounds unacked deliveries per consumer") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q = co_await pub.queue_declare("", {.exclusive = true});
    co_await ch.qos({.prefetch_count = 2});
    auto cons = co_await ch.consume(q.queue);
    co_await fill(pub, q.queue, 5);
    co_await test::sleep_for(200ms);
    CHECK(cons.buffered() == 2);
    std::uint32_t ready_now = co_await ready(pub, q.queue);
    CHECK(ready_now == 3);

    auto a = co_await test::next_within(cons);
    auto b = co_await test::next_within(cons);
    CHECK(a.body == "m0");
    CHECK(b.body == "m1");
    co_await test::sleep_for(100ms);
    CHECK(cons.buffered() == 0);   // still two unacked: nothing more comes
    ch.ack(b.delivery_tag, true);  // acks both
    auto c = co_await test::next_within(cons);
    auto d = co_await test::next_within(cons);
    CHECK(c.body == "m2");
    CHECK(d.body == "m3");
    ch.ack(c.delivery_tag);
    auto e = co_await test::next_within(cons);
    CHECK(e.body == "m4");
    ch.ack(e.delivery_tag, true);
    ready_now = co_await ready(pub, q.queue);
    CHECK(ready_now == 0);
    co_await conn.close();
  });
}

TEST_CASE("basic.qos global: the limit is shared by every consumer of the channel") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q1 = co_await pub.queue_declare("", {.exclusive = true});
    auto q2 = co_await pub.queue_declare("", {.exclusive = true});
    co_await ch.qos({.prefetch_count = 3, .global = true});
    auto c1 = co_await ch.consume(q1.queue);
    auto c2 = co_await ch.consume(q2.queue);
    co_await fill(pub, q1.queue, 4);
    co_await fill(pub, q2.queue, 4);
    co_await test::sleep_for(200ms);
    CHECK(c1.buffered() + c2.buffered() == 3);
    const std::uint32_t r1 = co_await ready(pub, q1.queue);
    const std::uint32_t r2 = co_await ready(pub, q2.queue);
    CHECK(r1 + r2 == 5);

    // Per consumer (global = false) on a fresh channel: 2 each.
    auto ch2 = co_await conn.open_channel();
    co_await ch.close();  // all 3 unacked go back
    co_await ch2.qos({.prefetch_count = 2});
    auto d1 = co_await ch2.consume(q1.queue);
    auto d2 = co_await ch2.consume(q2.queue);
    co_await test::sleep_for(200ms);
    CHECK(d1.buffered() == 2);
    CHECK(d2.buffered() == 2);
    co_await conn.close();
  });
}

TEST_CASE("basic.cancel: the stream ends after what was buffered; later messages stay queued") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q = co_await pub.queue_declare("", {.exclusive = true});
    auto cons = co_await ch.consume(q.queue, {.no_ack = true});
    co_await fill(pub, q.queue, 2);
    co_await test::sleep_for(100ms);
    CHECK(cons.buffered() == 2);
    co_await cons.cancel();
    auto consumers = co_await pub.queue_declare(q.queue, {.passive = true});
    CHECK(consumers.consumer_count == 0);
    co_await fill(pub, q.queue, 1, "after-cancel");

    auto a = co_await with_timeout(cons.next(), 1s);
    auto b = co_await with_timeout(cons.next(), 1s);
    auto end = co_await with_timeout(cons.next(), 1s);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    CHECK(a->body == "m0");
    CHECK(b->body == "m1");
    CHECK_FALSE(end.has_value());
    CHECK_FALSE(cons.end_reason());
    const std::uint32_t left = co_await ready(pub, q.queue);
    CHECK(left == 1);
    CHECK(ch.is_open());
    co_await conn.close();
  });
}

TEST_CASE("a consumer handle dropped unread: the broker stops delivering to it") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q = co_await pub.queue_declare("", {.exclusive = true});
    {
      auto cons = co_await ch.consume(q.queue);
      co_await fill(pub, q.queue, 2);
      co_await test::sleep_for(100ms);
      CHECK(cons.buffered() == 2);
    }
    // Unread (and unacked) deliveries go back; nothing new is delivered.
    co_await test::sleep_for(200ms);
    auto after = co_await pub.queue_declare(q.queue, {.passive = true});
    CHECK(after.consumer_count == 0);
    co_await fill(pub, q.queue, 1, "later");
    const std::uint32_t n = co_await ready(pub, q.queue);
    CHECK(n == 3);
    auto m = co_await pub.get(q.queue, true);
    REQUIRE(m.has_value());
    CHECK(m->body == "m0");
    CHECK(m->redelivered);
    CHECK(ch.is_open());
    co_await conn.close();
  });
}

TEST_CASE("server-sent basic.cancel: deleting the queue ends the stream with consumer_cancelled") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto admin = co_await conn.open_channel();
    const std::string name = test::unique_name("server-cancel");
    co_await admin.queue_declare(name, {.exclusive = true});
    auto cons = co_await ch.consume(name);
    auto ex = co_await asio::this_coro::executor;
    auto waiting = test::start(ex, cons.next());
    co_await test::sleep_for(50ms);
    CHECK_FALSE(waiting->done);

    const std::uint32_t n = co_await admin.queue_delete(name);
    CHECK(n == 0);
    const bool done = co_await test::wait_done(*waiting, 5s);
    REQUIRE(done);
    CHECK_FALSE(waiting->error.code);  // next() returned std::nullopt
    CHECK(cons.end_reason().code == errc::consumer_cancelled);
    auto after = co_await with_timeout(cons.next(), 1s);
    CHECK_FALSE(after.has_value());
    // Only the consumer ended: the channel goes on.
    CHECK(ch.is_open());
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    CHECK_FALSE(q.queue.empty());
    co_await conn.close();
  });
}

TEST_CASE("basic.ack multiple; unacked deliveries are requeued as redelivered on channel close") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q = co_await pub.queue_declare("", {.exclusive = true});
    auto cons = co_await ch.consume(q.queue);
    co_await fill(pub, q.queue, 4);
    std::vector<message> got;
    for (int i = 0; i < 4; ++i) {
      auto m = co_await test::next_within(cons);
      got.push_back(std::move(m));
    }
    ch.ack(got[2].delivery_tag, true);  // m0, m1, m2
    co_await ch.close();                // m3 goes back
    auto back = co_await pub.get(q.queue, true);
    REQUIRE(back.has_value());
    CHECK(back->body == "m3");
    CHECK(back->redelivered);
    auto none = co_await pub.get(q.queue, true);
    CHECK_FALSE(none.has_value());
    co_await conn.close();
  });
}

TEST_CASE("basic.nack: multiple and requeue") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    co_await fill(ch, q.queue, 4);
    std::vector<message> got;
    for (int i = 0; i < 4; ++i) {
      auto m = co_await ch.get(q.queue);
      REQUIRE(m.has_value());
      got.push_back(std::move(*m));
    }
    ch.nack(got[1].delivery_tag, true, true);    // m0, m1 back to the queue
    ch.nack(got[2].delivery_tag, false, false);  // m2 dropped
    ch.nack(got[3].delivery_tag, false, true);   // m3 back
    std::vector<std::string> bodies;
    for (;;) {
      auto m = co_await ch.get(q.queue, true);
      if (!m) break;
      CHECK(m->redelivered);
      bodies.push_back(m->body);
    }
    CHECK(bodies == std::vector<std::string>{"m0", "m1", "m3"});

    // nack multiple without requeue drops them all.
    co_await fill(ch, q.queue, 3, "d");
    std::uint64_t last = 0;
    for (int i = 0; i < 3; ++i) {
      auto m = co_await ch.get(q.queue);
      REQUIRE(m.has_value());
      last = m->delivery_tag;
    }
    ch.nack(last, true, false);
    const std::uint32_t left = co_await ready(ch, q.queue);
    CHECK(left == 0);
    auto none = co_await ch.get(q.queue);
    CHECK_FALSE(none.has_value());
    co_await conn.close();
  });
}

TEST_CASE("basic.reject: requeue redelivers, no requeue drops") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q = co_await pub.queue_declare("", {.exclusive = true});
    auto cons = co_await ch.consume(q.queue);
    co_await fill(pub, q.queue, 2);
    auto a = co_await test::next_within(cons);
    auto b = co_await test::next_within(cons);
    CHECK(a.body == "m0");
    CHECK(b.body == "m1");
    ch.reject(a.delivery_tag, false);
    ch.reject(b.delivery_tag, true);
    auto again = co_await test::next_within(cons);
    CHECK(again.body == "m1");
    CHECK(again.redelivered);
    CHECK(again.delivery_tag > b.delivery_tag);
    ch.ack(again.delivery_tag);
    auto none = co_await test::error_of(with_timeout(cons.next(), 200ms));
    CHECK(none.code == errc::timeout);
    const std::uint32_t left = co_await ready(pub, q.queue);
    CHECK(left == 0);
    co_await conn.close();
  });
}

TEST_CASE("basic.recover: unacked deliveries come again, marked redelivered") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto pub = co_await conn.open_channel();
    auto q = co_await pub.queue_declare("", {.exclusive = true});
    auto cons = co_await ch.consume(q.queue);
    co_await fill(pub, q.queue, 2);
    auto a = co_await test::next_within(cons);
    auto b = co_await test::next_within(cons);
    CHECK_FALSE(a.redelivered);
    co_await ch.recover(true);
    auto a2 = co_await test::next_within(cons);
    auto b2 = co_await test::next_within(cons);
    CHECK(a2.body == "m0");
    CHECK(b2.body == "m1");
    CHECK(a2.redelivered);
    CHECK(b2.redelivered);
    CHECK(a2.delivery_tag > b.delivery_tag);
    ch.ack(b2.delivery_tag, true);
    const std::uint32_t left = co_await ready(pub, q.queue);
    CHECK(left == 0);
    co_await conn.close();
  });
}

TEST_CASE("channel.flow: the broker acknowledges flow changes") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    // RabbitMQ 3.10 accepts channel.flow active=true; active=false is a
    // 540 NOT_IMPLEMENTED connection error (error_test.cpp).
    const bool active = co_await ch.flow(true);
    CHECK(active);
    co_await conn.close();
  });
}

// A consumer holding `prefetch` unread deliveries is the normal state of a
// consumer the user has not read yet: the broker never sends more, and the
// rest of the connection (other channels, confirms overtaken by deliveries)
// must keep working. Reading pauses only for a delivery that does not fit.
TEST_CASE("a consumer holding its whole prefetch unread does not stall other channels") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto other = co_await conn.open_channel();
    auto q = co_await other.queue_declare("", {.exclusive = true});
    auto cons = co_await ch.consume(q.queue, {.prefetch = 2});
    // Published from another connection, whose acks cannot be held up.
    auto publisher = co_await test::open_connection();
    auto pub = co_await publisher.open_channel();
    co_await fill(pub, q.queue, 2);
    co_await test::sleep_for(200ms);  // both deliveries are in the stream now
    CHECK(cons.buffered() == 2);
    auto ex = co_await asio::this_coro::executor;
    auto declare = test::start(ex, other.queue_declare(q.queue, {.passive = true}));
    const bool done = co_await test::wait_done(*declare, 3s);
    CHECK_MESSAGE(done, "a passive declare on another channel stalled while the stream was full");
    // Reading the stream unblocks the connection.
    auto m = co_await test::next_within(cons);
    CHECK(m.body == "m0");
    const bool done_later = co_await test::wait_done(*declare, 3s);
    CHECK(done_later);
    co_await publisher.close();
    co_await conn.close();
  });
}
