// exchange.declare / delete / bind / unbind against the broker, with routing
// checked end to end.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

// Messages ready in `queue`, asked with a passive declare.
asio::awaitable<std::uint32_t> ready(channel& ch, const std::string& queue) {
  auto q = co_await ch.queue_declare(queue, {.passive = true});
  co_return q.message_count;
}

// Every message in `queue`, fetched with basic.get (no_ack), bodies in order.
asio::awaitable<std::vector<std::string>> drain(channel& ch, const std::string& queue) {
  std::vector<std::string> bodies;
  for (;;) {
    auto m = co_await ch.get(queue, true);
    if (!m) break;
    bodies.push_back(m->body);
  }
  co_return bodies;
}

asio::awaitable<std::string> temp_queue(channel& ch) {
  auto q = co_await ch.queue_declare("", {.exclusive = true});
  co_return q.queue;
}

}  // namespace

TEST_CASE("exchange.declare: every type routes as it should; passive finds it") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string direct = test::unique_name("direct");
    const std::string fanout = test::unique_name("fanout");
    const std::string topic = test::unique_name("topic");
    const std::string headers = test::unique_name("headers");
    co_await ch.exchange_declare(direct, {.type = "direct", .auto_delete = true});
    co_await ch.exchange_declare(fanout, {.type = "fanout", .auto_delete = true});
    co_await ch.exchange_declare(topic, {.type = "topic", .auto_delete = true});
    co_await ch.exchange_declare(headers, {.type = "headers", .auto_delete = true});
    // Passive declares of what exists succeed, whatever type they name.
    co_await ch.exchange_declare(direct, {.passive = true});
    co_await ch.exchange_declare(topic, {.type = "fanout", .passive = true});
    // The same declaration again is fine.
    co_await ch.exchange_declare(fanout, {.type = "fanout", .auto_delete = true});

    const std::string q1 = co_await temp_queue(ch);
    const std::string q2 = co_await temp_queue(ch);
    co_await ch.queue_bind(q1, direct, "red");
    co_await ch.queue_bind(q2, direct, "green");
    co_await ch.queue_bind(q1, fanout, "ignored");
    co_await ch.queue_bind(q2, fanout, "");
    co_await ch.queue_bind(q1, topic, "stock.*.nyse");
    co_await ch.queue_bind(q2, topic, "stock.#");
    field_table match;
    match.add("x-match", "all").add("color", "red");
    co_await ch.queue_bind(q1, headers, "", {.arguments = &match});

    co_await test::publish_settled(ch, direct, "red", "d-red");
    co_await test::publish_settled(ch, direct, "green", "d-green");
    co_await test::publish_settled(ch, direct, "blue", "d-blue");
    co_await test::publish_settled(ch, fanout, "whatever", "f");
    co_await test::publish_settled(ch, topic, "stock.ibm.nyse", "t-ibm-nyse");
    co_await test::publish_settled(ch, topic, "stock.ibm.lse", "t-ibm-lse");
    co_await test::publish_settled(ch, topic, "bond.x.nyse", "t-bond");
    basic_properties red;
    red.headers.emplace().add("color", "red").add("size", std::int32_t{3});
    basic_properties blue;
    blue.headers.emplace().add("color", "blue");
    co_await test::publish_settled(ch, headers, "", "h-red", red);
    co_await test::publish_settled(ch, headers, "", "h-blue", blue);

    const auto got1 = co_await drain(ch, q1);
    const auto got2 = co_await drain(ch, q2);
    const std::vector<std::string> want1{"d-red", "f", "t-ibm-nyse", "h-red"};
    const std::vector<std::string> want2{"d-green", "f", "t-ibm-nyse", "t-ibm-lse"};
    CHECK(got1 == want1);
    CHECK(got2 == want2);

    for (const auto* x : {&direct, &fanout, &topic, &headers}) co_await ch.exchange_delete(*x);
    co_await conn.close();
  });
}

