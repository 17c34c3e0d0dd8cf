// What a connection tells its user about itself, scripted byte for byte: the
// user's client properties in connection.start-ok, the counters, and the
// lines the log sink receives.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core_script.hpp"
#include "warren/client/core.hpp"
#include "warren/client/log.hpp"
#include "warren/client/version.hpp"

using namespace warren;
using namespace warren::test;

namespace {

struct log_line {
  log_level level;
  std::string text;
};

// A sink that keeps every line; `lines` must outlive the core.
log_sink keep(std::vector<log_line>& lines) {
  return [&lines](log_level level, std::string_view text) {
    lines.push_back({level, std::string(text)});
  };
}

bool has_line(const std::vector<log_line>& lines, log_level level, std::string_view part) {
  for (const auto& l : lines)
    if (l.level == level && l.text.find(part) != std::string::npos) return true;
  return false;
}

std::string dump(const std::vector<log_line>& lines) {
  std::string s;
  for (const auto& l : lines) s += std::string(to_string(l.level)) + ": " + l.text + "\n";
  return s;
}

connection_start_ok start_ok_of(script& s) {
  recorder opened;
  s.core.start(opened.cb());
  s.take_raw();  // the protocol header
  s.send(0, broker_start());
  return s.expect<connection_start_ok>(0);
}

const field_value* capability(const connection_start_ok& ok, std::string_view name) {
  const field_value* caps = ok.client_properties.find("capabilities");
  REQUIRE(caps != nullptr);
  const auto* table = std::get_if<field_table>(&caps->variant());
  REQUIRE(table != nullptr);
  return table->find(name);
}

}  // namespace

TEST_CASE("client properties: the user's keys in start-ok, the client's capabilities kept") {
  detail::core_config cfg;
  cfg.connection_name = "orders";
  field_table caps;
  caps.add("basic.nack", false).add("my_feature", true);
  cfg.client_properties.add("application", "billing")
      .add("product", "billing-service")
      .add("instance", std::int32_t{42})
      .add("capabilities", std::move(caps))
      .add("connection_name", "not this one");
  script s(cfg);
  const connection_start_ok ok = start_ok_of(s);
  const field_table& props = ok.client_properties;

  REQUIRE(props.find("application") != nullptr);
  CHECK(*props.find("application") == field_value("billing"));
  REQUIRE(props.find("instance") != nullptr);
  CHECK(*props.find("instance") == field_value(std::int32_t{42}));
  // A key of the user's replaces the client's...
  CHECK(*props.find("product") == field_value("billing-service"));
  CHECK(*props.find("version") == field_value(std::string(version_string)));
  // ...but not the capabilities the client relies on, nor the connection name.
  REQUIRE(capability(ok, "basic.nack") != nullptr);
  CHECK(*capability(ok, "basic.nack") == field_value(true));
  REQUIRE(capability(ok, "my_feature") != nullptr);
  CHECK(*capability(ok, "my_feature") == field_value(true));
  CHECK(*capability(ok, "publisher_confirms") == field_value(true));
  CHECK(*props.find("connection_name") == field_value("orders"));
  std::size_t names = 0;
  for (const auto& e : props.entries) names += e.name == "connection_name" ? 1 : 0;
  CHECK(names == 1);

  SUBCASE("a connection_name key is used when the option is empty") {
    detail::core_config only_key;
    only_key.client_properties.add("connection_name", "from-properties");
    script t(only_key);
    const connection_start_ok k = start_ok_of(t);
    REQUIRE(k.client_properties.find("connection_name") != nullptr);
    CHECK(*k.client_properties.find("connection_name") == field_value("from-properties"));
  }
  SUBCASE("capabilities that are not a table are ignored") {
    detail::core_config odd;
    odd.client_properties.add("capabilities", "none");
    script t(odd);
    const connection_start_ok k = start_ok_of(t);
    CHECK(*capability(k, "consumer_cancel_notify") == field_value(true));
  }
}

TEST_CASE("client properties: a start-ok that cannot be sent fails the handshake, sends nothing") {
  detail::core_config cfg;
  SUBCASE("over the 4096 bytes allowed before tune") {
    cfg.client_properties.add("blob", std::string(5000, 'x'));
  }
  SUBCASE("a key over 255 bytes") { cfg.client_properties.add(std::string(300, 'k'), true); }
  script s(cfg);
  recorder opened;
  s.core.start(opened.cb());
  s.take_raw();
  s.send(0, broker_start());
  REQUIRE(opened.done());
  CHECK(opened.result().error);
  CHECK(opened.result().error.text.find("start-ok") != std::string::npos);
  CHECK(s.core.is_closed());
  s.expect_silence();
}

