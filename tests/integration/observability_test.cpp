// What a connection tells about itself, against the real broker: the user's
// client properties as rabbitmqctl shows them, counters after a known
// workload (and across a recovery), and the log sink's lines for a
// connection the broker closes.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

struct log_line {
  log_level level;
  std::string text;
};
using log_lines = std::shared_ptr<std::vector<log_line>>;

// A sink keeping every line. Shared: the connection may log (its close)
// after the test body has returned.
log_sink keep(const log_lines& lines) {
  return [lines](log_level level, std::string_view text) {
    lines->push_back({level, std::string(text)});
  };
}

bool has_line(const log_lines& lines, log_level level, std::string_view part) {
  for (const auto& l : *lines)
    if (l.level == level && l.text.find(part) != std::string::npos) return true;
  return false;
}

std::string dump(const log_lines& lines) {
  std::string s;
  for (const auto& l : *lines) s += std::string(to_string(l.level)) + ": " + l.text + "\n";
  return s;
}

// The line of `rabbitmqctl list_connections client_properties` for the
// connection named `name`.
std::string properties_of(const std::string& name) {
  const std::string table = test::list_connections("name");
  std::size_t at = table.find("{\"connection_name\",\"" + name + "\"}");
  if (at == std::string::npos) return {};
  const std::size_t begin = table.rfind('\n', at);
  const std::size_t end = table.find('\n', at);
  return table.substr(begin == std::string::npos ? 0 : begin + 1,
                      end == std::string::npos ? std::string::npos : end - begin - 1);
}

// Publishes `n` 64-byte messages to `queue`, confirmed.
asio::awaitable<void> publish_confirmed(channel& ch, const std::string& queue, int n) {
  const std::string body(64, 'm');
  for (int i = 0; i < n; ++i) {
    auto pending = ch.publish_pipelined("", queue, body);
    co_await std::move(pending);
  }
  auto waiting = ch.wait_for_confirms();
  confirm_summary s = co_await std::move(waiting);
  CHECK(s.acked == static_cast<std::uint64_t>(n));
}

}  // namespace

TEST_CASE("client properties: rabbitmqctl list_connections shows the user's, next to the client's") {
  test::run([]() -> asio::awaitable<void> {
    const std::string name = test::unique_name("client-properties");
    connect_options o;
    o.connection_name = name;
    field_table caps;
    caps.add("my_feature", true).add("basic.nack", false);
    o.client_properties.add("application", "warren-observability-test")
        .add("team_id", std::int32_t{7})
        .add("capabilities", std::move(caps));
    auto conn = co_await test::open_connection(o);
    const std::string line = properties_of(name);
    INFO(line);
    REQUIRE_FALSE(line.empty());
    CHECK(line.find("{\"application\",\"warren-observability-test\"}") != std::string::npos);
    CHECK(line.find("{\"team_id\",7}") != std::string::npos);
    CHECK(line.find("{\"product\",\"warren\"}") != std::string::npos);
    CHECK(line.find("{\"my_feature\",true}") != std::string::npos);
    CHECK(line.find("{\"basic.nack\",true}") != std::string::npos);
    CHECK(line.find("{\"publisher_confirms\",true}") != std::string::npos);
    // The capabilities the client relies on still work: a confirm and a nack-able channel.
    auto ch = co_await conn.open_channel();
    co_await ch.confirm_select();
    co_await conn.close();
  });
}

TEST_CASE("client properties: a key the broker cannot be sent fails connect at once") {
  test::run([]() -> asio::awaitable<void> {
    connect_options o;
    o.client_properties.add(std::string(300, 'k'), true);
    auto e = co_await test::error_of(test::open_connection(o));
    CHECK(e.code == std::errc::invalid_argument);
    CHECK(e.text.find("client_properties") != std::string::npos);
  });
}

TEST_CASE("counters: a known workload") {
  test::run([]() -> asio::awaitable<void> {
    auto conn = co_await test::open_connection();
    const connection_counters start = conn.counters();
    CHECK(start.frames_in == 3);   // start, tune, open-ok
    CHECK(start.frames_out == 3);  // start-ok, tune-ok, open
    CHECK(start.bytes_in > 0);
    CHECK(start.bytes_out > 8);  // the protocol header and three frames

    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    co_await ch.confirm_select();
    co_await publish_confirmed(ch, q.queue, 100);
    auto lost = co_await ch.publish("", test::unique_name("nowhere"), "lost", {.mandatory = true});
    CHECK(lost.status == publish_status::returned);
    auto cons = co_await ch.consume(q.queue, {.no_ack = true});
    for (int i = 0; i < 100; ++i) {
      auto m = co_await test::next_within(cons);
      CHECK(m.body.size() == 64);
    }

    const connection_counters c = conn.counters();
    CHECK(c.publishes == 101);
    CHECK(c.acks == 101);  // the returned publish is acked too
    CHECK(c.nacks == 0);
    CHECK(c.returns == 1);
    CHECK(c.deliveries == 100);
    CHECK(c.recoveries == 0);
    CHECK(c.heartbeats_missed == 0);
    // Out: the handshake, channel.open, queue.declare, confirm.select,
    // 101 publishes of 3 frames, basic.consume, and any heartbeats.
    CHECK(c.frames_out == 3 + 1 + 1 + 1 + 3 * 101 + 1 + c.heartbeats_sent);
    CHECK(c.bytes_out > 101 * 64);
    // In: at least the handshake, the three replies, the return (3 frames),
    // one ack, consume-ok and 100 deliveries of 3 frames.
    CHECK(c.frames_in >= 3 + 3 + 3 + 1 + 1 + 300);
    CHECK(c.bytes_in > 100 * 64 + 8 * c.frames_in);
    co_await conn.close();
    const connection_counters after = conn.counters();
    CHECK(after.frames_out == c.frames_out + 1);  // connection.close
    CHECK(after.frames_in == c.frames_in + 1);    // close-ok
  });
}

