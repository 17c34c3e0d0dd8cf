// The driver over an in-memory transport: flushing, heartbeats, request
// deadlines and failures, against a broker played by the test.
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <optional>

#include "core_script.hpp"
#include "memory_transport.hpp"
#include "warren/client/connection.hpp"
#include "warren/client/driver.hpp"

using namespace warren;
using namespace warren::test;
using namespace std::chrono_literals;

namespace {

asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// The broker's end of a memory_link: reads the client's frames, writes its own.
class memory_broker {
 public:
  explicit memory_broker(asio::any_io_executor ex) : link(std::make_shared<memory_link>(ex)) {
    parser_.set_frame_max(0xFFFFFFFFu);
  }
  // A read still pending holds the driver, which holds the link: let go.
  ~memory_broker() {
    link->reader = nullptr;
    link->writer = nullptr;
  }
  memory_broker(const memory_broker&) = delete;
  memory_broker& operator=(const memory_broker&) = delete;

  std::shared_ptr<memory_link> link;

  template <class M>
  void send(std::uint16_t ch, const M& m) {
    link->broker_write(method_frame(ch, m));
  }
  template <class M>
  void send_message(std::uint16_t ch, const M& m, std::string_view body) {
    byte_vec all = method_frame(ch, m);
    byte_vec content = content_frames(ch, body);
    all.insert(all.end(), content.begin(), content.end());
    link->broker_write(all);
  }
  void send_heartbeat() { link->broker_write({8, 0, 0, 0, 0, 0, 0, 0xCE}); }

  // The next frame the client writes (waiting up to 5 s for it).
  asio::awaitable<written_frame> next_frame() {
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    for (;;) {
      byte_vec in = link->broker_read();
      if (!header_seen_ && in.size() >= 8) {
        REQUIRE(byte_vec(in.begin(), in.begin() + 8) == byte_vec(protocol_header.begin(), protocol_header.end()));
        in.erase(in.begin(), in.begin() + 8);
        header_seen_ = true;
      }
      parser_.feed(view(in));
      frame_view f;
      std::error_code ec;
      auto st = parser_.next(f, ec);
      REQUIRE(st != frame_parser::status::error);
      if (st == frame_parser::status::frame)
        co_return written_frame{f.type, f.channel, byte_vec(f.payload.begin(), f.payload.end())};
      REQUIRE(std::chrono::steady_clock::now() < give_up);
      co_await sleep_for(5ms);
    }
  }

  // The next method frame, which must be M on `ch` (heartbeats are skipped).
  template <class M>
  asio::awaitable<M> expect(std::uint16_t ch) {
    written_frame f = co_await next_frame();
    while (f.type == frame_type::heartbeat) f = co_await next_frame();
    INFO("expected ", M::name, ", got ", f.describe());
    REQUIRE(f.key() == M::key);
    REQUIRE(f.channel == ch);
    M m;
    REQUIRE(!decode_method_as(view(f.payload), m));
    co_return m;
  }

  asio::awaitable<void> handshake(std::uint16_t heartbeat) {
    send(0, broker_start());
    co_await expect<connection_start_ok>(0);
    send(0, broker_tune(2047, 131072, heartbeat));
    co_await expect<connection_tune_ok>(0);
    co_await expect<connection_open>(0);
    send(0, connection_open_ok{});
  }

 private:
  frame_parser parser_;
  bool header_seen_ = false;
};

const connect_options default_options;

// Connects over the broker's link; the broker answers the handshake. (The
// options by reference: g++ 12 destroys a defaulted {} argument of a
// coroutine twice.)
asio::awaitable<connection> open(memory_broker& b, std::uint16_t heartbeat = 0,
                                 const connect_options& opts = default_options) {
  auto ex = co_await asio::this_coro::executor;
  detail::core_config cfg;
  cfg.params.heartbeat = 60;
  auto d = std::make_shared<detail::driver>(ex, cfg, opts);
  asio::co_spawn(ex, b.handshake(heartbeat), asio::detached);
  auto opening = d->open(std::make_unique<memory_transport>(b.link), 5000ms);
  co_await std::move(opening);
  co_return detail::make_connection(std::move(d));
}

asio::awaitable<channel> open_channel(connection& c, memory_broker& b) {
  auto ex = co_await asio::this_coro::executor;
  asio::co_spawn(
      ex,
      [&b]() -> asio::awaitable<void> {
        co_await b.expect<channel_open>(1);
        b.send(1, channel_open_ok{});
      },
      asio::detached);
  auto ch = co_await c.open_channel();
  co_return ch;
}

// Runs `test` to its end, or fails after `limit`: a hang is a failure.
void run(std::function<asio::awaitable<void>(memory_broker&)> test,
         std::chrono::seconds limit = 10s) {
  asio::io_context io;
  memory_broker broker(io.get_executor());
  bool finished = false;
  std::exception_ptr failure;
  asio::co_spawn(io, test(broker), [&](std::exception_ptr e) {
    finished = true;
    failure = e;
  });
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!finished && std::chrono::steady_clock::now() < give_up) io.run_one_for(100ms);
  REQUIRE_MESSAGE(finished, "the test hung");
  if (failure) std::rethrow_exception(failure);
}

