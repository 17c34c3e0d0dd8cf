// A connection over time: heartbeats, deadlines and cancellation, and the ways
// a connection ends that the client does not choose (the broker closing it,
// the socket dropping, the peer going silent).
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <string>

#include "harness.hpp"
#include "proxy.hpp"

using namespace warren;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

}  // namespace

TEST_CASE("heartbeats: an idle connection with heartbeat=1 stays open") {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri = test::broker_uri_with("heartbeat=1");
    auto pending = connect(uri);
    auto conn = co_await std::move(pending);
    REQUIRE(conn.heartbeat() == 1);
    auto ch = co_await conn.open_channel();
    // The broker closes a connection after two missed intervals, and the
    // client declares the broker dead after two silent intervals: 3.5 s of
    // idleness is enough for either to fire if heartbeats did not flow.
    co_await test::sleep_for(3500ms);
    CHECK(conn.is_open());
    CHECK(ch.is_open());
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    CHECK_FALSE(q.queue.empty());
    co_await conn.close();
  });
}

TEST_CASE("deadlines: with_timeout on consumer.next() with no messages; everything stays usable") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    auto cons = co_await ch.consume(q.queue);

    const auto t0 = clock_type::now();
    auto e = co_await test::error_of(with_timeout(cons.next(), 300ms));
    CHECK(e.code == errc::timeout);
    CHECK(seconds_since(t0) >= 0.25);
    CHECK(seconds_since(t0) < 2.0);
    CHECK(conn.is_open());
    CHECK(ch.is_open());
    CHECK_FALSE(cons.end_reason());

    // The consumer still delivers after the timed-out wait.
    co_await ch.publish("", q.queue, "after the timeout");
    auto m = co_await with_timeout(cons.next(), 5s);
    REQUIRE(m.has_value());
    CHECK(m->body == "after the timeout");
    CHECK(m->consumer_tag == cons.tag());
    ch.ack(m->delivery_tag);

    // A second timed-out wait, then basic.get on the same channel.
    auto e2 = co_await test::error_of(with_timeout(cons.next(), 100ms));
    CHECK(e2.code == errc::timeout);
    co_await cons.cancel();
    co_await ch.publish("", q.queue, "for get");
    auto g = co_await with_timeout(ch.get(q.queue, true), 5s);
    REQUIRE(g.has_value());
    CHECK(g->body == "for get");
    co_await conn.close();
  });
}

TEST_CASE("deadlines: a cancelled request's late reply is not mistaken for the next one's") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    // The deadline passes long before queue.declare-ok can arrive: the
    // broker first routes 2,000 unroutable publishes sent ahead of the
    // declare on the same channel, milliseconds of work. Were this thread
    // held up that long before it looks at its timers, the reply would be
    // there with the timer and the declare would win: the test then takes a
    // new name and tries again.
    const std::string filler(1024, 'f');
    std::string name;
    error_info e;
    for (int attempt = 0; attempt < 20; ++attempt) {
      for (int i = 0; i < 2000; ++i) co_await ch.publish("", "warren-test-nowhere", filler);
      name = test::unique_name("late-reply");
      auto declare = ch.queue_declare(name, {.exclusive = true});
      e = co_await test::error_of(with_timeout(std::move(declare), 1us));
      if (e.code == errc::timeout) break;
      REQUIRE(!e.code);  // the only other outcome is the declare in time
    }
    REQUIRE(e.code == errc::timeout);
    // The broker still declared the queue; the next request gets its own reply.
    co_await ch.publish("", name, "one");
    co_await ch.publish("", name, "two");
    const std::uint32_t purged = co_await ch.queue_purge(name);
    CHECK(purged == 2);
    auto q = co_await ch.queue_declare(name, {.passive = true});
    CHECK(q.queue == name);
    CHECK(q.message_count == 0);
    // A deadline that does not pass changes nothing.
    auto q2 = co_await with_timeout(ch.queue_declare(name, {.passive = true}), 5s);
    CHECK(q2.queue == name);
    co_await conn.close();
  });
}

// with_timeout ends as soon as the operation ends, however it ends: an
// operation that fails surfaces its own error at once, not a timeout later.
TEST_CASE("with_timeout passes an operation's own error through promptly") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto ch = co_await conn.open_channel();
    const std::string missing = test::unique_name("missing");
    const auto t0 = clock_type::now();
    auto e =
        co_await test::error_of(with_timeout(ch.queue_declare(missing, {.passive = true}), 3s));
    CHECK(e.reply_code() == 404);
    CHECK(seconds_since(t0) < 1.0);
    co_await conn.close();
  });
}

