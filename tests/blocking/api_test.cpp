// What the blocking API adds to the coroutine API: error-code forms,
// timeouts, the refusal on the I/O thread, callback consuming with
// start_consuming / stop_consuming, connecting over endpoint lists, and the
// lifetime of the I/O thread.
#include <doctest/doctest.h>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "blocking_harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

// A TCP port that accepts connections (the kernel completes the handshake)
// and never says a word: an AMQP handshake there never ends.
struct silent_listener {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
};

std::string uri_for_port(std::uint16_t port) {
  return "amqp://guest:guest@127.0.0.1:" + std::to_string(port) + "/";
}

}  // namespace

TEST_CASE("blocking errors: thrown as warren::error, or set in the error_code form") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  const std::string missing = test::unique_name("missing");
  try {
    ch.queue_declare(missing, {.passive = true});
    FAIL("a passive declare of a missing queue succeeded");
  } catch (const error& e) {
    CHECK(e.reply_code() == 404);
    CHECK(e.class_id() == 50);
    CHECK(e.method_id() == 10);
    CHECK(e.reply_text().find(missing) != std::string::npos);
  }
  CHECK_FALSE(ch.is_open());
  CHECK(ch.close_reason().reply_code() == 404);

  // The error_code form: set on failure, cleared on success.
  auto ch2 = conn.open_channel();
  std::error_code ec = make_error_code(errc::timeout);
  auto q = ch2.queue_declare("", {.exclusive = true}, {}, ec);
  CHECK_FALSE(ec);
  CHECK_FALSE(q.queue.empty());
  auto none = ch2.queue_declare(missing, {.passive = true}, {}, ec);
  CHECK(ec.value() == 404);
  CHECK(ec.category() == amqp_category());
  CHECK(none.queue.empty());
  // Later calls on the closed channel fail with the error that closed it.
  ch2.queue_purge(q.queue, {}, ec);
  CHECK(ec.value() == 404);
  CHECK_THROWS_AS(ch2.queue_purge(q.queue), error);

  // The connection goes on.
  auto ch3 = conn.open_channel({}, ec);
  CHECK_FALSE(ec);
  CHECK(ch3.is_open());
  CHECK(conn.is_open());

  // An empty handle fails cleanly.
  blocking::channel empty;
  empty.queue_purge("x", {}, ec);
  CHECK(ec == errc::channel_closed);
  CHECK_FALSE(empty.is_open());
  blocking::connection none_conn;
  none_conn.open_channel({}, ec);
  CHECK(ec == errc::connection_closed);
  CHECK_FALSE(none_conn.is_open());
}

TEST_CASE("blocking connect: bad URIs, refused ports, wrong passwords, each as error or code") {
  std::error_code ec;
  auto bad = blocking::connect("http://nowhere/", {}, {}, ec);
  CHECK(ec == errc::bad_uri);
  CHECK_FALSE(bad);
  CHECK_THROWS_AS(blocking::connect("amqp://h:99999/"), error);

  // Nothing listens on port 1.
  auto refused = blocking::connect(uri_for_port(1), {}, {}, ec);
  CHECK(ec);
  CHECK_FALSE(refused);

  auto params = test::broker_params();
  params.password = "wrong-password";
  try {
    blocking::connect(params);
    FAIL("a wrong password was accepted");
  } catch (const error& e) {
    CHECK(e.code() == errc::authentication_failed);
    CHECK(std::string(e.what()).find("wrong-password") == std::string::npos);
  }
}