TEST_CASE("exchange.declare: durable, auto_delete and arguments (alternate-exchange)") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();

    // durable: survives in the broker's definitions until deleted; a
    // redeclare that disagrees is refused with 406.
    const std::string durable = test::unique_name("durable");
    co_await ch.exchange_declare(durable, {.type = "fanout", .durable = true});
    auto listed =
        test::rabbitmqctl("-q list_exchanges --no-table-headers name durable auto_delete internal");
    CHECK(listed.output.find(durable + "\ttrue\tfalse\tfalse") != std::string::npos);
    auto e = co_await test::error_of(ch.exchange_declare(durable, {.type = "fanout"}));
    CHECK(e.reply_code() == 406);
    CHECK(e.text.find("durable") != std::string::npos);
    CHECK(e.class_id == 40);
    CHECK(e.method_id == 10);
    CHECK_FALSE(ch.is_open());
    ch = co_await conn.open_channel();
    co_await ch.exchange_delete(durable);
    auto gone = co_await test::error_of(ch.exchange_declare(durable, {.passive = true}));
    CHECK(gone.reply_code() == 404);
    ch = co_await conn.open_channel();

    // auto_delete: deleted when its last binding goes.
    const std::string ad = test::unique_name("auto-delete");
    co_await ch.exchange_declare(ad, {.type = "direct", .auto_delete = true});
    const std::string q = co_await temp_queue(ch);
    co_await ch.queue_bind(q, ad, "k");
    co_await ch.exchange_declare(ad, {.passive = true});
    co_await ch.queue_unbind(q, ad, "k");
    auto e2 = co_await test::error_of(ch.exchange_declare(ad, {.passive = true}));
    CHECK(e2.reply_code() == 404);
    ch = co_await conn.open_channel();

    // arguments: an alternate exchange receives what the main one cannot route.
    const std::string main_x = test::unique_name("main");
    const std::string alt_x = test::unique_name("alternate");
    co_await ch.exchange_declare(alt_x, {.type = "fanout"});
    field_table args;
    args.add("alternate-exchange", alt_x);
    co_await ch.exchange_declare(main_x, {.type = "direct", .arguments = &args});
    const std::string routed = co_await temp_queue(ch);
    const std::string fallback = co_await temp_queue(ch);
    co_await ch.queue_bind(routed, main_x, "known");
    co_await ch.queue_bind(fallback, alt_x, "");
    co_await test::publish_settled(ch, main_x, "known", "to-routed");
    co_await test::publish_settled(ch, main_x, "unknown", "to-fallback");
    const auto got_routed = co_await drain(ch, routed);
    const auto got_fallback = co_await drain(ch, fallback);
    CHECK(got_routed == std::vector<std::string>{"to-routed"});
    CHECK(got_fallback == std::vector<std::string>{"to-fallback"});
    // Redeclaring without the argument is inequivalent.
    auto e3 = co_await test::error_of(ch.exchange_declare(main_x, {.type = "direct"}));
    CHECK(e3.reply_code() == 406);
    ch = co_await conn.open_channel();
    co_await ch.exchange_delete(main_x);
    co_await ch.exchange_delete(alt_x);
    co_await conn.close();
  });
}

