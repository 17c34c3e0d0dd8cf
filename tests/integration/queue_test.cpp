// queue.declare / bind / unbind / purge / delete against the broker.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

asio::awaitable<std::vector<std::string>> drain(channel& ch, const std::string& queue) {
  std::vector<std::string> bodies;
  for (;;) {
    auto m = co_await ch.get(queue, true);
    if (!m) break;
    bodies.push_back(m->body);
  }
  co_return bodies;
}

asio::awaitable<void> publish_n(channel& ch, const std::string& queue, int n) {
  for (int i = 0; i < n; ++i) {
    const std::string body = std::to_string(i);
    co_await test::publish_settled(ch, "", queue, body);
  }
}

}  // namespace

TEST_CASE("queue.declare: name, message_count and consumer_count") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string name = test::unique_name("counts");
    auto q = co_await ch.queue_declare(name, {.exclusive = true});
    CHECK(q.queue == name);
    CHECK(q.message_count == 0);
    CHECK(q.consumer_count == 0);

    co_await publish_n(ch, name, 3);
    auto again = co_await ch.queue_declare(name, {.exclusive = true});
    CHECK(again.queue == name);
    CHECK(again.message_count == 3);
    CHECK(again.consumer_count == 0);

    auto other = co_await conn.open_channel();
    auto cons = co_await other.consume(name, {.prefetch = 1});
    auto m = co_await with_timeout(cons.next(), 5s);
    REQUIRE(m.has_value());
    CHECK(m->body == "0");
    auto passive = co_await ch.queue_declare(name, {.passive = true});
    CHECK(passive.queue == name);
    CHECK(passive.consumer_count == 1);
    // One unacked (prefetch 1), two ready.
    CHECK(passive.message_count == 2);
    co_await conn.close();
  });
}

TEST_CASE("queue.declare: an empty name gets a server-generated name") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto a = co_await ch.queue_declare("", {.exclusive = true});
    auto b = co_await ch.queue_declare();
    CHECK(a.queue.rfind("amq.gen-", 0) == 0);
    CHECK(b.queue.rfind("amq.gen-", 0) == 0);
    CHECK(a.queue != b.queue);
    co_await test::publish_settled(ch, "", a.queue, "to a generated name");
    auto m = co_await ch.get(a.queue, true);
    REQUIRE(m.has_value());
    CHECK(m->body == "to a generated name");
    const std::uint32_t n = co_await ch.queue_delete(b.queue);
    CHECK(n == 0);
    co_await conn.close();
  });
}

TEST_CASE("queue.declare: durable, exclusive and auto_delete behave as RabbitMQ defines them") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();

    // durable: listed as durable; a non-durable redeclare is refused (406).
    const std::string durable = test::unique_name("durable");
    co_await ch.queue_declare(durable, {.durable = true});
    const std::string exclusive = test::unique_name("exclusive");
    co_await ch.queue_declare(exclusive, {.exclusive = true});
    const std::string auto_del = test::unique_name("auto-delete");
    co_await ch.queue_declare(auto_del, {.auto_delete = true});
    auto listed =
        test::rabbitmqctl("-q list_queues --no-table-headers name durable exclusive auto_delete");
    CHECK(listed.output.find(durable + "\ttrue\tfalse\tfalse") != std::string::npos);
    CHECK(listed.output.find(exclusive + "\tfalse\ttrue\tfalse") != std::string::npos);
    CHECK(listed.output.find(auto_del + "\tfalse\tfalse\ttrue") != std::string::npos);

    auto e = co_await test::error_of(ch.queue_declare(durable, {.durable = false}));
    CHECK(e.reply_code() == 406);
    CHECK(e.text.find("durable") != std::string::npos);
    ch = co_await conn.open_channel();
    const std::uint32_t deleted = co_await ch.queue_delete(durable);
    CHECK(deleted == 0);

    // auto_delete: goes away when its last consumer is cancelled.
    auto cons = co_await ch.consume(auto_del);
    co_await cons.cancel();
    auto e2 = co_await test::error_of(ch.queue_declare(auto_del, {.passive = true}));
    CHECK(e2.reply_code() == 404);
    ch = co_await conn.open_channel();

    // exclusive: goes away with the connection that declared it.
    co_await conn.close();
    auto conn2 = co_await test::open_connection();
    auto ch2 = co_await conn2.open_channel();
    auto e3 = co_await test::error_of(ch2.queue_declare(exclusive, {.passive = true}));
    CHECK(e3.reply_code() == 404);
    co_await conn2.close();
  });
}

TEST_CASE("queue.declare: arguments (x-max-length drops from the head; inequivalent args 406)") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string name = test::unique_name("max-length");
    field_table args;
    args.add("x-max-length", std::int32_t{2});
    auto q = co_await ch.queue_declare(name, {.exclusive = true, .arguments = &args});
    CHECK(q.queue == name);
    co_await publish_n(ch, name, 5);
    auto again = co_await ch.queue_declare(name, {.exclusive = true, .arguments = &args});
    CHECK(again.message_count == 2);
    const auto bodies = co_await drain(ch, name);
    CHECK(bodies == std::vector<std::string>{"3", "4"});

    field_table other;
    other.add("x-max-length", std::int32_t{3});
    auto e =
        co_await test::error_of(ch.queue_declare(name, {.exclusive = true, .arguments = &other}));
    CHECK(e.reply_code() == 406);
    CHECK(e.text.find("x-max-length") != std::string::npos);
    CHECK(e.class_id == 50);
    CHECK(e.method_id == 10);

    // x-message-ttl: a message older than the TTL is gone.
    ch = co_await conn.open_channel();
    const std::string ttl = test::unique_name("ttl");
    field_table ttl_args;
    ttl_args.add("x-message-ttl", std::int32_t{50});
    co_await ch.queue_declare(ttl, {.exclusive = true, .arguments = &ttl_args});
    co_await test::publish_settled(ch, "", ttl, "short-lived");
    co_await test::sleep_for(300ms);
    auto expired = co_await ch.get(ttl, true);
    CHECK_FALSE(expired.has_value());
    co_await conn.close();
  });
}