TEST_CASE("blocking connect: URI lists, connection_params lists and endpoints") {
  const int threads_before = test::settled_thread_count();
  {
    // The first URI refuses; the second answers.
    std::vector<std::string> uris{uri_for_port(1), test::broker_uri()};
    auto conn = blocking::connect(uris);
    CHECK(conn.is_open());
    CHECK(conn.endpoint().find(":5672") != std::string::npos);
    CHECK(conn.endpoint().find("guest:guest") == std::string::npos);
  }
  {
    auto good = test::broker_params();
    auto dead = good;
    dead.port = 1;
    auto conn = blocking::connect(std::vector<connection_params>{dead, good});
    CHECK(conn.is_open());
  }
  {
    auto shared = test::broker_params();
    connect_options options;
    options.connection_name = test::unique_name("blocking-endpoints");
    std::vector<endpoint> endpoints{{"127.0.0.1", 1}, {shared.host, shared.port}};
    auto conn = blocking::connect(shared, endpoints, options, 30s);
    CHECK(conn.is_open());
    auto ch = conn.open_channel();
    CHECK(ch.queue_declare("", {.exclusive = true}).queue.size() > 0);
  }
  {
    std::error_code ec;
    std::vector<std::string> all_dead{uri_for_port(1), uri_for_port(2)};
    auto conn = blocking::connect(all_dead, {}, {}, ec);
    CHECK(ec);
    CHECK_FALSE(conn);
  }
  // Every connection above, failed ones included, took its thread with it.
  CHECK(test::thread_count_becomes(threads_before));
}

TEST_CASE("blocking timeouts: a call that waits too long fails with timeout; all stays usable") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  auto cons = ch.consume(q.queue);

  auto start = clock_type::now();
  try {
    cons.next(200ms);
    FAIL("next() on an empty queue returned");
  } catch (const error& e) {
    CHECK(e.code() == errc::timeout);
  }
  auto took = clock_type::now() - start;
  CHECK(took >= 190ms);
  CHECK(took < 2s);

  std::error_code ec;
  message m;
  CHECK_FALSE(cons.next(m, 100ms, ec));
  CHECK(ec == errc::timeout);

  // The consumer, channel and connection still work.
  ch.publish("", q.queue, "after the timeout");
  auto got = cons.next(5s);
  REQUIRE(got.has_value());
  CHECK(got->body == "after the timeout");
  ch.ack(got->delivery_tag);

  // A notice that never comes.
  conn.next_notice(100ms, ec);
  CHECK(ec == errc::timeout);
  CHECK(conn.is_open());

  // A generous timeout changes nothing for a call that answers.
  CHECK(ch.queue_declare(q.queue, {.passive = true}, 10s).consumer_count == 1);
}

TEST_CASE("blocking timeouts: connect to a broker that never answers") {
  silent_listener silent;
  const auto start = clock_type::now();
  std::error_code ec;
  auto conn = blocking::connect(uri_for_port(silent.port()), {}, 300ms, ec);
  CHECK(ec == errc::timeout);
  CHECK_FALSE(conn);
  CHECK(clock_type::now() - start < 5s);
}

TEST_CASE("blocking: a blocking call on the I/O thread is refused instead of deadlocking") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  test::fill(ch, q.queue, 1);
  auto m = ch.get(q.queue);
  REQUIRE(m.has_value());
  CHECK_FALSE(conn.on_io_thread());

  std::promise<void> done;
  std::error_code refused;
  std::string what;
  bool on_io = false, open_there = false, ack_failed = true;
  asio::post(conn.get_executor(), [&] {
    on_io = conn.on_io_thread();
    ch.queue_declare("", {}, {}, refused);
    try {
      conn.open_channel();
    } catch (const error& e) {
      what = e.what();
    }
    // Queries and acks do not wait: they work there.
    open_there = ch.is_open();
    std::error_code ack_ec;
    ch.ack(m->delivery_tag, false, ack_ec);
    ack_failed = static_cast<bool>(ack_ec);
    done.set_value();
  });
  REQUIRE(done.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(on_io);
  CHECK(refused == std::errc::resource_deadlock_would_occur);
  CHECK(what.find("I/O thread") != std::string::npos);
  CHECK(open_there);
  CHECK_FALSE(ack_failed);
  // Everything works from here.
  CHECK(test::ready(ch, q.queue) == 0);
}

