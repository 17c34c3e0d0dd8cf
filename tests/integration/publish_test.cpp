// basic.publish: every property and field type through the broker and back,
// mandatory returns, and bodies of every size (split into many frames).
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

field_table every_value_type() {
  field_table nested;
  nested.add("inner-int", std::int32_t{7}).add("inner-text", "deep");
  field_table deeper;
  deeper.add("level", std::int64_t{3});
  nested.add("deeper", deeper);

  field_array array;
  array.items.emplace_back(std::int32_t{1});
  array.items.emplace_back("two");
  array.items.emplace_back(true);
  array.items.emplace_back(nested);
  field_array inner_array;
  inner_array.items.emplace_back(2.5);
  inner_array.items.emplace_back(void_value{});
  array.items.emplace_back(inner_array);

  field_table t;
  t.add("bool-true", true)
      .add("bool-false", false)
      .add("int8", std::int8_t{-5})
      .add("uint8", std::uint8_t{200})
      .add("int16", std::int16_t{-300})
      .add("uint16", std::uint16_t{60000})
      .add("int32", std::int32_t{-70000})
      .add("uint32", std::uint32_t{4000000000u})
      .add("int64", std::int64_t{-5000000000000})
      .add("float", 1.5f)
      .add("double", -2.25)
      .add("decimal", decimal{2, 12345})
      .add("longstr", std::string("text with \xc3\xa9 and \0 inside", 25))
      .add("bytes", byte_array{std::string("\x00\x01\xfe\xff", 4)})
      .add("timestamp", timestamp{1700000000})
      .add("array", array)
      .add("empty-array", field_array{})
      .add("table", nested)
      .add("empty-table", field_table{})
      .add("void", void_value{});
  return t;
}

basic_properties all_properties() {
  basic_properties p;
  p.content_type = "application/json";
  p.content_encoding = "gzip";
  p.headers = every_value_type();
  p.delivery_mode = 2;
  p.priority = 7;
  p.correlation_id = "correlation-42";
  p.reply_to = "amq.rabbitmq.reply-to-not-really";
  p.expiration = "600000";
  p.message_id = "message-1";
  p.timestamp = timestamp{1712345678};
  p.type = "order.created";
  // RabbitMQ checks user_id against the authenticated user.
  p.user_id = test::broker_params().username;
  p.app_id = "warren-tests";
  p.cluster_id = "cluster-a";
  return p;
}

// A body of `n` bytes with a pattern that shows any shifted or lost frame.
std::string pattern_body(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 4093) & 0xff);
  return s;
}

}  // namespace

TEST_CASE("publish: all 14 properties and every field type read back intact (get and consume)") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    const basic_properties props = all_properties();
    REQUIRE(props.flags() == 0xfffc);
    const auto s1 = co_await test::publish_settled(ch, "", q.queue, "with every property", props);
    CHECK(s1 == publish_status::acked);

    auto m = co_await ch.get(q.queue, true);
    REQUIRE(m.has_value());
    CHECK(m->body == "with every property");
    REQUIRE(m->properties.headers.has_value());
    CHECK(*m->properties.headers == *props.headers);
    // Field by field first, for a readable failure, then the whole.
    CHECK(m->properties.content_type == props.content_type);
    CHECK(m->properties.content_encoding == props.content_encoding);
    CHECK(m->properties.delivery_mode == props.delivery_mode);
    CHECK(m->properties.priority == props.priority);
    CHECK(m->properties.correlation_id == props.correlation_id);
    CHECK(m->properties.reply_to == props.reply_to);
    CHECK(m->properties.expiration == props.expiration);
    CHECK(m->properties.message_id == props.message_id);
    CHECK(m->properties.timestamp == props.timestamp);
    CHECK(m->properties.type == props.type);
    CHECK(m->properties.user_id == props.user_id);
    CHECK(m->properties.app_id == props.app_id);
    CHECK(m->properties.cluster_id == props.cluster_id);
    CHECK(m->properties == props);
    if (m->properties.headers) {
      for (const auto& entry : props.headers->entries) {
        const field_value* got = m->properties.headers->find(entry.name);
        CAPTURE(entry.name);
        REQUIRE(got != nullptr);
        CHECK(got->type_letter() == entry.value.type_letter());
        CHECK(*got == entry.value);
      }
    }

    // The same through a consumer, and properties without headers (which
    // the publish encoder lays out on its own path).
    basic_properties flat = props;
    flat.headers.reset();
    auto cons = co_await ch.consume(q.queue, {.no_ack = true});
    co_await test::publish_settled(ch, "", q.queue, "full", props);
    co_await test::publish_settled(ch, "", q.queue, "flat", flat);
    auto d1 = co_await with_timeout(cons.next(), 5s);
    auto d2 = co_await with_timeout(cons.next(), 5s);
    REQUIRE(d1.has_value());
    REQUIRE(d2.has_value());
    CHECK(d1->body == "full");
    CHECK(d1->properties == props);
    CHECK(d2->body == "flat");
    CHECK(d2->properties == flat);
    co_await conn.close();
  });
}

TEST_CASE("publish: no properties at all, and an empty body") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    co_await test::publish_settled(ch, "", q.queue, "");
    auto m = co_await ch.get(q.queue, true);
    REQUIRE(m.has_value());
    CHECK(m->body.empty());
    CHECK(m->properties.flags() == 0);
    co_await conn.close();
  });
}