TEST_CASE("queue.bind / queue.unbind: routing follows the bindings") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string x = test::unique_name("bind-x");
    co_await ch.exchange_declare(x, {.type = "direct", .auto_delete = true});
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    co_await ch.queue_bind(q.queue, x, "a");
    co_await ch.queue_bind(q.queue, x, "b");
    co_await test::publish_settled(ch, x, "a", "a1");
    co_await test::publish_settled(ch, x, "b", "b1");
    co_await test::publish_settled(ch, x, "c", "c1");
    co_await ch.queue_unbind(q.queue, x, "a");
    co_await test::publish_settled(ch, x, "a", "a2");
    co_await test::publish_settled(ch, x, "b", "b2");
    const auto bodies = co_await drain(ch, q.queue);
    CHECK(bodies == std::vector<std::string>{"a1", "b1", "b2"});

    // Headers exchange: the binding arguments decide, and unbind needs them too.
    const std::string hx = test::unique_name("bind-headers");
    co_await ch.exchange_declare(hx, {.type = "headers"});
    field_table any;
    any.add("x-match", "any").add("color", "red").add("shape", "square");
    co_await ch.queue_bind(q.queue, hx, "", {.arguments = &any});
    basic_properties square;
    square.headers.emplace().add("shape", "square");
    basic_properties circle;
    circle.headers.emplace().add("shape", "circle");
    co_await test::publish_settled(ch, hx, "", "square", square);
    co_await test::publish_settled(ch, hx, "", "circle", circle);
    co_await ch.queue_unbind(q.queue, hx, "", &any);
    co_await test::publish_settled(ch, hx, "", "square-after-unbind", square);
    const auto hbodies = co_await drain(ch, q.queue);
    CHECK(hbodies == std::vector<std::string>{"square"});
    co_await ch.exchange_delete(hx);

    // no_wait bind: no reply, the binding exists all the same.
    co_await ch.queue_bind(q.queue, x, "nw", {.no_wait = true});
    co_await test::publish_settled(ch, x, "nw", "no-wait");
    const auto nw = co_await drain(ch, q.queue);
    CHECK(nw == std::vector<std::string>{"no-wait"});

    // Binding a missing queue: 404 on queue.bind.
    const std::string missing = test::unique_name("missing");
    auto e = co_await test::error_of(ch.queue_bind(missing, x, "k"));
    CHECK(e.reply_code() == 404);
    CHECK(e.class_id == 50);
    CHECK(e.method_id == 20);
    co_await conn.close();
  });
}

TEST_CASE("queue.purge returns the count; queue.delete with if_unused / if_empty") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string name = test::unique_name("purge");
    co_await ch.queue_declare(name, {.exclusive = true});
    co_await publish_n(ch, name, 4);
    const std::uint32_t purged = co_await ch.queue_purge(name);
    CHECK(purged == 4);
    const std::uint32_t purged_again = co_await ch.queue_purge(name);
    CHECK(purged_again == 0);

    // if_empty with messages: 406, and the queue keeps them.
    co_await publish_n(ch, name, 3);
    auto e = co_await test::error_of(ch.queue_delete(name, {.if_empty = true}));
    CHECK(e.reply_code() == 406);
    CHECK(e.class_id == 50);
    CHECK(e.method_id == 40);
    ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare(name, {.passive = true});
    CHECK(q.message_count == 3);

    // if_unused with a consumer: 406.
    auto other = co_await conn.open_channel();
    auto cons = co_await other.consume(name, {.prefetch = 1});
    // Take the delivery out of the stream first.
    auto first = co_await with_timeout(cons.next(), 5s);
    REQUIRE(first.has_value());
    auto e2 = co_await test::error_of(ch.queue_delete(name, {.if_unused = true}));
    CHECK(e2.reply_code() == 406);
    ch = co_await conn.open_channel();
    co_await cons.cancel();
    co_await other.close();  // the unacked delivery goes back to the queue

    // Now unused and not empty: if_unused succeeds and reports the count.
    const std::uint32_t deleted = co_await ch.queue_delete(name, {.if_unused = true});
    CHECK(deleted == 3);
    auto e3 = co_await test::error_of(ch.queue_declare(name, {.passive = true}));
    CHECK(e3.reply_code() == 404);

    // if_empty on an empty queue succeeds.
    ch = co_await conn.open_channel();
    const std::string empty = test::unique_name("empty");
    co_await ch.queue_declare(empty, {.exclusive = true});
    const std::uint32_t deleted_empty =
        co_await ch.queue_delete(empty, {.if_unused = true, .if_empty = true});
    CHECK(deleted_empty == 0);
    // Deleting a queue that does not exist is not an error in RabbitMQ 3.10.
    const std::uint32_t deleted_missing = co_await ch.queue_delete(empty);
    CHECK(deleted_missing == 0);
    CHECK(ch.is_open());
    co_await conn.close();
  });
}