TEST_CASE("blocking callback consuming: manual acks; stop_consuming from the callback") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto pub = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  test::fill(pub, q.queue, 10);
  std::vector<std::string> bodies;
  const auto consuming_thread = std::this_thread::get_id();
  bool right_thread = true;
  const std::string tag = ch.basic_consume(
      q.queue,
      [&](blocking::channel& c, const message& m) {
        right_thread = right_thread && std::this_thread::get_id() == consuming_thread;
        bodies.push_back(m.body);
        c.ack(m.delivery_tag);
        if (bodies.size() == 10) c.stop_consuming();
      },
      {.prefetch = 3});
  CHECK(tag.rfind("amq.ctag-", 0) == 0);
  CHECK(ch.start_consuming(10s) == blocking::consuming_end::stopped);
  CHECK(right_thread);
  REQUIRE(bodies.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(bodies[i] == "m" + std::to_string(i));
  // stop_consuming cancelled the consumer.
  auto info = pub.queue_declare(q.queue, {.passive = true});
  CHECK(info.consumer_count == 0);
  CHECK(info.message_count == 0);
  // Nothing left to consume: start_consuming returns at once.
  CHECK(ch.start_consuming(5s) == blocking::consuming_end::no_consumers);
}

TEST_CASE("blocking callback consuming: stop_consuming from another thread") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  std::atomic<int> seen{0};
  ch.basic_consume(q.queue, [&](blocking::channel& c, const message& m) {
    c.ack(m.delivery_tag);
    ++seen;
  });
  auto pub = conn.open_channel();
  std::thread stopper([&] {
    test::fill(pub, q.queue, 5);
    REQUIRE(test::eventually([&] { return seen.load() == 5; }));
    ch.stop_consuming();
  });
  const auto start = clock_type::now();
  CHECK(ch.start_consuming(30s) == blocking::consuming_end::stopped);
  CHECK(clock_type::now() - start < 20s);
  stopper.join();
  CHECK(seen.load() == 5);
  CHECK(pub.queue_declare(q.queue, {.passive = true}).consumer_count == 0);
}

TEST_CASE("blocking callback consuming: time limit, and stopping from the I/O thread") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  ch.basic_consume(q.queue, [](blocking::channel&, const message&) {}, {.no_ack = true});
  auto start = clock_type::now();
  CHECK(ch.start_consuming(200ms) == blocking::consuming_end::time_limit);
  CHECK(clock_type::now() - start >= 190ms);

  // stop_consuming() from a handler on the I/O thread starts the cancel
  // without waiting for it.
  std::promise<std::error_code> stop_result;
  std::thread later([&] {
    std::this_thread::sleep_for(100ms);
    asio::post(conn.get_executor(), [&] {
      std::error_code ec = make_error_code(errc::timeout);
      ch.stop_consuming({}, ec);
      stop_result.set_value(ec);
    });
  });
  CHECK(ch.start_consuming(20s) == blocking::consuming_end::stopped);
  later.join();
  auto stopped = stop_result.get_future();
  REQUIRE(stopped.wait_for(10s) == std::future_status::ready);
  CHECK_FALSE(stopped.get());
  CHECK(test::eventually(
      [&] { return ch.queue_declare(q.queue, {.passive = true}).consumer_count == 0; }));
}

TEST_CASE("blocking callback consuming: deliveries not yet handed over go back on stop") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto pub = conn.open_channel();
  auto q = pub.queue_declare("", {.exclusive = true});
  test::fill(pub, q.queue, 10);
  int calls = 0;
  bool all_sent = false;
  ch.basic_consume(q.queue,
                   [&](blocking::channel& c, const message& m) {
                     ++calls;
                     // Stop once the broker has sent the other nine (none is
                     // ready): whether they are in the buffer or still on
                     // the wire, they are nacked back.
                     all_sent = test::eventually([&] { return test::ready(pub, q.queue) == 0; });
                     c.ack(m.delivery_tag);
                     c.stop_consuming();
                   },
                   {.prefetch = 10});
  CHECK(ch.start_consuming(10s) == blocking::consuming_end::stopped);
  CHECK(calls == 1);
  CHECK(all_sent);
  CHECK(test::eventually([&] { return test::ready(pub, q.queue) == 9; }));
  auto next = pub.get(q.queue, true);
  REQUIRE(next.has_value());
  CHECK(next->body == "m1");
  CHECK(next->redelivered);
}