TEST_CASE("client properties: a start-ok long by its password alone is still sent") {
  // A long token as the password is the broker's to accept or refuse.
  detail::core_config cfg;
  cfg.params.password = std::string(5000, 't');
  SUBCASE("without properties") {}
  SUBCASE("with small ones") { cfg.client_properties.add("application", "billing"); }
  script s(cfg);
  const connection_start_ok ok = start_ok_of(s);
  CHECK(ok.response.size() > 5000);
  CHECK_FALSE(s.core.is_closed());
}

TEST_CASE("counters: a scripted exchange, frame by frame") {
  script s;
  s.handshake(broker_tune(2047, 131072, 10));
  // start, tune, open-ok in; start-ok, tune-ok, open out.
  CHECK(s.core.counters().frames_in == 3);
  CHECK(s.core.counters().frames_out == 3);

  const auto ch = s.open_channel();  // 1 out, 1 in
  s.confirm_select(ch);              // 1 out, 1 in
  s.publish(ch, "one");              // 3 frames: method, header, body
  s.publish(ch, "");                 // 2: no body frame
  s.publish(ch, "lost", "ex", "nowhere", true);  // 3
  prepared_publish big;
  publish_frame_args args;
  args.channel = ch;
  args.exchange = "ex";
  args.routing_key = "rk";
  REQUIRE(!big.prepare(args, basic_properties{}, s.core.publish_frame_max()));
  const std::string body(300000, 'b');  // 131064 bytes a body frame: 3 of them
  std::uint64_t seq = 0;
  REQUIRE(!s.core.publish(big, as_bytes(body), &seq));
  CHECK(seq == 4);
  s.discard();

  s.send(ch, ack(2, true));  // settles 1 and 2
  basic_return ret;
  ret.reply_code = 312;
  ret.reply_text = "NO_ROUTE";
  ret.exchange = "ex";
  ret.routing_key = "nowhere";
  s.send_message(ch, ret, "lost");  // 3 in
  s.send(ch, ack(3));
  s.send(ch, nack(4));

  auto consumer = s.consume(ch, "q", "ctag");  // 1 out, 1 in
  basic_deliver d;
  d.consumer_tag = "ctag";
  d.delivery_tag = 1;
  s.send_message(ch, d, "a");  // 3 in
  d.delivery_tag = 2;
  s.send_message(ch, d, "bb");  // 3 in
  CHECK(s.next_delivery(consumer).body == "a");
  CHECK(s.next_delivery(consumer).body == "bb");
  REQUIRE_FALSE(s.core.send(ch, ack(2, true)));  // 1 out
  s.discard();

  // Heartbeats: the first tick follows a write, the second sends one, and
  // two ticks without a read are a whole interval missed.
  s.core.heartbeat_tick();
  s.core.heartbeat_tick();
  s.core.heartbeat_tick();
  s.discard();

  const connection_counters c = s.core.counters();
  CHECK(c.frames_in == 3 + 1 + 1 + 1 + 3 + 1 + 1 + 1 + 6);
  CHECK(c.frames_out == 3 + 1 + 1 + 3 + 2 + 3 + 5 + 1 + 1 + 1);
  CHECK(c.bytes_in == s.bytes_fed);
  CHECK(c.bytes_out == s.bytes_taken);
  CHECK(c.publishes == 4);
  CHECK(c.acks == 3);
  CHECK(c.nacks == 1);
  CHECK(c.returns == 1);
  CHECK(c.deliveries == 2);
  CHECK(c.heartbeats_sent == 1);
  CHECK(c.heartbeats_missed == 1);
  CHECK(c.recoveries == 0);
  CHECK(s.core.is_open());
}

TEST_CASE("counters add up (what recovery does across connections)") {
  connection_counters a;
  a.frames_in = 1;
  a.publishes = 2;
  a.recoveries = 1;
  connection_counters b;
  b.frames_in = 10;
  b.heartbeats_missed = 3;
  a += b;
  CHECK(a.frames_in == 11);
  CHECK(a.publishes == 2);
  CHECK(a.heartbeats_missed == 3);
  CHECK(a.recoveries == 1);
}