TEST_CASE("publish mandatory to nowhere: next_return() gives 312 NO_ROUTE with the message") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string nowhere = test::unique_name("no-such-queue");
    basic_properties props;
    props.content_type = "text/plain";
    props.message_id = "returned-1";
    props.headers.emplace().add("k", std::int32_t{1});
    const auto out = co_await ch.publish("", nowhere, "come back", props, {.mandatory = true});
    CHECK(out.status == publish_status::sent);
    auto r = co_await with_timeout(ch.next_return(), 5s);
    CHECK(r.reply_code == 312);
    CHECK(r.reply_text == "NO_ROUTE");
    CHECK(r.exchange == "");
    CHECK(r.routing_key == nowhere);
    CHECK(r.body == "come back");
    CHECK(r.properties == props);

    // Through a named exchange with no bindings, too.
    const std::string x = test::unique_name("unbound");
    co_await ch.exchange_declare(x, {.type = "direct"});
    co_await ch.publish(x, "k1", "first", {.mandatory = true});
    co_await ch.publish(x, "k2", "second", {.mandatory = true});
    auto r1 = co_await with_timeout(ch.next_return(), 5s);
    auto r2 = co_await with_timeout(ch.next_return(), 5s);
    CHECK(r1.exchange == x);
    CHECK(r1.routing_key == "k1");
    CHECK(r1.body == "first");
    CHECK(r2.routing_key == "k2");
    CHECK(r2.body == "second");

    // Not mandatory: silently dropped, nothing comes back.
    co_await ch.publish(x, "k3", "dropped");
    auto e = co_await test::error_of(with_timeout(ch.next_return(), 300ms));
    CHECK(e.code == errc::timeout);
    CHECK(ch.is_open());
    co_await ch.exchange_delete(x);
    co_await conn.close();
  });
}

TEST_CASE("publish: a 16 MiB message with frame_max=4096 round-trips byte for byte") {
  test::run(
      []() -> asio::awaitable<void> {
        const std::string uri = test::broker_uri_with("frame_max=4096");
        auto pending = connect(uri);
        auto conn = co_await std::move(pending);
        REQUIRE(conn.frame_max() == 4096);
        auto ch = co_await conn.open_channel();
        auto q = co_await ch.queue_declare("", {.exclusive = true});
        const std::string big = pattern_body(16u << 20);
        const auto s = co_await test::publish_settled(ch, "", q.queue, big);
        CHECK(s == publish_status::acked);
        auto m = co_await with_timeout(ch.get(q.queue, true), 60s);
        REQUIRE(m.has_value());
        CHECK(m->body.size() == big.size());
        CHECK(m->body == big);

        // And delivered to a consumer.
        auto cons = co_await ch.consume(q.queue, {.no_ack = true});
        co_await test::publish_settled(ch, "", q.queue, big);
        auto d = co_await with_timeout(cons.next(), 60s);
        REQUIRE(d.has_value());
        CHECK(d->body.size() == big.size());
        CHECK(d->body == big);
        co_await conn.close();
      },
      std::chrono::seconds(120));
}

TEST_CASE("publish: bodies around the frame boundaries of frame_max=4096") {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri = test::broker_uri_with("frame_max=4096");
    auto pending = connect(uri);
    auto conn = co_await std::move(pending);
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    // A body frame carries at most frame_max - 8 = 4088 bytes.
    for (std::size_t n : {std::size_t{1}, std::size_t{4087}, std::size_t{4088}, std::size_t{4089},
                          std::size_t{8176}, std::size_t{8177}, std::size_t{100000}}) {
      CAPTURE(n);
      const std::string body = pattern_body(n);
      co_await test::publish_settled(ch, "", q.queue, body);
      auto m = co_await ch.get(q.queue, true);
      REQUIRE(m.has_value());
      CHECK(m->body.size() == n);
      CHECK(m->body == body);
    }
    // Headers so big that the content header alone exceeds frame_max: a
    // content header cannot be split, so the client must refuse to send it
    // (the broker would close the connection with 501 FRAME_ERROR).
    basic_properties huge;
    huge.headers.emplace().add("padding", pattern_body(6000));
    auto e = co_await test::error_of(ch.publish("", q.queue, "x", huge));
    CHECK(e.code);
    CAPTURE(e.text);
    CHECK(conn.is_open());
    CHECK(ch.is_open());
    co_await test::publish_settled(ch, "", q.queue, "still fine");
    auto after = co_await ch.get(q.queue, true);
    REQUIRE(after.has_value());
    CHECK(after->body == "still fine");
    co_await conn.close();
  });
}

TEST_CASE("connect_options::max_body_size: a larger delivery fails its channel; the connection stays open") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    // Not exclusive: the second connection reads it.
    auto q = co_await ch.queue_declare("", {.auto_delete = false});
    const std::string body = pattern_body(5000);
    co_await test::publish_settled(ch, "", q.queue, body);

    connect_options small;
    small.max_body_size = 1000;
    auto limited = co_await test::open_connection(small);
    auto lch = co_await limited.open_channel();
    // The client skips the body frames and closes that channel, failing the
    // get; the connection stays open.
    auto ex = co_await asio::this_coro::executor;
    auto get = test::start(ex, lch.get(q.queue, false));
    const bool done = co_await test::wait_done(*get, 5s);
    REQUIRE(done);
    CHECK(get->error.code == errc::message_too_large);
    CHECK(get->error.text.find("5000 bytes") != std::string::npos);
    CHECK_FALSE(lch.is_open());
    CHECK(limited.is_open());
    auto again = co_await limited.open_channel();
    co_await again.queue_declare(q.queue, {.passive = true});
    // The broker requeues it once it has closed the channel: the unlimited
    // connection gets it then.
    std::optional<message> m;
    for (int i = 0; i < 100 && !m; ++i) {
      m = co_await ch.get(q.queue, true);
      if (!m) co_await test::sleep_for(20ms);
    }
    REQUIRE(m.has_value());
    CHECK(m->body == body);
    co_await ch.queue_delete(q.queue);
    co_await conn.close();
  });
}