TEST_CASE("blocking callback consuming: what the callback throws leaves start_consuming") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  test::fill(ch, q.queue, 3);
  std::vector<std::string> acked;
  ch.basic_consume(q.queue, [&](blocking::channel& c, const message& m) {
    if (m.body == "m1" && !m.redelivered) throw std::runtime_error("cannot handle m1");
    c.ack(m.delivery_tag);
    acked.push_back(m.body);
  });
  CHECK_THROWS_WITH_AS(ch.start_consuming(10s), "cannot handle m1", std::runtime_error);
  CHECK(acked == std::vector<std::string>{"m0"});
  // Consuming resumes with the next delivery; m1 stays unacked meanwhile.
  std::error_code ec;
  CHECK(ch.start_consuming(300ms, ec) == blocking::consuming_end::time_limit);
  CHECK_FALSE(ec);
  CHECK(acked == std::vector<std::string>{"m0", "m2"});
  ch.recover(true);  // m1 comes again, redelivered, soon after recover-ok
  CHECK(test::eventually([&] {
    CHECK(ch.start_consuming(50ms) == blocking::consuming_end::time_limit);
    return acked.size() == 3;
  }));
  CHECK(acked == std::vector<std::string>{"m0", "m2", "m1"});
}

TEST_CASE("blocking callback consuming: a channel error and a deleted queue end the loop") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto admin = conn.open_channel();
  const std::string name = test::unique_name("consume-cancel");
  admin.queue_declare(name, {.exclusive = true});
  ch.basic_consume(name, [](blocking::channel&, const message&) {});
  std::thread deleter([&] {
    std::this_thread::sleep_for(100ms);
    admin.queue_delete(name);
  });
  CHECK(ch.start_consuming(10s) == blocking::consuming_end::no_consumers);
  deleter.join();

  // Acking a tag the broker never sent: 406, the channel closes, the loop throws.
  auto q = admin.queue_declare("", {.exclusive = true});
  ch.basic_consume(q.queue, [](blocking::channel& c, const message&) { c.ack(999); });
  test::fill(admin, q.queue, 1);
  try {
    ch.start_consuming(10s);
    FAIL("start_consuming went on after a channel error");
  } catch (const error& e) {
    CHECK(e.reply_code() == 406);
  }
  CHECK_FALSE(ch.is_open());
  std::error_code ec;
  ch.start_consuming(1s, ec);
  CHECK(ec.value() == 406);
}

TEST_CASE("blocking callback consuming: basic_cancel of one consumer; several at once") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto pub = conn.open_channel();
  auto q1 = pub.queue_declare("", {.exclusive = true});
  auto q2 = pub.queue_declare("", {.exclusive = true});
  std::vector<std::string> from1, from2;
  const auto t1 = ch.basic_consume(q1.queue, [&](blocking::channel& c, const message& m) {
    from1.push_back(m.body);
    c.ack(m.delivery_tag);
  });
  ch.basic_consume(q2.queue, [&](blocking::channel& c, const message& m) {
    from2.push_back(m.body);
    c.ack(m.delivery_tag);
    if (from2.size() == 4) c.stop_consuming();
  });
  test::fill(pub, q1.queue, 2, "a");
  test::fill(pub, q2.queue, 2, "b");
  CHECK(ch.start_consuming(500ms) == blocking::consuming_end::time_limit);
  CHECK(from1.size() == 2);
  CHECK(from2.size() == 2);
  ch.basic_cancel(t1);
  CHECK(pub.queue_declare(q1.queue, {.passive = true}).consumer_count == 0);
  test::fill(pub, q1.queue, 1, "late");
  test::fill(pub, q2.queue, 2, "c");
  CHECK(ch.start_consuming(10s) == blocking::consuming_end::stopped);
  CHECK(from1.size() == 2);
  CHECK(from2.size() == 4);
  CHECK(test::ready(pub, q1.queue) == 1);
}