// The error `op` ends with (nothing if it succeeds).
template <class T>
asio::awaitable<std::optional<error_info>> failure_of(asio::awaitable<T> op) {
  try {
    co_await std::move(op);
  } catch (const error& e) {
    co_return e.info();
  }
  co_return std::nullopt;
}

}  // namespace

TEST_CASE("driver: handshake, channel and a request over the memory transport") {
  run([](memory_broker& b) -> asio::awaitable<void> {
    auto conn = co_await open(b);
    auto ch = co_await open_channel(conn, b);
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&b]() -> asio::awaitable<void> {
          auto m = co_await b.expect<queue_declare>(1);
          queue_declare_ok ok;
          ok.queue = m.queue;
          ok.message_count = 3;
          b.send(1, ok);
        },
        asio::detached);
    auto q = co_await ch.queue_declare("jobs");
    CHECK(q.queue == "jobs");
    CHECK(q.message_count == 3);
  });
}

TEST_CASE("driver: what is queued before the service pass goes out in one write") {
  run([](memory_broker& b) -> asio::awaitable<void> {
    auto conn = co_await open(b);
    auto ch = co_await open_channel(conn, b);
    b.link->broker_read();
    const std::size_t before = b.link->write_calls;
    // None of these waits: all are queued before the posted pass runs.
    for (int i = 0; i < 100; ++i) co_await ch.publish_pipelined("", "q", "body");
    ch.ack(1);
    co_await sleep_for(10ms);
    CHECK(b.link->write_calls == before + 1);
    // 100 publishes (method, header, body frames) and one ack, in that order.
    int methods = 0;
    for (int i = 0; i < 301; ++i) {
      written_frame f = co_await b.next_frame();
      if (f.type == frame_type::method) ++methods;
      if (i == 300) CHECK(f.key() == basic_ack::key);
    }
    CHECK(methods == 101);
  });
}

TEST_CASE("driver: an exception in the read loop fails the connection loudly") {
  run([](memory_broker& b) -> asio::awaitable<void> {
    auto conn = co_await open(b);
    auto ch = co_await open_channel(conn, b);
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(
        ex,
        [&b]() -> asio::awaitable<void> {
          co_await b.expect<queue_declare>(1);
          b.link->throw_on_read = true;
          b.send_heartbeat();  // completes the pending read; the next one throws
        },
        asio::detached);
    auto why = co_await failure_of(ch.queue_declare("jobs"));
    REQUIRE(why.has_value());
    CHECK(why->code == errc::internal_error);
    CHECK(why->text.find("injected read failure") != std::string::npos);
    CHECK_FALSE(conn.is_open());
    CHECK(b.link->client_closed);
  });
}

TEST_CASE("driver: a heartbeat timeout ends the connection while a write is pending") {
  run([](memory_broker& b) -> asio::awaitable<void> {
    auto conn = co_await open(b, 1);
    auto ch = co_await open_channel(conn, b);
    // The broker stops reading and falls silent in the middle of a 12 MiB publish.
    b.link->window = b.link->to_broker.size() + 64 * 1024;
    const std::string body(12u << 20, 'x');
    co_await ch.publish("", "q", body);
    const auto start = std::chrono::steady_clock::now();
    while (conn.is_open() && std::chrono::steady_clock::now() - start < 6s) co_await sleep_for(50ms);
    CHECK_FALSE(conn.is_open());
    CHECK(conn.close_reason().code == errc::heartbeat_timeout);
    CHECK(b.link->client_closed);  // the transport is closed, the write abandoned
    CHECK(std::chrono::steady_clock::now() - start < 4s);
  });
}

