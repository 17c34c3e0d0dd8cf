// What the broker refuses: channel errors close only their channel, with the
// reply code, text and failing method; connection errors close everything.
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <string>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

TEST_CASE("404: passive declare of a missing queue closes that channel only") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto bad = co_await conn.open_channel();
    auto good = co_await conn.open_channel();
    auto q = co_await good.queue_declare("", {.exclusive = true});
    auto cons = co_await good.consume(q.queue, {.no_ack = true});
    const std::string missing = test::unique_name("missing");

    auto e = co_await test::error_of(bad.queue_declare(missing, {.passive = true}));
    CHECK(e.reply_code() == 404);
    CHECK(e.code == reply_code::not_found);
    CHECK(e.class_id == 50);
    CHECK(e.method_id == 10);
    CHECK(e.text.find("NOT_FOUND") != std::string::npos);
    CHECK(e.text.find(missing) != std::string::npos);
    CHECK_FALSE(bad.is_open());
    CHECK(bad.close_reason().reply_code() == 404);
    CHECK(bad.close_reason().class_id == 50);
    // The closed channel refuses further work with the same reason.
    auto again = co_await test::error_of(bad.queue_declare("", {.exclusive = true}));
    CHECK(again.code);
    CHECK_THROWS_AS(bad.ack(1), error);
    co_await bad.close();  // nothing to do

    // Everything else carries on: the other channel, its consumer, new channels.
    CHECK(conn.is_open());
    CHECK(good.is_open());
    co_await test::publish_settled(good, "", q.queue, "still delivering");
    auto m = co_await with_timeout(cons.next(), 5s);
    REQUIRE(m.has_value());
    CHECK(m->body == "still delivering");
    auto fresh = co_await conn.open_channel();
    auto q2 = co_await fresh.queue_declare("", {.exclusive = true});
    CHECK_FALSE(q2.queue.empty());

    // basic.get and queue.purge on a missing queue: 404 too.
    auto e2 = co_await test::error_of(fresh.get(missing));
    CHECK(e2.reply_code() == 404);
    CHECK(e2.class_id == 60);
    CHECK(e2.method_id == 70);
    auto ch3 = co_await conn.open_channel();
    auto e3 = co_await test::error_of(ch3.queue_purge(missing));
    CHECK(e3.reply_code() == 404);
    CHECK(e3.method_id == 30);
    co_await conn.close();
  });
}

TEST_CASE("406: inequivalent redeclare of a queue and of an exchange") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string q = test::unique_name("inequivalent");
    co_await ch.queue_declare(q, {.exclusive = true});
    auto e = co_await test::error_of(ch.queue_declare(q, {.exclusive = true, .auto_delete = true}));
    CHECK(e.reply_code() == 406);
    CHECK(e.text.find("PRECONDITION_FAILED") != std::string::npos);
    CHECK(e.text.find("auto_delete") != std::string::npos);
    CHECK(e.class_id == 50);
    CHECK(e.method_id == 10);
    CHECK_FALSE(ch.is_open());

    ch = co_await conn.open_channel();
    const std::string x = test::unique_name("inequivalent-x");
    co_await ch.exchange_declare(x, {.type = "direct"});
    auto e2 = co_await test::error_of(ch.exchange_declare(x, {.type = "fanout"}));
    CHECK(e2.reply_code() == 406);
    CHECK(e2.text.find("type") != std::string::npos);
    CHECK(e2.class_id == 40);
    CHECK(e2.method_id == 10);
    ch = co_await conn.open_channel();
    co_await ch.exchange_delete(x);
    CHECK(conn.is_open());
    co_await conn.close();
  });
}

TEST_CASE("405: an exclusive queue used from another connection") {
  test::run([]() -> asio::awaitable<void> {
    auto owner = co_await test::open_connection();
    auto other = co_await test::open_connection();
    auto och = co_await owner.open_channel();
    const std::string name = test::unique_name("locked");
    co_await och.queue_declare(name, {.exclusive = true});

    auto ch = co_await other.open_channel();
    auto e = co_await test::error_of(ch.queue_declare(name, {.passive = true}));
    CHECK(e.reply_code() == 405);
    CHECK(e.text.find("RESOURCE_LOCKED") != std::string::npos);
    CHECK(e.class_id == 50);
    CHECK(e.method_id == 10);
    ch = co_await other.open_channel();
    auto e2 = co_await test::error_of(ch.consume(name));
    CHECK(e2.reply_code() == 405);
    CHECK(e2.class_id == 60);
    CHECK(e2.method_id == 20);
    ch = co_await other.open_channel();
    auto e3 = co_await test::error_of(ch.get(name));
    CHECK(e3.reply_code() == 405);
    // The owner is unaffected.
    co_await test::publish_settled(och, "", name, "mine");
    auto m = co_await och.get(name, true);
    REQUIRE(m.has_value());
    CHECK(m->body == "mine");
    CHECK(other.is_open());
    co_await owner.close();
    co_await other.close();
  });
}

