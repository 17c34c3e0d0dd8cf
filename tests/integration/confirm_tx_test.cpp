// Publisher confirms and transactions against the broker.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

asio::awaitable<std::uint32_t> ready(channel& ch, const std::string& queue) {
  auto q = co_await ch.queue_declare(queue, {.passive = true});
  co_return q.message_count;
}

}  // namespace

TEST_CASE("confirms: confirm_select, then each publish is acked with its sequence number") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    // Outside confirm mode a publish is only "sent".
    CHECK_FALSE(ch.in_confirm_mode());
    const auto plain = co_await ch.publish("", q.queue, "unconfirmed");
    CHECK(plain.status == publish_status::sent);
    CHECK(plain.sequence == 0);

    co_await ch.confirm_select();
    CHECK(ch.in_confirm_mode());
    co_await ch.confirm_select();  // again: harmless
    for (std::uint64_t i = 1; i <= 5; ++i) {
      const std::string body = "confirmed-" + std::to_string(i);
      const auto out = co_await ch.publish("", q.queue, body);
      CHECK(out.status == publish_status::acked);
      CHECK(out.sequence == i);
    }
    CHECK(ch.unconfirmed() == 0);
    const std::uint32_t n = co_await ready(ch, q.queue);
    CHECK(n == 6);
    // Unroutable without mandatory: still acked (the broker took it, and
    // dropped it).
    const auto dropped = co_await ch.publish("", "warren-no-such-queue-at-all", "x");
    CHECK(dropped.status == publish_status::acked);
    CHECK(dropped.sequence == 6);
    co_await conn.close();
  });
}

TEST_CASE("confirms: publish_pipelined with a window, then wait_for_confirms tallies") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    constexpr std::size_t window = 8;
    co_await ch.confirm_select(window);
    std::uint64_t max_unconfirmed = 0;
    for (std::uint64_t i = 1; i <= 200; ++i) {
      const std::string body = "p" + std::to_string(i);
      const std::uint64_t seq = co_await ch.publish_pipelined("", q.queue, body);
      CHECK(seq == i);
      max_unconfirmed = std::max(max_unconfirmed, ch.unconfirmed());
    }
    CHECK(max_unconfirmed <= window);
    CHECK(max_unconfirmed >= 1);
    const auto sum = co_await ch.wait_for_confirms();
    CHECK(sum.acked == 200);
    CHECK(sum.nacked == 0);
    CHECK(sum.returned == 0);
    CHECK(ch.unconfirmed() == 0);
    const std::uint32_t n = co_await ready(ch, q.queue);
    CHECK(n == 200);
    // Nothing new: the next tally is empty.
    const auto none = co_await ch.wait_for_confirms();
    CHECK(none.acked == 0);
    // Order kept: the first and last bodies.
    auto first = co_await ch.get(q.queue, true);
    REQUIRE(first.has_value());
    CHECK(first->body == "p1");
    const std::uint32_t purged = co_await ch.queue_purge(q.queue);
    CHECK(purged == 199);

    // Unbounded window: 500 at once.
    auto ch2 = co_await conn.open_channel();
    co_await ch2.confirm_select();
    for (int i = 0; i < 500; ++i) co_await ch2.publish_pipelined("", q.queue, "bulk");
    const auto sum2 = co_await ch2.wait_for_confirms();
    CHECK(sum2.acked == 500);
    const std::uint32_t n2 = co_await ready(ch2, q.queue);
    CHECK(n2 == 500);
    co_await conn.close();
  });
}

TEST_CASE("confirms: a mandatory unroutable publish comes back as returned (return, then ack)") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    co_await ch.confirm_select();
    const std::string nowhere = test::unique_name("nowhere");
    const auto out = co_await ch.publish("", nowhere, "bounce", {.mandatory = true});
    CHECK(out.status == publish_status::returned);
    CHECK(out.sequence == 1);
    CHECK(out.reply_code == 312);
    CHECK(out.reply_text == "NO_ROUTE");
    // publish() reported the return: next_return() does not get it again
    // (the first return it hands out below is a pipelined one).

    // Routable mandatory publishes are plain acks.
    const auto ok = co_await ch.publish("", q.queue, "lands", {.mandatory = true});
    CHECK(ok.status == publish_status::acked);
    CHECK(ok.sequence == 2);

    // Tallies cover every confirm since the last call, awaited ones included.
    const auto so_far = co_await ch.wait_for_confirms();
    CHECK(so_far.returned == 1);
    CHECK(so_far.acked == 1);
    // Pipelined: the tallies count the returns apart from the acks.
    co_await ch.publish_pipelined("", q.queue, "a", {.mandatory = true});
    co_await ch.publish_pipelined("", nowhere, "b", {.mandatory = true});
    co_await ch.publish_pipelined("", q.queue, "c", {.mandatory = true});
    co_await ch.publish_pipelined("", nowhere, "d", {.mandatory = true});
    const auto sum = co_await ch.wait_for_confirms();
    CHECK(sum.acked == 2);
    CHECK(sum.returned == 2);
    CHECK(sum.nacked == 0);
    auto rb = co_await with_timeout(ch.next_return(), 5s);
    auto rd = co_await with_timeout(ch.next_return(), 5s);
    CHECK(rb.body == "b");
    CHECK(rd.body == "d");
    co_await conn.close();
  });
}