TEST_CASE("log: the broker closing a channel and the connection, its text escaped") {
  std::vector<log_line> lines;
  detail::core_config cfg;
  cfg.params.password = "s3cret-password";
  cfg.log = keep(lines);
  script s(cfg);
  s.handshake();
  CHECK(has_line(lines, log_level::debug, "tuned: channel_max 2047, frame_max 131072"));
  const auto ch = s.open_channel();

  channel_close cc;
  cc.reply_code = 404;
  cc.reply_text = "NOT_FOUND - no queue 'x'";
  cc.class_id = 50;
  cc.method_id = 10;
  s.send(ch, cc);
  s.expect<channel_close_ok>(ch);
  CHECK(has_line(lines, log_level::warning,
                 "the broker closed channel 1: 404 NOT_FOUND - no queue 'x' (queue.declare)"));

  connection_close close;
  close.reply_code = 320;
  close.reply_text = "CONNECTION_FORCED - bye\n\x1b[2J";
  s.send(0, close);
  s.expect<connection_close_ok>(0);
  CHECK(s.core.is_closed());
  INFO(dump(lines));
  CHECK(has_line(lines, log_level::warning,
                 "the broker closed the connection: 320 CONNECTION_FORCED - bye\\x0a\\x1b[2J"));
  // One line for the close, not a second "failed" one.
  CHECK_FALSE(has_line(lines, log_level::error, ""));
  for (const auto& l : lines) {
    CHECK(l.text.find('\n') == std::string::npos);
    CHECK(l.text.find('\x1b') == std::string::npos);
    CHECK(l.text.find("s3cret") == std::string::npos);
  }
}

TEST_CASE("log: the client's close, blocked and unblocked, missed heartbeats") {
  std::vector<log_line> lines;
  detail::core_config cfg;
  cfg.log = keep(lines);

  SUBCASE("close") {
    script s(cfg);
    s.handshake();
    recorder closed;
    s.core.close(200, "done here", s.core.next_op_id(), closed.cb());
    s.expect<connection_close>(0);
    s.send(0, connection_close_ok{});
    REQUIRE(closed.ok());
    INFO(dump(lines));
    CHECK(has_line(lines, log_level::info, "closing the connection (200 done here)"));
    CHECK(has_line(lines, log_level::info, "connection closed"));
    CHECK_FALSE(has_line(lines, log_level::error, ""));
  }
  SUBCASE("blocked") {
    script s(cfg);
    s.handshake();
    connection_blocked b;
    b.reason = "low on memory";
    s.send(0, b);
    s.send(0, connection_unblocked{});
    INFO(dump(lines));
    CHECK(has_line(lines, log_level::warning, "the broker blocked publishing: low on memory"));
    CHECK(has_line(lines, log_level::info, "the broker unblocked publishing"));
  }
  SUBCASE("heartbeats") {
    script s(cfg);
    s.handshake(broker_tune(2047, 131072, 10));
    for (int i = 0; i < 5; ++i) s.core.heartbeat_tick();
    INFO(dump(lines));
    CHECK(s.core.close_reason().code == errc::heartbeat_timeout);
    std::size_t missed = 0;
    for (const auto& l : lines)
      missed += l.text == "heartbeat missed: nothing from the broker for 10 s" ? 1 : 0;
    CHECK(missed == 1);
    CHECK(has_line(lines, log_level::error, "connection failed: no data from the broker for 20 s"));
    CHECK(s.core.counters().heartbeats_missed == 2);
  }
}

TEST_CASE("log: a sink that throws changes nothing") {
  int calls = 0;
  detail::core_config cfg;
  cfg.log = [&calls](log_level, std::string_view) {
    ++calls;
    throw std::runtime_error("sink failure");
  };
  script s(cfg);
  s.handshake();
  const auto ch = s.open_channel();
  connection_close close;
  close.reply_code = 320;
  close.reply_text = "CONNECTION_FORCED";
  s.send(0, close);
  s.expect<connection_close_ok>(0);
  CHECK(calls >= 2);
  CHECK(s.core.is_closed());
  CHECK(s.core.close_reason().reply_code() == 320);
  CHECK_FALSE(s.core.is_channel_open(ch));
}

TEST_CASE("log: escaped() keeps printable text and escapes control bytes") {
  CHECK(detail::escaped("plain text, ünïcode") == "plain text, ünïcode");
  CHECK(detail::escaped(std::string("a\0b\r\n\t\x7f\\", 8)) == "a\\x00b\\x0d\\x0a\\x09\\x7f\\\\");
}
