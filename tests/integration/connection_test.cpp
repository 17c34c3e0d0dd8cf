// Connecting: URIs and their query parameters, tuning, authentication, virtual
// hosts, channels and their ids.
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/error.hpp>
#include <asio/this_coro.hpp>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

// "amqp://user:password@host:port" of the test broker, without vhost or query.
std::string base_uri() {
  auto p = test::broker_params();
  return "amqp://" + p.username + ":" + p.password + "@" + p.host + ":" + std::to_string(p.port);
}

const std::string* longstr(const field_table& t, std::string_view name) {
  const field_value* v = t.find(name);
  return v ? std::get_if<std::string>(&v->variant()) : nullptr;
}

// A queue declared and deleted again: proof that a channel works.
asio::awaitable<bool> channel_works(channel& ch) {
  auto q = co_await ch.queue_declare("", {.exclusive = true});
  const auto n = co_await ch.queue_delete(q.queue);
  co_return !q.queue.empty() && n == 0;
}

asio::awaitable<void> declare_into(channel& ch, std::string name, std::string* out) {
  auto q = co_await ch.queue_declare(name, {.exclusive = true});
  *out = q.queue;
}

}  // namespace

TEST_CASE("connect with the default URI: tuning, server properties, close") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    CHECK(conn.is_open());
    CHECK_FALSE(conn.blocked());
    CHECK_FALSE(conn.close_reason());
    // The client proposes heartbeat 60, frame_max 128 KiB, channel_max 2047;
    // RabbitMQ's defaults are the same.
    CHECK(conn.heartbeat() == 60);
    CHECK(conn.frame_max() == 131072);
    CHECK(conn.channel_max() == 2047);

    const auto& props = conn.server_properties();
    const std::string* product = longstr(props, "product");
    REQUIRE(product != nullptr);
    CHECK(*product == "RabbitMQ");
    REQUIRE(longstr(props, "version") != nullptr);
    const field_value* caps = props.find("capabilities");
    REQUIRE(caps != nullptr);
    const auto* cap_table = std::get_if<field_table>(&caps->variant());
    REQUIRE(cap_table != nullptr);
    for (const char* cap : {"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                            "consumer_cancel_notify", "connection.blocked",
                            "authentication_failure_close", "per_consumer_qos"}) {
      const field_value* v = cap_table->find(cap);
      CAPTURE(cap);
      REQUIRE(v != nullptr);
      CHECK(std::get<bool>(v->variant()));
    }

    auto ch = co_await conn.open_channel();
    const bool works1 = co_await channel_works(ch);
    CHECK(works1);

    co_await conn.close();
    CHECK_FALSE(conn.is_open());
    CHECK_FALSE(ch.is_open());
    // Closing again does nothing; using the connection fails cleanly.
    co_await conn.close();
    auto e = co_await test::error_of(conn.open_channel());
    CHECK(e.code == errc::connection_closed);
    auto e2 = co_await test::error_of(ch.queue_declare("", {.exclusive = true}));
    CHECK(e2.code);
  });
}

TEST_CASE("connect: vhost %2f and %2F name the default vhost") {
  test::run([]() -> asio::awaitable<void> {
    for (const char* path : {"/%2f", "/%2F", "/", ""}) {
      CAPTURE(path);
      const std::string uri = base_uri() + path;
      auto pending = connect(uri);
      auto conn = co_await std::move(pending);
      CHECK(conn.is_open());
      auto ch = co_await conn.open_channel();
      const bool works2 = co_await channel_works(ch);
      CHECK(works2);
      co_await conn.close();
    }
  });
}