TEST_CASE("exchange.delete: if_unused refuses an exchange with bindings (406)") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string x = test::unique_name("in-use");
    co_await ch.exchange_declare(x, {.type = "direct"});
    const std::string q = co_await temp_queue(ch);
    co_await ch.queue_bind(q, x, "k");

    // RabbitMQ 3.10 checks if_unused: an exchange that is the source of a
    // binding is "in use" and the delete fails with 406 PRECONDITION_FAILED.
    auto e = co_await test::error_of(ch.exchange_delete(x, {.if_unused = true}));
    CHECK(e.reply_code() == 406);
    CHECK(e.text.find("in use") != std::string::npos);
    CHECK(e.class_id == 40);
    CHECK(e.method_id == 20);
    CHECK_FALSE(ch.is_open());

    ch = co_await conn.open_channel();
    co_await ch.exchange_declare(x, {.passive = true});  // still there
    co_await ch.queue_unbind(q, x, "k");
    co_await ch.exchange_delete(x, {.if_unused = true});
    auto e2 = co_await test::error_of(ch.exchange_declare(x, {.passive = true}));
    CHECK(e2.reply_code() == 404);

    // Deleting an exchange that does not exist is not an error in RabbitMQ 3.10.
    ch = co_await conn.open_channel();
    co_await ch.exchange_delete(x);
    CHECK(ch.is_open());

    // no_wait: no reply, the exchange is gone all the same.
    const std::string y = test::unique_name("no-wait");
    co_await ch.exchange_declare(y, {.type = "fanout", .no_wait = true});
    co_await ch.exchange_declare(y, {.passive = true});
    co_await ch.exchange_delete(y, {.no_wait = true});
    auto e3 = co_await test::error_of(ch.exchange_declare(y, {.passive = true}));
    CHECK(e3.reply_code() == 404);
    co_await conn.close();
  });
}

TEST_CASE("exchange-to-exchange: source routes to destination, never the other way") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string source = test::unique_name("e2e-source");
    const std::string destination = test::unique_name("e2e-destination");
    co_await ch.exchange_declare(source, {.type = "direct"});
    co_await ch.exchange_declare(destination, {.type = "direct"});
    const std::string on_source = co_await temp_queue(ch);
    const std::string on_destination = co_await temp_queue(ch);
    co_await ch.queue_bind(on_source, source, "key");
    co_await ch.queue_bind(on_destination, destination, "key");
    co_await ch.exchange_bind(destination, source, "key");

    co_await test::publish_settled(ch, source, "key", "via-source");
    co_await test::publish_settled(ch, destination, "key", "via-destination");
    co_await test::publish_settled(ch, source, "other-key", "unrouted");
    const auto at_source = co_await drain(ch, on_source);
    const auto at_destination = co_await drain(ch, on_destination);
    CHECK(at_source == std::vector<std::string>{"via-source"});
    CHECK(at_destination == std::vector<std::string>{"via-source", "via-destination"});

    // After exchange.unbind the source no longer feeds the destination.
    co_await ch.exchange_unbind(destination, source, "key");
    co_await test::publish_settled(ch, source, "key", "after-unbind");
    const auto at_source2 = co_await drain(ch, on_source);
    const auto at_destination2 = co_await drain(ch, on_destination);
    CHECK(at_source2 == std::vector<std::string>{"after-unbind"});
    CHECK(at_destination2.empty());

    // A topic binding between exchanges, into an internal destination that
    // only the source can feed.
    const std::string topic = test::unique_name("e2e-topic");
    const std::string internal = test::unique_name("e2e-internal");
    co_await ch.exchange_declare(topic, {.type = "topic"});
    co_await ch.exchange_declare(internal, {.type = "fanout", .internal = true});
    co_await ch.exchange_bind(internal, topic, "log.*");
    const std::string logs = co_await temp_queue(ch);
    co_await ch.queue_bind(logs, internal, "");
    co_await test::publish_settled(ch, topic, "log.error", "e1");
    co_await test::publish_settled(ch, topic, "log.info.x", "skipped");
    co_await test::publish_settled(ch, topic, "log.warn", "w1");
    const auto got_logs = co_await drain(ch, logs);
    CHECK(got_logs == std::vector<std::string>{"e1", "w1"});
    const std::uint32_t left = co_await ready(ch, logs);
    CHECK(left == 0);

    // Binding to an exchange that does not exist: 404.
    const std::string missing = test::unique_name("missing");
    auto e = co_await test::error_of(ch.exchange_bind(destination, missing, "k"));
    CHECK(e.reply_code() == 404);
    CHECK(e.class_id == 40);
    CHECK(e.method_id == 30);
    ch = co_await conn.open_channel();

    for (const auto* x : {&source, &destination, &topic, &internal})
      co_await ch.exchange_delete(*x);
    co_await conn.close();
  });
}