TEST_CASE("counters run on across a recovery; the log follows it") {
  test::run([]() -> asio::awaitable<void> {
    const std::string name = test::unique_name("counters-recovery");
    auto lines = std::make_shared<std::vector<log_line>>();
    connect_options o;
    o.connection_name = name;
    o.recovery.enabled = true;
    o.recovery.initial_backoff = 100ms;
    o.log = keep(lines);
    auto conn = co_await test::open_connection(o);
    auto ch = co_await conn.open_channel();
    const std::string queue = test::unique_name("counters-recovery-q");
    co_await ch.queue_declare(queue, {.auto_delete = false});
    co_await ch.confirm_select();
    co_await publish_confirmed(ch, queue, 20);
    auto held = co_await ch.get(queue);  // not acked: requeued by the close
    REQUIRE(held.has_value());
    const connection_counters before = conn.counters();

    const std::string pid = test::connection_pid(name);
    REQUIRE_FALSE(pid.empty());
    REQUIRE(test::rabbitmqctl("close_connection '" + pid + "' 'counters test'").status == 0);
    for (int i = 0; i < 200 && (conn.counters().recoveries == 0 || !conn.is_open()); ++i)
      co_await test::sleep_for(50ms);
    REQUIRE(conn.counters().recoveries == 1);
    CHECK_FALSE(ch.ack(held->delivery_tag));  // stale: not sent, and logged
    co_await publish_confirmed(ch, queue, 30);

    const connection_counters c = conn.counters();
    CHECK(c.publishes == 50);
    CHECK(c.acks == 50);
    CHECK(c.recoveries == 1);
    CHECK(c.frames_in > before.frames_in);
    CHECK(c.frames_out > before.frames_out + 3 * 30);
    CHECK(c.bytes_out > before.bytes_out);
    CHECK(co_await ch.queue_delete(queue) == 50);
    co_await conn.close();

    INFO(dump(lines));
    CHECK(has_line(lines, log_level::warning, "320 CONNECTION_FORCED - counters test"));
    CHECK(has_line(lines, log_level::warning, "connection lost, recovering"));
    CHECK(has_line(lines, log_level::info, "recovery: attempt 1 to amqp://"));
    CHECK(has_line(lines, log_level::info, "recovery: recovered on amqp://"));
    CHECK(has_line(lines, log_level::warning,
                   "delivery tag " + std::to_string(held->delivery_tag) +
                       " is from before the last recovery; its ack is not sent"));
  });
}

TEST_CASE("log: connecting, connected, and the broker's close from rabbitmqctl close_connection") {
  test::run([]() -> asio::awaitable<void> {
    const std::string name = test::unique_name("log-close");
    auto lines = std::make_shared<std::vector<log_line>>();
    connect_options o;
    o.connection_name = name;
    o.log = keep(lines);
    auto conn = co_await test::open_connection(o);
    const std::string pid = test::connection_pid(name);
    REQUIRE_FALSE(pid.empty());
    REQUIRE(test::rabbitmqctl("close_connection '" + pid + "' 'closed by the log test'").status == 0);
    for (int i = 0; i < 100 && conn.is_open(); ++i) co_await test::sleep_for(50ms);
    CHECK_FALSE(conn.is_open());

    INFO(dump(lines));
    const connection_params p = test::broker_params();
    const std::string where = to_uri(p, true);
    CHECK(has_line(lines, log_level::info, "connecting to " + where));
    CHECK(has_line(lines, log_level::info, "connected to " + where + " (RabbitMQ"));
    CHECK(has_line(lines, log_level::warning,
                   "the broker closed the connection: 320 CONNECTION_FORCED - closed by the log test"));
    // The password never shows.
    for (const auto& l : *lines)
      CHECK(l.text.find(p.username + ":" + p.password + "@") == std::string::npos);
  });
}

TEST_CASE("log: an endpoint that refuses, then one that answers") {
  test::run([]() -> asio::awaitable<void> {
    auto lines = std::make_shared<std::vector<log_line>>();
    connect_options o;
    o.log = keep(lines);
    connection_params shared = test::broker_params();
    std::vector<endpoint> endpoints{{"127.0.0.1", 1}, {shared.host, shared.port}};
    auto pending = connect(shared, endpoints, o);
    auto conn = co_await std::move(pending);
    CHECK(conn.is_open());
    co_await conn.close();
    INFO(dump(lines));
    CHECK(has_line(lines, log_level::warning, "cannot connect to amqp://"));
    CHECK(has_line(lines, log_level::info, "closing the connection (200"));
    CHECK(has_line(lines, log_level::info, "connection closed"));
  });
}