TEST_CASE("connect: heartbeat, frame_max and channel_max query parameters are negotiated") {
  test::run([]() -> asio::awaitable<void> {
    const std::string name = test::unique_name("tune");
    connect_options opts;
    opts.connection_name = name;
    const std::string uri = test::broker_uri_with("heartbeat=7&frame_max=8192&channel_max=10");
    auto pending = connect(uri, opts);
    auto conn = co_await std::move(pending);
    CHECK(conn.heartbeat() == 7);
    CHECK(conn.frame_max() == 8192);
    CHECK(conn.channel_max() == 10);
    // The broker took our tune-ok: it reports the same values.
    const std::string row =
        test::connection_row(test::list_connections("frame_max channel_max timeout"), name);
    CHECK(row == "8192\t10\t7");

    // Proposals above the broker's limits are lowered to them; 0 means "no
    // limit" for frame_max/channel_max (the broker's then applies) and
    // "disabled" for heartbeats.
    const std::string uri2 = test::broker_uri_with("heartbeat=0&frame_max=0&channel_max=0");
    auto pending2 = connect(uri2);
    auto conn2 = co_await std::move(pending2);
    CHECK(conn2.heartbeat() == 0);
    CHECK(conn2.frame_max() == 131072);
    CHECK(conn2.channel_max() == 2047);
    auto ch = co_await conn2.open_channel();
    const bool works3 = co_await channel_works(ch);
    CHECK(works3);
    const std::string uri3 = test::broker_uri_with("frame_max=1048576&channel_max=65535");
    auto pending3 = connect(uri3);
    auto conn3 = co_await std::move(pending3);
    CHECK(conn3.frame_max() == 131072);
    CHECK(conn3.channel_max() == 2047);
    co_await conn.close();
    co_await conn2.close();
    co_await conn3.close();
  });
}

TEST_CASE("connect: bad URIs and unreachable brokers fail cleanly") {
  test::run([]() -> asio::awaitable<void> {
    const std::string bad = base_uri() + "/?bogus=1";
    auto e = co_await test::error_of(connect(bad));
    CHECK(e.code == errc::bad_uri);
    const std::string amqps = "amqps://guest:guest@127.0.0.1:5671/";
    auto e2 = co_await test::error_of(connect(amqps));
    CHECK(e2.code);
    // Port 1 on loopback: nothing listens, the connect is refused.
    auto p = test::broker_params();
    p.port = 1;
    auto e3 = co_await test::error_of(connect(p));
    CHECK(e3.code == asio::error::connection_refused);
  });
}

TEST_CASE("auth: PLAIN and AMQPLAIN log in; the broker sees the mechanism") {
  test::run([]() -> asio::awaitable<void> {
    const std::string plain_name = test::unique_name("plain");
    const std::string amqplain_name = test::unique_name("amqplain");
    connect_options o1;
    o1.connection_name = plain_name;
    connect_options o2;
    o2.connection_name = amqplain_name;
    const std::string u1 = test::broker_uri_with("auth_mechanism=plain");
    const std::string u2 = test::broker_uri_with("auth_mechanism=amqplain");
    auto p1 = connect(u1, o1);
    auto c1 = co_await std::move(p1);
    auto p2 = connect(u2, o2);
    auto c2 = co_await std::move(p2);
    CHECK(c1.is_open());
    CHECK(c2.is_open());
    auto ch1 = co_await c1.open_channel();
    auto ch2 = co_await c2.open_channel();
    const bool works4 = co_await channel_works(ch1);
    CHECK(works4);
    const bool works5 = co_await channel_works(ch2);
    CHECK(works5);
    const std::string table = test::list_connections("auth_mechanism user");
    CHECK(test::connection_row(table, plain_name) == "PLAIN\tguest");
    CHECK(test::connection_row(table, amqplain_name) == "AMQPLAIN\tguest");
    co_await c1.close();
    co_await c2.close();
  });
}

TEST_CASE("auth: a wrong password fails with authentication_failed, PLAIN and AMQPLAIN") {
  test::run([]() -> asio::awaitable<void> {
    for (const char* mech : {"PLAIN", "AMQPLAIN"}) {
      CAPTURE(mech);
      auto p = test::broker_params();
      p.password = "definitely-not-the-password";
      p.auth_mechanism = mech;
      auto e = co_await test::error_of(connect(p));
      CHECK(e.code == errc::authentication_failed);
      CHECK(e.text.find("ACCESS_REFUSED") != std::string::npos);
    }
    // An unknown user is refused the same way.
    auto p = test::broker_params();
    p.username = "no-such-user-" + std::to_string(::getpid());
    auto e = co_await test::error_of(connect(p));
    CHECK(e.code == errc::authentication_failed);
  });
}

TEST_CASE("auth: EXTERNAL is not offered by a default RabbitMQ: no_common_mechanism") {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri = test::broker_uri_with("auth_mechanism=external");
    auto e = co_await test::error_of(connect(uri));
    CHECK(e.code == errc::no_common_mechanism);
    // The failed attempt left nothing behind: a normal login still works.
    auto conn = co_await test::open_connection();
    CHECK(conn.is_open());
    co_await conn.close();
  });
}