TEST_CASE("blocking lifetime: destroying the connection closes it and joins its thread") {
  const int threads_before = test::settled_thread_count();
  blocking::channel survivor;
  blocking::consumer pull;
  std::string name;
  {
    connect_options options;
    options.connection_name = test::unique_name("blocking-lifetime");
    auto conn = test::open_blocking(options);
    // The I/O thread, and the one Asio's resolver keeps.
    CHECK(test::thread_count() > threads_before);
    survivor = conn.open_channel();
    auto q = survivor.queue_declare("", {.exclusive = true});
    pull = survivor.consume(q.queue);
    survivor.basic_consume(q.queue, [](blocking::channel&, const message&) {});
  }
  CHECK(test::thread_count_becomes(threads_before));
  // Handles that outlived the connection: calls fail, queries answer.
  std::error_code ec;
  survivor.queue_declare("", {}, {}, ec);
  CHECK(ec == errc::connection_closed);
  CHECK_FALSE(survivor.is_open());
  pull.next(1s, ec);
  CHECK(ec == errc::connection_closed);
  CHECK_THROWS_AS(survivor.start_consuming(1s), error);
  survivor = {};
  pull = {};
}

TEST_CASE("blocking lifetime: close() fails waiting calls; a second close does nothing") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  auto cons = ch.consume(q.queue);
  std::error_code waiting_ec;
  std::thread waiter([&] { cons.next(30s, waiting_ec); });
  std::error_code consuming_ec;
  auto ch2 = conn.open_channel();
  ch2.basic_consume(q.queue, [](blocking::channel&, const message&) {});
  std::thread consuming([&] { ch2.start_consuming(30s, consuming_ec); });
  std::this_thread::sleep_for(100ms);
  const auto start = clock_type::now();
  conn.close();
  waiter.join();
  consuming.join();
  CHECK(clock_type::now() - start < 10s);
  CHECK(waiting_ec == errc::connection_closed);
  CHECK(consuming_ec == errc::connection_closed);
  CHECK_FALSE(conn.is_open());
  std::error_code ec;
  conn.close(200, "again", {}, ec);
  CHECK_FALSE(ec);
  conn.open_channel({}, ec);
  CHECK(ec == errc::connection_closed);
}

TEST_CASE("blocking lifetime: a connection closed by the broker fails calls with 320") {
  connect_options options;
  options.connection_name = test::unique_name("blocking-forced");
  auto conn = test::open_blocking(options);
  auto ch = conn.open_channel();
  const std::string pid = test::connection_pid(options.connection_name);
  REQUIRE_FALSE(pid.empty());
  auto r = test::rabbitmqctl("close_connection '" + pid + "' 'closed by the test'");
  REQUIRE(r.status == 0);
  REQUIRE(test::eventually([&] { return !conn.is_open(); }, 10000ms));
  CHECK(conn.close_reason().reply_code() == 320);
  std::error_code ec;
  ch.queue_declare("", {}, {}, ec);
  CHECK(ec);
  // Destroying it now is quick and clean.
}

TEST_CASE("blocking: a connection moved, and moved onto another") {
  const int threads_before = test::settled_thread_count();
  auto a = test::open_blocking();
  const int one = test::thread_count() - threads_before;  // the I/O thread and Asio's resolver
  CHECK(one >= 1);
  auto b = test::open_blocking();
  CHECK(test::thread_count_becomes(threads_before + 2 * one));
  blocking::connection c(std::move(a));
  CHECK_FALSE(a);
  CHECK(c.is_open());
  c = std::move(b);  // the first connection is closed here
  CHECK(test::thread_count_becomes(threads_before + one));
  CHECK(c.is_open());
  c.close();
  CHECK(test::thread_count_becomes(threads_before));
}