TEST_CASE("403: publishing to an internal exchange surfaces on the next synchronous call") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto admin = co_await conn.open_channel();
    auto ch = co_await conn.open_channel();
    const std::string x = test::unique_name("internal");
    co_await admin.exchange_declare(x, {.type = "fanout", .internal = true});
    // basic.publish has no reply: it "succeeds" locally ...
    const auto out = co_await ch.publish(x, "", "not allowed");
    CHECK(out.status == publish_status::sent);
    // ... and the broker's channel.close fails the next request on the channel.
    auto e = co_await test::error_of(ch.queue_declare("", {.exclusive = true}));
    CHECK(e.reply_code() == 403);
    CHECK(e.text.find("ACCESS_REFUSED") != std::string::npos);
    CHECK(e.text.find("internal") != std::string::npos);
    CHECK(e.class_id == 60);
    CHECK(e.method_id == 40);
    CHECK_FALSE(ch.is_open());
    CHECK(ch.close_reason().reply_code() == 403);
    CHECK(ch.close_reason().method_id == 40);

    // Without a following call, close_reason() tells once the close is in.
    auto ch2 = co_await conn.open_channel();
    co_await ch2.publish(x, "", "not allowed either");
    for (int i = 0; i < 100 && ch2.is_open(); ++i) co_await test::sleep_for(10ms);
    CHECK_FALSE(ch2.is_open());
    CHECK(ch2.close_reason().reply_code() == 403);
    // A later publish on it fails at once with that reason.
    auto e2 = co_await test::error_of(ch2.publish("", "q", "x"));
    CHECK(e2.reply_code() == 403);

    // In confirm mode the failing publish itself reports the error.
    auto ch3 = co_await conn.open_channel();
    co_await ch3.confirm_select();
    auto e3 = co_await test::error_of(ch3.publish(x, "", "refused"));
    CHECK(e3.reply_code() == 403);
    CHECK(conn.is_open());
    co_await admin.exchange_delete(x);
    co_await conn.close();
  });
}

TEST_CASE("404: publishing to a missing exchange; 406: acking an unknown delivery tag") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string missing = test::unique_name("missing-x");
    co_await ch.publish(missing, "k", "lost");
    auto e = co_await test::error_of(ch.queue_declare("", {.exclusive = true}));
    CHECK(e.reply_code() == 404);
    CHECK(e.class_id == 60);
    CHECK(e.method_id == 40);

    auto ch2 = co_await conn.open_channel();
    ch2.ack(12345);
    auto e2 = co_await test::error_of(ch2.queue_declare("", {.exclusive = true}));
    CHECK(e2.reply_code() == 406);
    CHECK(e2.text.find("unknown delivery tag") != std::string::npos);
    CHECK(e2.class_id == 60);
    CHECK(e2.method_id == 80);
    CHECK(conn.is_open());
    co_await conn.close();
  });
}

TEST_CASE("hard errors: the broker closes the whole connection (immediate, reused consumer tag)") {
  test::run([]() -> asio::awaitable<void> {
    // immediate=true: RabbitMQ answers 540 NOT_IMPLEMENTED, a connection
    // error. It surfaces on the next request of the publishing channel
    // (another channel's request may still be answered first: RabbitMQ runs
    // each channel on its own).
    {
      auto conn = co_await test::open_connection();
      auto ch = co_await conn.open_channel();
      auto other = co_await conn.open_channel();
      auto q = co_await ch.queue_declare("", {.exclusive = true});
      co_await ch.publish("", q.queue, "now!", {.immediate = true});
      auto e = co_await test::error_of(ch.queue_declare("", {.exclusive = true}));
      CHECK(e.reply_code() == 540);
      CHECK(e.text.find("immediate=true") != std::string::npos);
      CHECK(e.class_id == 60);
      CHECK(e.method_id == 40);
      CHECK_FALSE(conn.is_open());
      CHECK(conn.close_reason().reply_code() == 540);
      CHECK_FALSE(ch.is_open());
      CHECK_FALSE(other.is_open());
      auto e2 = co_await test::error_of(other.queue_declare("", {.exclusive = true}));
      CHECK(e2.code);
    }
    // A consumer tag reused on one channel: 530 NOT_ALLOWED, also fatal.
    {
      auto conn = co_await test::open_connection();
      auto ch = co_await conn.open_channel();
      auto q = co_await ch.queue_declare("", {.exclusive = true});
      auto c1 = co_await ch.consume(q.queue, {.consumer_tag = "same-tag"});
      auto e = co_await test::error_of(ch.consume(q.queue, {.consumer_tag = "same-tag"}));
      CHECK(e.reply_code() == 530);
      CHECK(e.class_id == 60);
      CHECK(e.method_id == 20);
      CHECK_FALSE(conn.is_open());
      // The first consumer's stream fails with the connection.
      auto e2 = co_await test::error_of(c1.next());
      CHECK(e2.reply_code() == 530);
    }
  });
}

TEST_CASE("not implemented by RabbitMQ: 540, which closes the connection") {
  test::run([]() -> asio::awaitable<void> {
    {
      auto conn = co_await test::open_connection();
      auto ch = co_await conn.open_channel();
      auto e = co_await test::error_of(ch.qos({.prefetch_count = 1, .prefetch_size = 4096}));
      CHECK(e.reply_code() == 540);
      CHECK(e.class_id == 60);
      CHECK(e.method_id == 10);
      CHECK_FALSE(conn.is_open());
    }
    {
      auto conn = co_await test::open_connection();
      auto ch = co_await conn.open_channel();
      auto e = co_await test::error_of(ch.flow(false));
      CHECK(e.reply_code() == 540);
      CHECK(e.text.find("active=false") != std::string::npos);
      CHECK(e.class_id == 20);
      CHECK(e.method_id == 20);
      CHECK_FALSE(conn.is_open());
    }
    {
      auto conn = co_await test::open_connection();
      auto ch = co_await conn.open_channel();
      auto e = co_await test::error_of(ch.recover(false));
      CHECK(e.reply_code() == 540);
      CHECK(e.text.find("requeue=false") != std::string::npos);
      CHECK(e.class_id == 60);
      CHECK(e.method_id == 110);
      CHECK_FALSE(conn.is_open());
    }
  });
}
