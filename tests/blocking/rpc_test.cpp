// Request/reply over direct reply-to (client/rpc.hpp) against the broker:
// 1000 calls round-trip, calls from several threads at once, a call nobody
// answers times out and its late reply is dropped; the coroutine API's
// rpc_client directly too.
#include "warren/client/rpc.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "blocking_harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

// A server on a connection of its own: consumes `queue` and answers each
// request to its reply_to, with its correlation_id, "re: <body>", after
// `delay` when the body says "slow".
class echo_server {
 public:
  explicit echo_server(std::chrono::milliseconds delay = 0ms) : delay_(delay) {
    conn_ = test::open_blocking();
    ch_ = conn_.open_channel();
    queue_ = ch_.queue_declare("", {.exclusive = true}).queue;
    ch_.basic_consume(queue_, [this](blocking::channel& c, const message& m) {
      if (m.body == "slow") std::this_thread::sleep_for(delay_);
      basic_properties props;
      props.correlation_id = m.properties.correlation_id;
      c.publish("", m.properties.reply_to.value_or(""), "re: " + m.body, props);
      c.ack(m.delivery_tag);
      ++answered_;  // after the reply: callers may see theirs first
    });
    thread_ = std::thread([this] { ch_.start_consuming(); });
  }
  ~echo_server() {
    ch_.stop_consuming();
    thread_.join();
  }
  const std::string& queue() const { return queue_; }
  int answered() const { return answered_; }

 private:
  std::chrono::milliseconds delay_;
  blocking::connection conn_;
  blocking::channel ch_;
  std::string queue_;
  std::atomic<int> answered_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("rpc: 1000 calls round-trip over direct reply-to") {
  echo_server server;
  auto conn = test::open_blocking();
  auto rpc = conn.open_rpc_client();
  for (int i = 0; i < 1000; ++i) {
    const std::string body = "request " + std::to_string(i);
    auto reply = rpc.call("", server.queue(), body, 10s);
    REQUIRE(reply.body == "re: " + body);
    REQUIRE(reply.properties.correlation_id.has_value());
  }
  CHECK(test::eventually([&] { return server.answered() == 1000; }));
  CHECK(rpc.late_replies() == 0);
  // Properties of the caller's own go along; correlation_id and reply_to are the client's.
  basic_properties props;
  props.content_type = "text/plain";
  props.correlation_id = "overwritten";
  auto reply = rpc.call("", server.queue(), "with properties", props, 10s);
  CHECK(reply.body == "re: with properties");
  CHECK(reply.properties.correlation_id != std::optional<std::string>("overwritten"));
}

TEST_CASE("rpc: calls from several threads share one client, each gets its own reply") {
  echo_server server;
  auto conn = test::open_blocking();
  auto rpc = conn.open_rpc_client();
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const std::string body = std::to_string(t) + "/" + std::to_string(i);
        std::error_code ec;
        auto reply = rpc.call("", server.queue(), body, 10s, ec);
        if (ec || reply.body != "re: " + body) ++wrong;
      }
    });
  }
  for (auto& c : callers) c.join();
  CHECK(wrong.load() == 0);
  CHECK(test::eventually([&] { return server.answered() == 400; }));
}

TEST_CASE("rpc: a call nobody answers times out; a late reply is dropped and counted") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  const auto nobody = ch.queue_declare("", {.exclusive = true}).queue;  // no consumer
  auto rpc = conn.open_rpc_client();
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  auto none = rpc.call("", nobody, "hello?", 300ms, ec);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(ec == errc::timeout);
  CHECK(none.body.empty());
  CHECK(took >= 290ms);
  CHECK(took < 5s);
  CHECK_THROWS_AS(rpc.call("", nobody, "hello again?", 100ms), error);

  // A server slower than the caller's patience: the reply comes late.
  echo_server slow(600ms);
  rpc.call("", slow.queue(), "slow", 200ms, ec);
  CHECK(ec == errc::timeout);
  CHECK(test::eventually([&] { return rpc.late_replies() == 1; }));
  // The client goes on working.
  CHECK(rpc.call("", slow.queue(), "quick", 10s).body == "re: quick");
}

TEST_CASE("rpc: closing the client fails its calls; an empty client fails cleanly") {
  auto conn = test::open_blocking();
  auto rpc = conn.open_rpc_client();
  rpc.close();
  std::error_code ec;
  rpc.call("", "anywhere", "x", 1s, ec);
  CHECK(ec);
  blocking::rpc_client empty;
  empty.call("", "anywhere", "x", 1s, ec);
  CHECK(ec == errc::channel_closed);
  empty.close();
}

TEST_CASE("rpc: the coroutine API's rpc_client") {
  echo_server server;
  test::run([&server]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    auto rpc = co_await rpc_client::open(conn);
    for (int i = 0; i < 50; ++i) {
      const std::string body = "coroutine " + std::to_string(i);
      auto calling = rpc.call("", server.queue(), body, 10s);
      message reply = co_await std::move(calling);
      CHECK(reply.body == "re: " + body);
    }
    CHECK(rpc.waiting() == 0);
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    auto e = co_await test::error_of(rpc.call("", q.queue, "nobody", 200ms));
    CHECK(e.code == errc::timeout);
    CHECK(rpc.waiting() == 0);
    co_await rpc.close();
    co_await conn.close();
  });
}