TEST_CASE("confirms: the broker nacks what a full reject-publish queue refuses") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    field_table args;
    args.add("x-max-length", std::int32_t{1}).add("x-overflow", "reject-publish");
    const std::string name = test::unique_name("reject-publish");
    co_await ch.queue_declare(name, {.exclusive = true, .arguments = &args});
    co_await ch.confirm_select();
    const auto first = co_await ch.publish("", name, "fits");
    CHECK(first.status == publish_status::acked);
    const auto second = co_await ch.publish("", name, "overflows");
    CHECK(second.status == publish_status::nacked);
    CHECK(second.sequence == 2);
    const auto so_far = co_await ch.wait_for_confirms();
    CHECK(so_far.acked == 1);
    CHECK(so_far.nacked == 1);
    for (int i = 0; i < 3; ++i) co_await ch.publish_pipelined("", name, "more");
    const auto sum = co_await ch.wait_for_confirms();
    CHECK(sum.nacked == 3);
    CHECK(sum.acked == 0);
    auto m = co_await ch.get(name, true);
    REQUIRE(m.has_value());
    CHECK(m->body == "fits");
    co_await conn.close();
  });
}

TEST_CASE("confirms: wait_for_confirms outside confirm mode is refused") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto e = co_await test::error_of(ch.wait_for_confirms());
    CHECK(e.code == errc::not_in_confirm_mode);
    CHECK(ch.is_open());
    co_await conn.close();
  });
}

TEST_CASE("tx: commit delivers, rollback leaves nothing behind") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto observer = co_await conn.open_channel();
    auto q = co_await observer.queue_declare("", {.exclusive = true});
    co_await ch.tx_select();
    co_await ch.publish("", q.queue, "t1");
    co_await ch.publish("", q.queue, "t2");
    // Held back until the commit; tx.commit-ok comes once the queue has them.
    std::uint32_t n = co_await ready(observer, q.queue);
    CHECK(n == 0);
    co_await ch.tx_commit();
    n = co_await ready(observer, q.queue);
    CHECK(n == 2);

    co_await ch.publish("", q.queue, "rolled back 1");
    co_await ch.publish("", q.queue, "rolled back 2");
    co_await ch.tx_rollback();
    n = co_await ready(observer, q.queue);
    CHECK(n == 2);
    // Acks are transactional too: a rolled-back ack leaves the message unacked.
    auto m = co_await ch.get(q.queue);
    REQUIRE(m.has_value());
    CHECK(m->body == "t1");
    ch.ack(m->delivery_tag);
    co_await ch.tx_rollback();
    co_await ch.close();  // the unacked t1 goes back to the queue
    n = co_await ready(observer, q.queue);
    CHECK(n == 2);
    auto again = co_await observer.get(q.queue, true);
    REQUIRE(again.has_value());
    CHECK(again->body == "t1");
    CHECK(again->redelivered);

    // A committed ack sticks.
    auto ch2 = co_await conn.open_channel();
    co_await ch2.tx_select();
    auto m2 = co_await ch2.get(q.queue);
    REQUIRE(m2.has_value());
    CHECK(m2->body == "t2");
    ch2.ack(m2->delivery_tag);
    co_await ch2.tx_commit();
    co_await ch2.close();
    n = co_await ready(observer, q.queue);
    CHECK(n == 0);
    co_await conn.close();
  });
}

TEST_CASE("tx and confirms do not mix: 406 from the broker") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    co_await ch.tx_select();
    auto e = co_await test::error_of(ch.confirm_select());
    CHECK(e.reply_code() == 406);
    CHECK(e.class_id == 85);
    CHECK(e.method_id == 10);
    auto ch2 = co_await conn.open_channel();
    co_await ch2.confirm_select();
    auto e2 = co_await test::error_of(ch2.tx_select());
    CHECK(e2.reply_code() == 406);
    CHECK(e2.class_id == 90);
    // tx.commit without tx.select is a 406 as well.
    auto ch3 = co_await conn.open_channel();
    auto e3 = co_await test::error_of(ch3.tx_commit());
    CHECK(e3.reply_code() == 406);
    CHECK(conn.is_open());
    co_await conn.close();
  });
}
