// Counters, the log sink and client properties through the blocking API:
// counters read from any thread while another publishes, the sink called on
// the I/O thread, and the final counts after the connection closed.
#include <doctest/doctest.h>

#include <asio/post.hpp>
#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "blocking_harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

// Lines the sink received; the sink runs on the I/O thread, the test reads
// on its own.
struct shared_log {
  std::mutex m;
  std::vector<std::pair<log_level, std::string>> lines;

  bool has(log_level level, std::string_view part) {
    std::lock_guard lk(m);
    for (const auto& [l, text] : lines)
      if (l == level && text.find(part) != std::string::npos) return true;
    return false;
  }
  std::string dump() {
    std::lock_guard lk(m);
    std::string s;
    for (const auto& [l, text] : lines) s += std::string(to_string(l)) + ": " + text + "\n";
    return s;
  }
};

}  // namespace

TEST_CASE("blocking counters: read from another thread while one publishes") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  const auto q = ch.queue_declare("", {.exclusive = true});
  ch.confirm_select();

  constexpr int n = 500;
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    const std::string body(64, 'p');
    for (int i = 0; i < n; ++i) ch.publish_pipelined("", q.queue, body);
    ch.wait_for_confirms(10s);
    done = true;
  });
  std::uint64_t last = 0;
  bool monotonic = true;
  while (!done) {
    const connection_counters c = conn.counters();
    if (c.publishes < last) monotonic = false;
    last = c.publishes;
    std::this_thread::sleep_for(1ms);
  }
  publisher.join();
  CHECK(monotonic);

  const connection_counters c = conn.counters();
  CHECK(c.publishes == n);
  CHECK(c.acks == n);
  CHECK(c.nacks == 0);
  CHECK(c.bytes_out > n * 64);
  CHECK(test::ready(ch, q.queue) == n);

  auto cons = ch.consume(q.queue, {.no_ack = true});
  for (int i = 0; i < n; ++i) REQUIRE(cons.next(5s));
  CHECK(conn.counters().deliveries == n);

  // Also from the I/O thread itself, where the copy is taken directly.
  std::promise<std::uint64_t> on_io;
  asio::post(conn.get_executor(), [&] { on_io.set_value(conn.counters().deliveries); });
  CHECK(on_io.get_future().get() == n);

  const connection_counters open_counts = conn.counters();
  conn.close();
  const connection_counters closed = conn.counters();
  CHECK(closed.publishes == n);
  CHECK(closed.deliveries == n);
  CHECK(closed.frames_out > open_counts.frames_out);  // connection.close went out
}

TEST_CASE("blocking log and client properties: rabbitmqctl sees both sides") {
  auto log = std::make_shared<shared_log>();
  const std::string name = test::unique_name("blocking-observability");
  connect_options o;
  o.connection_name = name;
  o.client_properties.add("application", "warren-blocking-test");
  o.log = [log](log_level level, std::string_view text) {
    std::lock_guard lk(log->m);
    log->lines.emplace_back(level, std::string(text));
  };
  auto conn = test::open_blocking(o);
  CHECK(log->has(log_level::info, "connected to "));

  const std::string row = test::connection_row(test::list_connections("name"), name);
  CHECK(row.find("-> ") != std::string::npos);  // found by its connection_name
  const std::string table = test::list_connections("name");
  CHECK(table.find("{\"application\",\"warren-blocking-test\"}") != std::string::npos);

  const std::string pid = test::connection_pid(name);
  REQUIRE_FALSE(pid.empty());
  REQUIRE(test::rabbitmqctl("close_connection '" + pid + "' 'closed by the blocking test'").status ==
          0);
  CHECK(test::eventually([&] { return !conn.is_open(); }));
  INFO(log->dump());
  CHECK(log->has(log_level::warning,
                 "the broker closed the connection: 320 CONNECTION_FORCED - closed by the blocking test"));
  CHECK(conn.close_reason().reply_code() == 320);
  CHECK(conn.counters().frames_in >= 4);  // the handshake and connection.close
}