TEST_CASE("forced close: rabbitmqctl close_connection fails pending operations with 320") {
  test::run([]() -> asio::awaitable<void> {
    const std::string name = test::unique_name("forced");
    connect_options opts;
    opts.connection_name = name;
    auto conn = co_await test::open_connection(opts);
    auto ch1 = co_await conn.open_channel();
    auto ch2 = co_await conn.open_channel();
    auto q = co_await ch1.queue_declare("", {.exclusive = true});
    auto cons = co_await ch1.consume(q.queue);
    auto ex = co_await asio::this_coro::executor;
    auto next = test::start(ex, cons.next());
    auto ret = test::start(ex, ch2.next_return());
    auto notice = test::start(ex, conn.next_notice());

    const std::string pid = test::connection_pid(name);
    REQUIRE_FALSE(pid.empty());
    auto r = test::rabbitmqctl("close_connection '" + pid + "' 'closed by the warren tests'");
    REQUIRE(r.status == 0);
    const auto t0 = clock_type::now();
    const bool done = co_await test::wait_done(*next, 5s);
    REQUIRE(done);
    CHECK(seconds_since(t0) < 2.0);
    CHECK(next->error.reply_code() == 320);
    CHECK(next->error.text.find("closed by the warren tests") != std::string::npos);
    const bool ret_done = co_await test::wait_done(*ret, 1s);
    REQUIRE(ret_done);
    CHECK(ret->error.reply_code() == 320);
    const bool notice_done = co_await test::wait_done(*notice, 1s);
    REQUIRE(notice_done);
    CHECK(notice->error.code);

    CHECK_FALSE(conn.is_open());
    CHECK(conn.close_reason().reply_code() == 320);
    CHECK_FALSE(ch1.is_open());
    CHECK_FALSE(ch2.is_open());
    // Anything after that fails at once, and close() has nothing to do.
    auto e = co_await test::error_of(ch2.queue_declare("", {.exclusive = true}));
    CHECK(e.code);
    auto e2 = co_await test::error_of(conn.open_channel());
    CHECK(e2.code);
    auto e3 = co_await test::error_of(ch1.publish("", "nowhere", "x"));
    CHECK(e3.code);
    auto e4 = co_await test::error_of(cons.next());
    CHECK(e4.code);
    co_await conn.close();
  });
}

TEST_CASE("lost socket: a dropped TCP connection fails pending operations promptly") {
  test::run([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    test::tcp_proxy proxy(ex);
    auto pending = connect(proxy.params());
    auto conn = co_await std::move(pending);
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    auto cons = co_await ch.consume(q.queue);
    auto next = test::start(ex, cons.next());
    co_await test::sleep_for(50ms);
    CHECK_FALSE(next->done);

    proxy.cut();
    const auto t0 = clock_type::now();
    const bool done = co_await test::wait_done(*next, 5s);
    REQUIRE(done);
    CHECK(seconds_since(t0) < 1.0);
    CHECK(next->error.code == errc::connection_lost);
    CHECK_FALSE(conn.is_open());
    CHECK(conn.close_reason().code == errc::connection_lost);
    auto e = co_await test::error_of(ch.get(q.queue));
    CHECK(e.code);
  });
}

TEST_CASE("lost peer: a silent broker is detected by missed heartbeats") {
  test::run([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    test::tcp_proxy proxy(ex);
    auto params = proxy.params();
    params.heartbeat = 1;
    auto pending = connect(params);
    auto conn = co_await std::move(pending);
    REQUIRE(conn.heartbeat() == 1);
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    auto cons = co_await ch.consume(q.queue);
    auto next = test::start(ex, cons.next());

    proxy.freeze();
    const auto t0 = clock_type::now();
    const bool done = co_await test::wait_done(*next, 6s);
    REQUIRE(done);
    // Two intervals of silence (2 s), give or take a tick of the timer.
    CHECK(seconds_since(t0) >= 1.0);
    CHECK(seconds_since(t0) < 4.0);
    CHECK(next->error.code == errc::heartbeat_timeout);
    CHECK_FALSE(conn.is_open());
    CHECK(conn.close_reason().code == errc::heartbeat_timeout);
  });
}

TEST_CASE("connect: connection_timeout bounds a handshake the broker never answers") {
  test::run([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    test::tcp_proxy proxy(ex);
    proxy.freeze();
    auto params = proxy.params();
    params.connection_timeout = 500ms;
    const auto t0 = clock_type::now();
    auto e = co_await test::error_of(connect(params));
    CHECK(e.code == errc::timeout);
    CHECK(seconds_since(t0) >= 0.45);
    CHECK(seconds_since(t0) < 2.0);
    CHECK(proxy.accepted() == 1);
  });
}