TEST_CASE("driver: dead-peer detection goes on while reading is paused") {
  bool broker_alive = false;
  SUBCASE("the broker died") { broker_alive = false; }
  SUBCASE("the broker lives; its heartbeats wait unread") { broker_alive = true; }
  run([broker_alive](memory_broker& b) -> asio::awaitable<void> {
    auto conn = co_await open(b, 1);
    auto ch = co_await open_channel(conn, b);
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&b]() -> asio::awaitable<void> {
          co_await b.expect<basic_qos>(1);
          b.send(1, basic_qos_ok{});
          co_await b.expect<basic_consume>(1);
          basic_consume_ok ok;
          ok.consumer_tag = "ctag";
          b.send(1, ok);
          basic_deliver d;
          d.consumer_tag = "ctag";
          for (std::uint64_t tag = 1; tag <= 3; ++tag) {
            d.delivery_tag = tag;
            b.send_message(1, d, "x");
          }
        },
        asio::detached);
    auto consumer = co_await ch.consume("q", {.prefetch = 1});
    // Nobody reads: the stream goes over its capacity and reading pauses.
    const auto start = std::chrono::steady_clock::now();
    while (conn.is_open() && std::chrono::steady_clock::now() - start < 4s) {
      if (broker_alive) b.send_heartbeat();  // waits unread in the transport
      co_await sleep_for(300ms);
    }
    if (broker_alive) {
      CHECK(conn.is_open());
      CHECK(consumer.buffered() >= 2);
    } else {
      CHECK_FALSE(conn.is_open());
      CHECK(conn.close_reason().code == errc::heartbeat_timeout);
    }
  });
}

TEST_CASE("driver: a request the broker never answers times out and closes its channel") {
  run([](memory_broker& b) -> asio::awaitable<void> {
    connect_options opts;
    opts.request_timeout = 300ms;
    auto conn = co_await open(b, 0, opts);
    auto ch = co_await open_channel(conn, b);
    const auto start = std::chrono::steady_clock::now();
    auto why = co_await failure_of(ch.queue_declare("jobs"));
    REQUIRE(why.has_value());
    CHECK(why->code == errc::timeout);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK_FALSE(ch.is_open());
    CHECK(conn.is_open());
    co_await b.expect<queue_declare>(1);
    co_await b.expect<channel_close>(1);
  });
}

TEST_CASE("driver: a broker that floods replies it never reads is cut off") {
  run([](memory_broker& b) -> asio::awaitable<void> {
    auto conn = co_await open(b);
    auto ch = co_await open_channel(conn, b);
    b.link->window = b.link->to_broker.size();  // reads nothing more
    channel_flow stop;
    stop.active = false;
    const byte_vec one = method_frame(1, stop);
    byte_vec batch;
    for (int i = 0; i < 1000; ++i) batch.insert(batch.end(), one.begin(), one.end());
    for (int i = 0; i < 1000 && conn.is_open(); ++i) {
      b.link->broker_write(batch);
      co_await sleep_for(1ms);
    }
    CHECK_FALSE(conn.is_open());
    CHECK(conn.close_reason().code == errc::output_overflow);
    CHECK(b.link->client_closed);
  });
}

namespace {

// Two channels whose queue.declare-ok arrive in one read; `first` is what the
// caller on channel 1 does once resumed. Returns the order of resumptions as
// seen after each handler the io_context ran, and what escaped run_one.
struct two_replies {
  asio::io_context io;
  memory_broker broker{io.get_executor()};
  std::optional<connection> conn;
  std::optional<channel> ch1, ch2;
  std::vector<int> order;
  bool ready = false;