TEST_CASE("vhost: an unknown virtual host is refused") {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri = base_uri() + "/no-such-vhost-" + std::to_string(::getpid());
    auto e = co_await test::error_of(connect(uri));
    // RabbitMQ 3.10 answers connection.open for a missing vhost with
    // connection.close 530 NOT_ALLOWED ("vhost ... not found").
    CHECK(e.reply_code() == 530);
    CHECK(e.text.find("not found") != std::string::npos);
    CHECK(e.class_id == 10);
    CHECK(e.method_id == 40);
  });
}

TEST_CASE("channels: several at once, closing one leaves the others working") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto a = co_await conn.open_channel();
    auto b = co_await conn.open_channel();
    auto c = co_await conn.open_channel();
    CHECK(a.id() != 0);
    CHECK(a.id() != b.id());
    CHECK(b.id() != c.id());
    CHECK(a.id() != c.id());
    const bool works6 = co_await channel_works(a);
    CHECK(works6);
    const bool works7 = co_await channel_works(b);
    CHECK(works7);
    const bool works8 = co_await channel_works(c);
    CHECK(works8);

    co_await b.close();
    CHECK_FALSE(b.is_open());
    co_await b.close();  // closing a closed channel does nothing
    auto e = co_await test::error_of(b.queue_declare("", {.exclusive = true}));
    CHECK(e.code == errc::channel_closed);
    CHECK_THROWS_AS(b.ack(1), error);
    CHECK(a.is_open());
    CHECK(c.is_open());
    const bool works9 = co_await channel_works(a);
    CHECK(works9);
    const bool works10 = co_await channel_works(c);
    CHECK(works10);
    co_await conn.close();
  });
}

TEST_CASE("channels: ids are reused after close; channel_max is enforced") {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri = test::broker_uri_with("channel_max=3");
    auto pending = connect(uri);
    auto conn = co_await std::move(pending);
    REQUIRE(conn.channel_max() == 3);
    auto a = co_await conn.open_channel();
    auto b = co_await conn.open_channel();
    auto c = co_await conn.open_channel();
    CHECK(a.id() >= 1);
    CHECK(a.id() <= 3);
    CHECK(b.id() <= 3);
    CHECK(c.id() <= 3);
    auto e = co_await test::error_of(conn.open_channel());
    CHECK(e.code == errc::channel_limit);

    const std::uint16_t freed = b.id();
    co_await b.close();
    auto d = co_await conn.open_channel();
    CHECK(d.id() == freed);
    const bool works11 = co_await channel_works(d);
    CHECK(works11);

    // Dropping the last handle of a channel closes it; once the broker's
    // close-ok is in, its id is free again.
    const std::uint16_t dropped = c.id();
    c = channel();
    co_await test::sleep_for(200ms);
    auto f = co_await conn.open_channel();
    CHECK(f.id() == dropped);
    const bool works12 = co_await channel_works(f);
    CHECK(works12);
    const bool works13 = co_await channel_works(a);
    CHECK(works13);
    co_await conn.close();
  });
}

TEST_CASE("channels: concurrent requests on one channel each get their own reply") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto ex = co_await asio::this_coro::executor;
    constexpr int n = 25;
    std::vector<std::string> names(n);
    std::vector<std::string> got(n);
    for (int i = 0; i < n; ++i) {
      names[i] = test::unique_name("concurrent");
      asio::co_spawn(ex, declare_into(ch, names[i], &got[i]), asio::detached);
    }
    for (int i = 0; i < 200 && got[n - 1].empty(); ++i) co_await test::sleep_for(10ms);
    for (int i = 0; i < n; ++i) CHECK(got[i] == names[i]);
    co_await conn.close();
  });
}

TEST_CASE("connection.update-secret: the broker accepts a refreshed credential") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    const std::string secret = test::broker_params().password;
    co_await conn.update_secret(secret, "refresh");
    CHECK(conn.is_open());
    auto ch = co_await conn.open_channel();
    const bool works = co_await channel_works(ch);
    CHECK(works);
    co_await conn.close();
  });
}