  void start() {
    asio::co_spawn(
        io,
        [this]() -> asio::awaitable<void> {
          conn = co_await open(broker);
          ch1 = co_await open_channel(*conn, broker);
          auto ex = co_await asio::this_coro::executor;
          asio::co_spawn(
              ex,
              [this]() -> asio::awaitable<void> {
                co_await broker.expect<channel_open>(2);
                broker.send(2, channel_open_ok{});
              },
              asio::detached);
          ch2 = co_await conn->open_channel();
          ready = true;
        },
        asio::detached);
    pump_until([&] { return ready; });
  }
  template <class F>
  void pump_until(F done) {
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < give_up) io.run_one_for(100ms);
    REQUIRE(done());
  }
  // Both declares are sent; the broker answers both with one write.
  void answer_both() {
    bool sent = false;
    asio::co_spawn(
        io,
        [this, &sent]() -> asio::awaitable<void> {
          co_await broker.expect<queue_declare>(1);
          co_await broker.expect<queue_declare>(2);
          byte_vec both;
          for (std::uint16_t c : {1, 2}) {
            queue_declare_ok ok;
            ok.queue = c == 1 ? "one" : "two";
            byte_vec f = method_frame(c, ok);
            both.insert(both.end(), f.begin(), f.end());
          }
          broker.link->broker_write(both);
          sent = true;
        },
        asio::detached);
    pump_until([&] { return sent; });
  }
};

}  // namespace

TEST_CASE("driver: callers one read completes resume in order when the read handler ends") {
  two_replies t;
  t.start();
  for (int c : {1, 2})
    asio::co_spawn(
        t.io,
        [&t, c]() -> asio::awaitable<void> {
          auto ok = co_await (c == 1 ? t.ch1 : t.ch2)->queue_declare(c == 1 ? "one" : "two");
          CHECK(ok.queue == (c == 1 ? "one" : "two"));
          t.order.push_back(c);
        },
        asio::detached);
  t.answer_both();
  // The handler that reads both replies resumes both callers, in order: no
  // trip through the scheduler for either.
  t.pump_until([&] { return !t.order.empty(); });
  CHECK(t.order == std::vector<int>{1, 2});
}

TEST_CASE("driver: a resumed caller whose handler throws loses none of the others") {
  two_replies t;
  t.start();
  asio::co_spawn(
      t.io,
      [&t]() -> asio::awaitable<void> {
        co_await t.ch1->queue_declare("one");
        t.order.push_back(1);
        throw std::runtime_error("thrown by a resumed caller");
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  asio::co_spawn(
      t.io,
      [&t]() -> asio::awaitable<void> {
        co_await t.ch2->queue_declare("two");
        t.order.push_back(2);
      },
      asio::detached);
  t.answer_both();
  // The exception leaves run_one as it would from a posted handler...
  std::string thrown;
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (t.order.size() < 2 && std::chrono::steady_clock::now() < give_up) {
    try {
      t.io.run_one_for(100ms);
    } catch (const std::runtime_error& e) {
      thrown = e.what();
    }
  }
  CHECK(thrown == "thrown by a resumed caller");
  // ...and the caller after it still resumes, on a connection that works.
  CHECK(t.order == std::vector<int>{1, 2});
  bool again = false;
  asio::co_spawn(
      t.io,
      [&t, &again]() -> asio::awaitable<void> {
        asio::co_spawn(
            co_await asio::this_coro::executor,
            [&t]() -> asio::awaitable<void> {
              auto m = co_await t.broker.expect<queue_declare>(2);
              queue_declare_ok ok;
              ok.queue = m.queue;
              t.broker.send(2, ok);
            },
            asio::detached);
        auto ok = co_await t.ch2->queue_declare("three");
        again = ok.queue == "three";
      },
      asio::detached);
  t.pump_until([&] { return again; });
  CHECK(t.conn->is_open());
}

TEST_CASE("driver: what the frames call for is written before the callers they complete resume") {
  run([](memory_broker& b) -> asio::awaitable<void> {
    auto conn = co_await open(b);
    auto ch = co_await open_channel(conn, b);
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&b]() -> asio::awaitable<void> {
          co_await b.expect<queue_declare>(1);
          b.link->broker_read();  // what came before is not what this test looks for
          channel_close close;
          close.reply_code = 404;
          close.reply_text = "NOT_FOUND - no queue 'jobs'";
          close.class_id = queue_declare::key >> 16;
          close.method_id = queue_declare::key & 0xFFFF;
          b.send(1, close);
        },
        asio::detached);
    auto why = co_await failure_of(ch.queue_declare("jobs", {.passive = true}));
    REQUIRE(why.has_value());
    CHECK(why->reply_code() == 404);
    // The caller resumes with channel.close-ok already handed to the
    // transport: a caller that now blocks its thread holds nothing back.
    CHECK_FALSE(b.link->to_broker.empty());
    auto ok = co_await b.expect<channel_close_ok>(1);
    (void)ok;
  });
}
