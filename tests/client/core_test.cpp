#include "warren/client/core.hpp"

#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "../codec/alloc_probe.hpp"
#include "core_script.hpp"
#include "warren/client/sasl.hpp"
#include "warren/client/version.hpp"

using namespace warren;
using namespace warren::test;
using phase = detail::connection_core::phase;

namespace {

// Hand-built expected bytes, independent of the encoders under test.
struct bytes_out {
  byte_vec v;
  bytes_out& u8(std::uint8_t x) {
    v.push_back(x);
    return *this;
  }
  bytes_out& u16(std::uint16_t x) { return u8(static_cast<std::uint8_t>(x >> 8)).u8(x & 0xFF); }
  bytes_out& u32(std::uint32_t x) {
    return u16(static_cast<std::uint16_t>(x >> 16)).u16(x & 0xFFFF);
  }
  bytes_out& raw(std::string_view s) {
    v.insert(v.end(), s.begin(), s.end());
    return *this;
  }
  bytes_out& raw(const byte_vec& b) {
    v.insert(v.end(), b.begin(), b.end());
    return *this;
  }
  bytes_out& shortstr(std::string_view s) { return u8(static_cast<std::uint8_t>(s.size())).raw(s); }
  bytes_out& longstr(std::string_view s) {
    return u32(static_cast<std::uint32_t>(s.size())).raw(s);
  }
  bytes_out& longstr(const byte_vec& b) { return u32(static_cast<std::uint32_t>(b.size())).raw(b); }
  // A whole frame around `payload`.
  bytes_out& frame(std::uint8_t type, std::uint16_t ch, const byte_vec& payload) {
    return u8(type).u16(ch).u32(static_cast<std::uint32_t>(payload.size())).raw(payload).u8(0xCE);
  }
};

std::error_code amqp(std::uint16_t code) { return {code, amqp_category()}; }
const std::error_code canceled = std::make_error_code(std::errc::operation_canceled);

queue_declare_ok declare_ok(std::string name, std::uint32_t messages = 0,
                            std::uint32_t consumers = 0) {
  queue_declare_ok m;
  m.queue = std::move(name);
  m.message_count = messages;
  m.consumer_count = consumers;
  return m;
}
basic_deliver deliver(std::string tag, std::uint64_t delivery_tag, std::string routing_key = "rk") {
  basic_deliver m;
  m.consumer_tag = std::move(tag);
  m.delivery_tag = delivery_tag;
  m.exchange = "ex";
  m.routing_key = std::move(routing_key);
  return m;
}
template <class M>
M close_method(std::uint16_t code, std::string text, std::uint16_t class_id = 0,
               std::uint16_t method_id = 0) {
  M m;
  m.reply_code = code;
  m.reply_text = std::move(text);
  m.class_id = class_id;
  m.method_id = method_id;
  return m;
}

template <class M>
const M& reply_as(const recorder& r) {
  REQUIRE(r.result().reply.has_value());
  REQUIRE(std::holds_alternative<M>(*r.result().reply));
  return std::get<M>(*r.result().reply);
}

const char* const capability_names[] = {"publisher_confirms", "exchange_exchange_bindings",
                                        "basic.nack",         "consumer_cancel_notify",
                                        "connection.blocked", "authentication_failure_close",
                                        "per_consumer_qos"};

// Runs the handshake up to start-ok and returns start-ok.
connection_start_ok start_to_start_ok(script& s, recorder& opened,
                                      const connection_start& start = broker_start()) {
  s.core.start(opened.cb());
  REQUIRE(s.take_raw() == byte_vec(protocol_header.begin(), protocol_header.end()));
  s.send(0, start);
  return s.expect<connection_start_ok>(0);
}

}  // namespace

// ---- handshake ----------------------------------------------------------------

TEST_CASE("core handshake: byte for byte") {
  script s;
  recorder opened;
  CHECK(s.core.current_phase() == phase::idle);
  s.core.start(opened.cb());
  CHECK(s.core.current_phase() == phase::start);
  CHECK(hex(s.take_raw()) == hex(byte_vec{'A', 'M', 'Q', 'P', 0, 0, 9, 1}));

  const connection_start start = broker_start();
  s.send(0, start);
  CHECK(s.core.server_properties() == start.server_properties);

  bytes_out caps;
  for (const char* name : capability_names) caps.shortstr(name).u8('t').u8(1);
  bytes_out props;
  props.shortstr("product").u8('S').longstr("warren");
  props.shortstr("version").u8('S').longstr(version_string);
  props.shortstr("platform").u8('S').longstr("C++20, standalone Asio");
  props.shortstr("information").u8('S').longstr("AMQP 0-9-1 client");
  props.shortstr("capabilities").u8('F').longstr(caps.v);
  bytes_out start_ok;
  start_ok.u16(10).u16(11).longstr(props.v);
  start_ok.shortstr("PLAIN").longstr(std::string_view("\0guest\0guest", 12)).shortstr("en_US");
  CHECK(hex(s.take_raw()) == hex(bytes_out{}.frame(1, 0, start_ok.v).v));
  CHECK(s.core.current_phase() == phase::tune);
  CHECK_FALSE(opened.done());

  s.send(0, broker_tune(2047, 131072, 60));
  bytes_out tune_ok;
  tune_ok.u16(10).u16(31).u16(2047).u32(131072).u16(60);
  bytes_out open;
  open.u16(10).u16(40).shortstr("/").shortstr("").u8(0);
  bytes_out expected;
  expected.frame(1, 0, tune_ok.v).frame(1, 0, open.v);
  CHECK(hex(s.take_raw()) == hex(expected.v));
  CHECK(s.core.current_phase() == phase::opening);
  CHECK_FALSE(opened.done());

  // connection.open-ok as RabbitMQ sends it: ids and an empty reserved shortstr.
  s.feed(bytes_out{}.frame(1, 0, bytes_out{}.u16(10).u16(41).u8(0).v).v);
  REQUIRE(opened.done());
  CHECK_FALSE(opened.result().error);
  CHECK(s.core.is_open());
  CHECK(s.core.channel_max() == 2047);
  CHECK(s.core.frame_max() == 131072);
  CHECK(s.core.heartbeat() == 60);
  CHECK(s.take_raw().empty());
}

TEST_CASE("core handshake: start-ok fields") {
  SUBCASE("PLAIN with the default credentials") {
    script s;
    recorder opened;
    const auto ok = start_to_start_ok(s, opened);
    CHECK(ok.mechanism == "PLAIN");
    CHECK(ok.response == std::string("\0guest\0guest", 12));
    CHECK(ok.locale == "en_US");
    const field_value* product = ok.client_properties.find("product");
    REQUIRE(product != nullptr);
    CHECK(*product == field_value("warren"));
    CHECK(ok.client_properties.find("connection_name") == nullptr);
    const field_value* caps = ok.client_properties.find("capabilities");
    REQUIRE(caps != nullptr);
    REQUIRE(std::holds_alternative<field_table>(caps->variant()));
    const auto& table = std::get<field_table>(caps->variant());
    CHECK(table.size() == std::size(capability_names));
    for (const char* name : capability_names) {
      INFO(name);
      const field_value* v = table.find(name);
      REQUIRE(v != nullptr);
      CHECK(*v == field_value(true));
    }
  }
  SUBCASE("credentials, vhost and connection name from the config") {
    detail::core_config cfg;
    cfg.params.username = "alice";
    cfg.params.password = "s3cret";
    cfg.params.vhost = "prod";
    cfg.connection_name = "orders-service";
    script s(cfg);
    recorder opened;
    const auto ok = start_to_start_ok(s, opened);
    CHECK(ok.response == std::string("\0alice\0s3cret", 13));
    const field_value* name = ok.client_properties.find("connection_name");
    REQUIRE(name != nullptr);
    CHECK(*name == field_value("orders-service"));
    s.send(0, broker_tune());
    s.expect<connection_tune_ok>(0);
    CHECK(s.expect<connection_open>(0).virtual_host == "prod");
  }
  SUBCASE("AMQPLAIN when the broker offers only that") {
    script s;
    recorder opened;
    connection_start start = broker_start();
    start.mechanisms = "AMQPLAIN";
    const auto ok = start_to_start_ok(s, opened, start);
    CHECK(ok.mechanism == "AMQPLAIN");
    CHECK(ok.response == sasl_response(sasl_mechanism::amqplain, "guest", "guest"));
  }
}

TEST_CASE("core handshake: tune negotiation") {
  struct row {
    std::uint16_t client_channels;
    std::uint32_t client_frame;
    std::uint16_t client_heartbeat;
    std::uint16_t server_channels;
    std::uint32_t server_frame;
    std::uint16_t server_heartbeat;
    std::uint16_t channels;
    std::uint32_t frame;
    std::uint16_t heartbeat;
  };
  const row rows[] = {
      {2047, 131072, 60, 2047, 131072, 60, 2047, 131072, 60},  // equal
      {100, 8192, 30, 2047, 131072, 60, 100, 8192, 30},        // client lower
      {2047, 131072, 60, 10, 4096, 10, 10, 4096, 10},          // server lower
      {2047, 131072, 60, 0, 0, 0, 2047, 131072, 60},           // server: no limits
      {0, 0, 60, 2047, 131072, 60, 2047, 131072, 60},          // client: no limits
      {0, 0, 30, 0, 0, 0, 65535, 0, 30},                       // neither limits
      {2047, 131072, 0, 2047, 131072, 60, 2047, 131072, 0},    // client 0 disables heartbeats
      {2047, 131072, 5, 2047, 131072, 0, 2047, 131072, 5},     // server 0: the client's wins
  };
  for (const row& r : rows) {
    CAPTURE(r.client_channels);
    CAPTURE(r.client_frame);
    CAPTURE(r.client_heartbeat);
    CAPTURE(r.server_channels);
    CAPTURE(r.server_frame);
    CAPTURE(r.server_heartbeat);
    detail::core_config cfg;
    cfg.params.channel_max = r.client_channels;
    cfg.params.frame_max = r.client_frame;
    cfg.params.heartbeat = r.client_heartbeat;
    script s(cfg);
    recorder opened;
    start_to_start_ok(s, opened);
    s.send(0, broker_tune(r.server_channels, r.server_frame, r.server_heartbeat));
    const auto ok = s.expect<connection_tune_ok>(0);
    CHECK(ok.channel_max == r.channels);
    CHECK(ok.frame_max == r.frame);
    CHECK(ok.heartbeat == r.heartbeat);
    CHECK(s.expect<connection_open>(0).virtual_host == "/");
    s.send(0, connection_open_ok{});
    CHECK(opened.ok());
    CHECK(s.core.channel_max() == r.channels);
    CHECK(s.core.frame_max() == r.frame);
    CHECK(s.core.heartbeat() == r.heartbeat);
  }
}

TEST_CASE("core handshake: authentication failure") {
  script s;
  recorder opened;
  start_to_start_ok(s, opened);
  const std::string text =
      "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see "
      "the broker logfile.";
  s.send(0, close_method<connection_close>(403, text));
  s.expect<connection_close_ok>(0);
  s.expect_silence();
  REQUIRE(opened.done());
  CHECK(opened.code() == errc::authentication_failed);
  CHECK(opened.result().error.text == "403 " + text);
  CHECK(s.core.is_closed());
  CHECK(s.core.close_reason().code == errc::authentication_failed);
}

TEST_CASE("core handshake: the broker refuses the vhost") {
  script s;
  recorder opened;
  start_to_start_ok(s, opened);
  s.send(0, broker_tune());
  s.expect<connection_tune_ok>(0);
  s.expect<connection_open>(0);
  s.send(0, close_method<connection_close>(530, "NOT_ALLOWED - vhost / not found", 10, 40));
  s.expect<connection_close_ok>(0);
  REQUIRE(opened.done());
  CHECK(opened.code() == amqp(530));
  CHECK(opened.result().error.class_id == 10);
  CHECK(opened.result().error.method_id == 40);
}

TEST_CASE("core handshake: no common mechanism or protocol") {
  SUBCASE("only EXTERNAL offered") {
    script s;
    recorder opened;
    s.core.start(opened.cb());
    s.take_raw();
    connection_start start = broker_start();
    start.mechanisms = "EXTERNAL";
    s.send(0, start);
    s.expect_silence();
    REQUIRE(opened.done());
    CHECK(opened.code() == errc::no_common_mechanism);
    CHECK(s.core.is_closed());
  }
  SUBCASE("the server answers with its own protocol header") {
    script s;
    recorder opened;
    s.core.start(opened.cb());
    s.take_raw();
    s.feed(byte_vec{'A', 'M', 'Q', 'P', 0, 0, 9, 0});
    REQUIRE(opened.done());
    CHECK(opened.code() == errc::protocol_mismatch);
    CHECK(s.core.is_closed());
    s.expect_silence();
  }
}

// ---- channels -------------------------------------------------------------------

TEST_CASE("core channels: open and close") {
  script s;
  s.handshake();
  recorder opened;
  const std::uint16_t ch = s.core.open_channel(s.core.next_op_id(), opened.cb());
  CHECK(ch == 1);
  s.expect<channel_open>(1);
  CHECK_FALSE(s.core.is_channel_open(1));
  CHECK_FALSE(opened.done());
  s.send(1, channel_open_ok{});
  CHECK(opened.ok());
  CHECK(s.core.is_channel_open(1));

  recorder closed;
  s.core.close_channel(1, s.core.next_op_id(), closed.cb());
  const auto close = s.expect<channel_close>(1);
  CHECK(close.reply_code == 200);
  CHECK(close.class_id == 0);
  CHECK(close.method_id == 0);
  CHECK_FALSE(s.core.is_channel_open(1));
  CHECK_FALSE(closed.done());
  s.send(1, channel_close_ok{});
  CHECK(closed.ok());
  CHECK(s.core.channel_error(1).code == errc::channel_closed);

  // Closing again is not an error and writes nothing.
  recorder again;
  s.core.close_channel(1, s.core.next_op_id(), again.cb());
  CHECK(again.ok());
  s.expect_silence();
}

TEST_CASE("core channels: an id is reused only after close-ok") {
  detail::core_config cfg;
  cfg.params.channel_max = 2;
  script s(cfg);
  s.handshake();
  CHECK(s.open_channel() == 1);
  CHECK(s.open_channel() == 2);

  recorder closed;
  s.core.close_channel(1, s.core.next_op_id(), closed.cb());
  s.expect<channel_close>(1);

  // Channel 1 is closing, 2 is open: no id is free yet.
  recorder refused;
  CHECK(s.core.open_channel(s.core.next_op_id(), refused.cb()) == 0);
  REQUIRE(refused.done());
  CHECK(refused.code() == errc::channel_limit);
  s.expect_silence();

  s.send(1, channel_close_ok{});
  CHECK(closed.ok());
  CHECK(s.open_channel() == 1);
  CHECK(s.core.is_channel_open(2));
}

TEST_CASE("core channels: one synchronous request at a time, replies in order") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  const auto ch2 = s.open_channel();

  recorder first = s.request(ch, declare("q1"));
  recorder second = s.request(ch, declare("q2"));
  CHECK(s.expect<queue_declare>(ch).queue == "q1");
  s.expect_silence();  // q2 waits for q1's reply

  // Another channel is not held up.
  recorder other = s.request(ch2, declare("q3"));
  CHECK(s.expect<queue_declare>(ch2).queue == "q3");

  s.send(ch, declare_ok("q1", 5, 1));
  REQUIRE(first.ok());
  CHECK(reply_as<queue_declare_ok>(first).queue == "q1");
  CHECK(reply_as<queue_declare_ok>(first).message_count == 5);
  CHECK(reply_as<queue_declare_ok>(first).consumer_count == 1);
  CHECK_FALSE(second.done());
  CHECK(s.expect<queue_declare>(ch).queue == "q2");
  s.expect_silence();

  s.send(ch, declare_ok("q2"));
  REQUIRE(second.ok());
  CHECK(reply_as<queue_declare_ok>(second).queue == "q2");
  CHECK_FALSE(other.done());
  s.send(ch2, declare_ok("q3"));
  REQUIRE(other.ok());
  CHECK(reply_as<queue_declare_ok>(other).queue == "q3");
  s.expect_silence();
}

TEST_CASE("core channels: a channel error closes only that channel") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  const auto ch2 = s.open_channel();

  queue_declare passive = declare("missing");
  passive.passive = true;
  recorder failing = s.request(ch, passive);
  recorder queued = s.request(ch, declare("later"));
  CHECK(s.expect<queue_declare>(ch).passive);

  const std::string text = "NOT_FOUND - no queue 'missing' in vhost '/'";
  s.send(ch, close_method<channel_close>(404, text, 50, 10));
  s.expect<channel_close_ok>(ch);
  s.expect_silence();

  for (const recorder* r : {&failing, &queued}) {
    REQUIRE(r->done());
    const error_info& e = r->result().error;
    CHECK(e.code == amqp(404));
    CHECK(e.code.category() == amqp_category());
    CHECK(e.reply_code() == 404);
    CHECK(e.text == text);
    CHECK(e.class_id == 50);
    CHECK(e.method_id == 10);
  }
  CHECK_FALSE(s.core.is_channel_open(ch));
  CHECK(s.core.channel_error(ch).code == amqp(404));
  CHECK(s.core.is_open());

  // Requests on the closed channel fail at once with the broker's reason.
  recorder late = s.request(ch, declare("x"));
  REQUIRE(late.done());
  CHECK(late.code() == amqp(404));
  s.expect_silence();

  // The other channel keeps working.
  recorder fine = s.request(ch2, declare("q"));
  s.expect<queue_declare>(ch2);
  s.send(ch2, declare_ok("q"));
  CHECK(fine.ok());
}

TEST_CASE("core channels: a connection error fails everything") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  const auto ch2 = s.open_channel();

  auto consumer = s.consume(ch, "q", "ctag");
  recorder next;
  s.core.wait_delivery(consumer, s.core.next_op_id(), next.cb());
  recorder declared = s.request(ch, declare("q1"));
  s.expect<queue_declare>(ch);

  s.confirm_select(ch2);
  recorder published = s.publish(ch2, "body");
  CHECK(s.next_frame().channel == ch2);  // basic.publish
  s.next_frame();                        // content header
  s.next_frame();                        // body
  recorder confirms;
  s.core.wait_for_confirms(ch2, s.core.next_op_id(), confirms.cb());
  recorder getting = s.request(ch2, basic_get{});
  s.expect<basic_get>(ch2);
  recorder event;
  s.core.next_event(s.core.next_op_id(), event.cb());
  CHECK_FALSE(declared.done());

  const std::string text =
      "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'";
  s.send(0, close_method<connection_close>(320, text));
  s.expect<connection_close_ok>(0);
  s.expect_silence();

  for (const recorder* r : {&next, &declared, &published, &confirms, &getting, &event}) {
    REQUIRE(r->done());
    CHECK(r->code() == amqp(320));
    CHECK(r->result().error.text == text);
  }
  CHECK(consumer->state == detail::consumer_state::status::ended);
  CHECK(consumer->end_reason.code == amqp(320));
  CHECK(s.core.is_closed());
  CHECK(s.core.close_reason().code == amqp(320));
  CHECK_FALSE(s.core.is_channel_open(ch));

  recorder after = s.request(ch2, declare("x"));
  REQUIRE(after.done());
  CHECK(after.code() == amqp(320));
  recorder open_after;
  CHECK(s.core.open_channel(s.core.next_op_id(), open_after.cb()) == 0);
  CHECK(open_after.code() == amqp(320));
  s.expect_silence();
}

TEST_CASE("core channels: client-initiated connection close") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  auto consumer = s.consume(ch, "q", "ctag");
  recorder pending = s.request(ch, declare("q1"));
  s.expect<queue_declare>(ch);

  recorder closed;
  s.core.close(200, "bye", s.core.next_op_id(), closed.cb());
  const auto close = s.expect<connection_close>(0);
  CHECK(close.reply_code == 200);
  CHECK(close.reply_text == "bye");
  CHECK(pending.code() == errc::connection_closed);
  CHECK_FALSE(closed.done());

  // Until close-ok arrives, whatever the broker had in flight is discarded.
  s.send_message(ch, deliver("ctag", 1), "late");
  s.send(ch, declare_ok("q1"));
  s.expect_silence();
  CHECK_FALSE(s.core.is_closed());
  CHECK_FALSE(closed.done());

  s.send(0, connection_close_ok{});
  CHECK(closed.ok());
  CHECK(s.core.is_closed());
  s.expect_silence();
}

// ---- deliveries ---------------------------------------------------------------

TEST_CASE("core deliveries: consume, deliver, next_delivery") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();

  auto consumer = std::make_shared<detail::consumer_state>();
  basic_consume m;
  m.queue = "jobs";
  m.exclusive = true;
  recorder started;
  s.core.consume(ch, m, consumer, s.core.next_op_id(), started.cb());
  const auto sent = s.expect<basic_consume>(ch);
  CHECK(sent.queue == "jobs");
  CHECK(sent.consumer_tag.empty());
  CHECK(sent.exclusive);
  CHECK_FALSE(started.done());
  CHECK(consumer->state == detail::consumer_state::status::starting);
  basic_consume_ok ok;
  ok.consumer_tag = "amq.ctag-XYZ";
  s.send(ch, ok);
  REQUIRE(started.ok());
  CHECK(reply_as<basic_consume_ok>(started).consumer_tag == "amq.ctag-XYZ");
  CHECK(consumer->tag == "amq.ctag-XYZ");
  CHECK(consumer->channel == ch);
  CHECK(consumer->state == detail::consumer_state::status::active);

  SUBCASE("one body frame, with properties") {
    basic_properties props;
    props.content_type = "text/plain";
    props.delivery_mode = 2;
    props.priority = 5;
    props.message_id = "m-1";
    props.timestamp = timestamp{1700000000};
    props.headers = field_table{};
    props.headers->add("attempt", std::int32_t{3});
    basic_deliver d = deliver("amq.ctag-XYZ", 1, "jobs.new");
    d.redelivered = true;
    s.send_message(ch, d, "hello", props);
    s.expect_silence();
    const message msg = s.next_delivery(consumer);
    CHECK(msg.consumer_tag == "amq.ctag-XYZ");
    CHECK(msg.delivery_tag == 1);
    CHECK(msg.redelivered);
    CHECK(msg.exchange == "ex");
    CHECK(msg.routing_key == "jobs.new");
    CHECK(msg.body == "hello");
    CHECK(msg.properties == props);
  }
  SUBCASE("a body split over several frames, fed a byte at a time") {
    const std::string body(10000, 'b');
    byte_vec all = method_frame(ch, deliver("amq.ctag-XYZ", 1));
    const byte_vec content = content_frames(ch, body, {}, 3000);
    all.insert(all.end(), content.begin(), content.end());
    s.feed(all, 1);
    const message msg = s.next_delivery(consumer);
    CHECK(msg.body.size() == body.size());
    CHECK(msg.body == body);
    CHECK_FALSE(msg.properties.content_type.has_value());
  }
  SUBCASE("an empty body has a header and no body frame") {
    s.send_message(ch, deliver("amq.ctag-XYZ", 1), "");
    const message msg = s.next_delivery(consumer);
    CHECK(msg.delivery_tag == 1);
    CHECK(msg.body.empty());
  }
  SUBCASE("a waiting wait_delivery completes on arrival; order is kept") {
    recorder waiting;
    s.core.wait_delivery(consumer, s.core.next_op_id(), waiting.cb());
    CHECK_FALSE(waiting.done());
    s.send_message(ch, deliver("amq.ctag-XYZ", 1), "one");
    REQUIRE(waiting.done());
    CHECK_FALSE(waiting.result().error);
    CHECK_FALSE(waiting.result().msg.has_value());
    s.send_message(ch, deliver("amq.ctag-XYZ", 2), "two");
    s.send_message(ch, deliver("amq.ctag-XYZ", 3), "three");
    CHECK(s.next_delivery(consumer).body == "one");
    CHECK(s.next_delivery(consumer).body == "two");
    CHECK(s.next_delivery(consumer).body == "three");
    message none;
    CHECK_FALSE(s.core.take_delivery(consumer, none));
  }
  SUBCASE("take_delivery into a reused message trades storage with the stream") {
    const std::string long_body(100, 'b');
    s.send_message(ch, deliver("amq.ctag-XYZ", 1), long_body);
    message m;
    REQUIRE(s.core.take_delivery(consumer, m));
    CHECK(m.body == long_body);
    CHECK(m.consumer_tag == "amq.ctag-XYZ");
    CHECK(m.delivery_tag == 1);
    // Once the ring's slots have all been through a take, the bodies and
    // tags circulate between m, the slots and the assembler: nothing is
    // allocated per delivery.
    std::vector<byte_vec> frames;
    for (std::uint64_t tag = 2; tag < 200; ++tag) {
      byte_vec all = method_frame(ch, deliver("amq.ctag-XYZ", tag));
      byte_vec content = content_frames(ch, std::string(100, char('a' + tag % 26)), {}, 0);
      all.insert(all.end(), content.begin(), content.end());
      frames.push_back(std::move(all));
    }
    std::size_t allocations = 0;
    for (std::uint64_t tag = 2; tag < 200; ++tag) {
      const std::size_t before = test::allocation_count();
      s.core.feed(view(frames[tag - 2]));
      const bool taken = s.core.take_delivery(consumer, m);
      if (tag >= 100) allocations += test::allocation_count() - before;
      REQUIRE(taken);
      CHECK(m.delivery_tag == tag);
      CHECK(m.body == std::string(100, char('a' + tag % 26)));
    }
    CHECK(allocations == 0);
  }
  SUBCASE("the user acks with send()") {
    s.send_message(ch, deliver("amq.ctag-XYZ", 7), "x");
    CHECK(s.next_delivery(consumer).delivery_tag == 7);
    CHECK_FALSE(s.core.send(ch, ack(7)));
    const auto a = s.expect<basic_ack>(ch);
    CHECK(a.delivery_tag == 7);
    CHECK_FALSE(a.multiple);
  }
  SUBCASE("the user cancels the consumer") {
    s.send_message(ch, deliver("amq.ctag-XYZ", 1), "buffered");
    recorder cancelled;
    s.core.cancel(ch, "amq.ctag-XYZ", s.core.next_op_id(), cancelled.cb());
    CHECK(s.expect<basic_cancel>(ch).consumer_tag == "amq.ctag-XYZ");
    CHECK(consumer->state == detail::consumer_state::status::cancelling);
    basic_cancel_ok cok;
    cok.consumer_tag = "amq.ctag-XYZ";
    s.send(ch, cok);
    CHECK(cancelled.ok());
    CHECK(consumer->state == detail::consumer_state::status::ended);
    CHECK(s.next_delivery(consumer).body == "buffered");
    recorder end;
    s.core.wait_delivery(consumer, s.core.next_op_id(), end.cb());
    REQUIRE(end.done());
    CHECK_FALSE(end.result().error);
    CHECK(consumer->buffer.empty());
  }
  s.expect_silence();
  CHECK(s.core.is_open());
}

TEST_CASE("core deliveries: a stream over its capacity pauses reading until drained") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  auto a = s.consume(ch, "qa", "a", 2);
  auto b = s.consume(ch, "qb", "b", 1);

  // Up to capacity (the prefetch) is the normal state of an unread consumer.
  s.send_message(ch, deliver("a", 1), "1");
  s.send_message(ch, deliver("a", 2), "2");
  s.send_message(ch, deliver("b", 3), "3");
  CHECK_FALSE(s.core.reading_paused());
  // One more than fits pauses the connection's reading.
  s.send_message(ch, deliver("a", 4), "4");
  CHECK(s.core.reading_paused());
  s.send_message(ch, deliver("b", 5), "5");
  CHECK(s.core.reading_paused());

  CHECK(s.next_delivery(a).body == "1");
  CHECK(s.core.reading_paused());  // b is still over
  CHECK(s.next_delivery(b).body == "3");
  CHECK_FALSE(s.core.reading_paused());
  CHECK(s.next_delivery(a).body == "2");
  CHECK(s.next_delivery(a).body == "4");
  CHECK(s.next_delivery(b).body == "5");
  CHECK_FALSE(s.core.reading_paused());
}

TEST_CASE("core deliveries: the broker cancels a consumer") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();

  SUBCASE("with messages still buffered") {
    auto c = s.consume(ch, "q", "ctag");
    s.send_message(ch, deliver("ctag", 1), "last");
    basic_cancel cancel;
    cancel.consumer_tag = "ctag";
    s.send(ch, cancel);
    CHECK(s.expect<basic_cancel_ok>(ch).consumer_tag == "ctag");
    CHECK(c->state == detail::consumer_state::status::ended);
    CHECK(c->end_reason.code == errc::consumer_cancelled);
    CHECK(s.next_delivery(c).body == "last");
    recorder end;
    s.core.wait_delivery(c, s.core.next_op_id(), end.cb());
    REQUIRE(end.done());
    CHECK_FALSE(end.result().error);
    CHECK(c->buffer.empty());
  }
  SUBCASE("with wait_delivery waiting, no-wait") {
    auto c = s.consume(ch, "q", "ctag");
    recorder waiting;
    s.core.wait_delivery(c, s.core.next_op_id(), waiting.cb());
    basic_cancel cancel;
    cancel.consumer_tag = "ctag";
    cancel.no_wait = true;
    s.send(ch, cancel);
    s.expect_silence();
    REQUIRE(waiting.done());
    CHECK_FALSE(waiting.result().error);
    CHECK(c->buffer.empty());
    CHECK(c->end_reason.code == errc::consumer_cancelled);
  }
  CHECK(s.core.is_channel_open(ch));
  CHECK(s.core.is_open());
}

TEST_CASE("core basic.get") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();

  basic_get get;
  get.queue = "q";
  recorder got = s.request(ch, get);
  CHECK(s.expect<basic_get>(ch).queue == "q");
  basic_get_ok gok;
  gok.delivery_tag = 9;
  gok.redelivered = true;
  gok.exchange = "ex";
  gok.routing_key = "rk";
  gok.message_count = 3;
  basic_properties props;
  props.correlation_id = "c-1";
  s.send(ch, gok);
  CHECK_FALSE(got.done());  // the content is still to come
  s.feed(content_frames(ch, "payload", props));
  REQUIRE(got.ok());
  REQUIRE(got.result().msg.has_value());
  const message& msg = *got.result().msg;
  CHECK(msg.delivery_tag == 9);
  CHECK(msg.redelivered);
  CHECK(msg.exchange == "ex");
  CHECK(msg.routing_key == "rk");
  CHECK(msg.message_count == 3);
  CHECK(msg.consumer_tag.empty());
  CHECK(msg.body == "payload");
  CHECK(msg.properties == props);
  CHECK(reply_as<basic_get_ok>(got).delivery_tag == 9);

  recorder empty = s.request(ch, get);
  s.expect<basic_get>(ch);
  s.send(ch, basic_get_empty{});
  REQUIRE(empty.ok());
  CHECK_FALSE(empty.result().msg.has_value());
  REQUIRE(empty.result().reply.has_value());
  CHECK(std::holds_alternative<basic_get_empty>(*empty.result().reply));
  s.expect_silence();
}

// ---- confirms -------------------------------------------------------------------

TEST_CASE("core confirms: sequence numbers, ack, nack") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();

  recorder selected;
  s.core.confirm_select(ch, s.core.next_op_id(), selected.cb());
  CHECK_FALSE(s.expect<confirm_select>(ch).nowait);
  CHECK_FALSE(s.core.confirm_mode(ch));
  s.send(ch, confirm_select_ok{});
  CHECK(selected.ok());
  CHECK(s.core.confirm_mode(ch));

  std::vector<recorder> outcomes;
  for (std::uint64_t i = 1; i <= 5; ++i) {
    std::uint64_t seq = 0;
    outcomes.push_back(s.publish(ch, "m" + std::to_string(i), "ex", "rk", false, &seq));
    CHECK(seq == i);
    const auto pub = s.expect<basic_publish>(ch);
    CHECK(pub.exchange == "ex");
    CHECK(pub.routing_key == "rk");
    CHECK(s.next_frame().type == frame_type::header);
    const auto body = s.next_frame();
    CHECK(body.type == frame_type::body);
    CHECK(std::string(body.payload.begin(), body.payload.end()) == "m" + std::to_string(i));
  }
  CHECK(s.core.unconfirmed(ch) == 5);
  for (const auto& r : outcomes) CHECK_FALSE(r.done());

  // ack multiple settles 1..3 in one go.
  s.send(ch, ack(3, true));
  for (int i = 0; i < 3; ++i) {
    REQUIRE(outcomes[i].ok());
    CHECK(outcomes[i].result().outcome.status == publish_status::acked);
    CHECK(outcomes[i].result().outcome.sequence == static_cast<std::uint64_t>(i + 1));
  }
  CHECK_FALSE(outcomes[3].done());
  CHECK_FALSE(outcomes[4].done());
  CHECK(s.core.unconfirmed(ch) == 2);

  // A single ack out of order.
  s.send(ch, ack(5));
  REQUIRE(outcomes[4].done());
  CHECK(outcomes[4].result().outcome.status == publish_status::acked);
  CHECK(outcomes[4].result().outcome.sequence == 5);
  CHECK_FALSE(outcomes[3].done());

  recorder waited;
  s.core.wait_for_confirms(ch, s.core.next_op_id(), waited.cb());
  CHECK_FALSE(waited.done());

  s.send(ch, nack(4));
  REQUIRE(outcomes[3].done());
  CHECK_FALSE(outcomes[3].result().error);
  CHECK(outcomes[3].result().outcome.status == publish_status::nacked);
  CHECK(outcomes[3].result().outcome.sequence == 4);
  CHECK(s.core.unconfirmed(ch) == 0);

  REQUIRE(waited.ok());
  CHECK(waited.result().summary.acked == 4);
  CHECK(waited.result().summary.nacked == 1);
  CHECK(waited.result().summary.returned == 0);

  // Nothing unconfirmed: completes at once, tallies reset.
  recorder again;
  s.core.wait_for_confirms(ch, s.core.next_op_id(), again.cb());
  REQUIRE(again.ok());
  CHECK(again.result().summary.acked == 0);
  CHECK(again.result().summary.nacked == 0);

  // nack multiple settles what is left.
  recorder six = s.publish(ch, "6");
  recorder seven = s.publish(ch, "7");
  s.send(ch, nack(7, true));
  CHECK(six.result().outcome.status == publish_status::nacked);
  CHECK(seven.result().outcome.status == publish_status::nacked);
  CHECK(s.core.is_open());
}

TEST_CASE("core confirms: a failed channel's confirm state, and its frames published again elsewhere") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  s.confirm_select(ch);
  publish_frame_args a;
  a.channel = ch;
  a.exchange = "ex";
  a.routing_key = "rk";
  std::uint64_t seq = 0;
  REQUIRE_FALSE(s.core.publish(a, {}, as_bytes("m1"), 0, {}, &seq));
  CHECK(seq == 1);
  s.discard();
  REQUIRE_FALSE(s.core.publish(a, {}, as_bytes("m2"), 0, {}, &seq));
  CHECK(seq == 2);
  const byte_vec second = s.take_raw();  // the frames of publish 2, for channel ch
  REQUIRE_FALSE(s.core.publish(a, {}, as_bytes("m3"), 0, {}, &seq));
  s.discard();
  s.send(ch, ack(1));
  s.send(ch, ack(3));
  CHECK(s.core.confirm_settled(ch, 1));
  CHECK_FALSE(s.core.confirm_settled(ch, 2));
  CHECK(s.core.confirm_settled(ch, 3));
  CHECK(s.core.lost_confirms(ch) == nullptr);

  s.core.on_transport_error(std::make_error_code(std::errc::connection_reset));
  CHECK(s.core.unconfirmed(ch) == 0);  // the channel is gone...
  const detail::confirm_tracker* lost = s.core.lost_confirms(ch);
  REQUIRE(lost != nullptr);  // ...but what it knew is kept
  CHECK(lost->last() == 3);
  CHECK(lost->unconfirmed() == 1);
  CHECK(lost->settled(1));
  CHECK_FALSE(lost->settled(2));
  CHECK(lost->settled(3));
  CHECK(lost->tallies().acked == 2);

  // Another connection: publish 2's frames go out on channel 2 of it, as
  // its publish 1.
  script t;
  t.handshake();
  t.open_channel();
  const auto other = t.open_channel();
  REQUIRE(other != ch);
  t.confirm_select(other);
  std::uint64_t again = 0;
  REQUIRE_FALSE(t.core.publish_encoded(other, view(second), false, {}, {}, &again));
  CHECK(again == 1);
  CHECK(t.core.unconfirmed(other) == 1);
  const auto pub = t.expect<basic_publish>(other);
  CHECK(pub.exchange == "ex");
  CHECK(pub.routing_key == "rk");
  const auto header = t.next_frame();
  CHECK(header.type == frame_type::header);
  CHECK(header.channel == other);
  const auto body = t.next_frame();
  CHECK(body.channel == other);
  CHECK(std::string(body.payload.begin(), body.payload.end()) == "m2");
  t.expect_silence();

  // Frames that are not whole, or larger than this connection's frame_max,
  // are refused and nothing is written.
  const byte_vec cut(second.begin(), second.end() - 1);
  CHECK(t.core.publish_encoded(other, view(cut), false, {}, {}, &again) == errc::bad_frame_end);
  script small;
  small.handshake(broker_tune(2047, 4096));
  const auto sch = small.open_channel();
  small.confirm_select(sch);
  byte_buffer big;
  publish_frame_args b = a;
  b.channel = 9;
  REQUIRE_FALSE(encode_publish(big, b, {}, as_bytes(std::string(10000, 'x')), 131072));
  CHECK(small.core.publish_encoded(sch, big.view(), false, {}, {}, &again) == errc::frame_too_large);
  t.expect_silence();
  small.expect_silence();
  CHECK(small.core.unconfirmed(sch) == 0);
}

TEST_CASE("core confirms: a mandatory publish returned, then acked") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  s.confirm_select(ch);

  recorder plain = s.publish(ch, "routed", "ex", "known");
  recorder lost = s.publish(ch, "lost", "ex", "nowhere", true);
  s.discard();

  recorder confirms;
  s.core.wait_for_confirms(ch, s.core.next_op_id(), confirms.cb());

  basic_return ret;
  ret.reply_code = 312;
  ret.reply_text = "NO_ROUTE";
  ret.exchange = "ex";
  ret.routing_key = "nowhere";
  basic_properties props;
  props.message_id = "lost-1";
  s.send_message(ch, ret, "lost", props);
  CHECK_FALSE(lost.done());  // settled by the ack that follows

  s.send(ch, ack(2, true));
  REQUIRE(plain.ok());
  CHECK(plain.result().outcome.status == publish_status::acked);
  REQUIRE(lost.ok());
  CHECK(lost.result().outcome.status == publish_status::returned);
  CHECK(lost.result().outcome.sequence == 2);
  CHECK(lost.result().outcome.reply_code == 312);
  CHECK(lost.result().outcome.reply_text == "NO_ROUTE");

  REQUIRE(confirms.ok());
  CHECK(confirms.result().summary.acked == 1);
  CHECK(confirms.result().summary.returned == 1);
  CHECK(confirms.result().summary.nacked == 0);

  // publish() already reported the return: it is not queued a second time.
  recorder returned;
  s.core.next_return(ch, s.core.next_op_id(), returned.cb());
  CHECK_FALSE(returned.done());

  // A pipelined publish has nobody awaiting its outcome: next_return gets it.
  publish_frame_args a;
  a.channel = ch;
  a.exchange = "ex";
  a.routing_key = "nowhere";
  a.mandatory = true;
  REQUIRE(!s.core.publish(a, basic_properties{}, as_bytes(std::string_view("again")), 0, {}));
  s.discard();
  s.send_message(ch, ret, "again", props);
  REQUIRE(returned.ok());
  REQUIRE(returned.result().returned.has_value());
  const returned_message& r = *returned.result().returned;
  CHECK(r.reply_code == 312);
  CHECK(r.reply_text == "NO_ROUTE");
  CHECK(r.exchange == "ex");
  CHECK(r.routing_key == "nowhere");
  CHECK(r.body == "again");
  CHECK(r.properties == props);
  s.send(ch, ack(3));
}

TEST_CASE("core confirms: the confirm window bounds writable()") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  s.confirm_select(ch);
  s.core.set_confirm_window(ch, 2);

  CHECK(s.core.writable(ch));
  s.publish(ch, "1");
  CHECK(s.core.writable(ch));
  s.publish(ch, "2");
  s.discard();
  CHECK_FALSE(s.core.writable(ch));
  recorder room;
  s.core.wait_writable(ch, s.core.next_op_id(), room.wake_cb());
  CHECK_FALSE(room.done());

  s.send(ch, ack(1));
  CHECK(s.core.writable(ch));
  CHECK(room.ok());
}

TEST_CASE("core confirms: a window that filled opens again at its low-water mark") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  s.confirm_select(ch);
  s.core.set_confirm_window(ch, 16);  // low-water mark: 14 unconfirmed

  for (int i = 1; i <= 15; ++i) s.publish(ch, "m");
  s.discard();
  // Full without anyone waiting: one free place is enough.
  s.publish(ch, "m");
  s.discard();
  CHECK_FALSE(s.core.writable(ch));
  s.send(ch, ack(1));
  CHECK(s.core.writable(ch));
  s.publish(ch, "m");  // 16 again
  s.discard();

  recorder room;
  s.core.wait_writable(ch, s.core.next_op_id(), room.wake_cb());
  CHECK_FALSE(room.done());
  s.send(ch, ack(2));  // 15 unconfirmed
  CHECK_FALSE(s.core.writable(ch));
  CHECK_FALSE(room.done());
  s.send(ch, ack(3));  // 14: still at the mark
  CHECK_FALSE(s.core.writable(ch));
  CHECK_FALSE(room.done());
  s.send(ch, ack(4));  // 13
  CHECK(room.ok());
  // Open up to the full window again, then shut at 16.
  for (int i = 0; i < 3; ++i) {
    CHECK(s.core.writable(ch));
    s.publish(ch, "m");
  }
  s.discard();
  CHECK(s.core.unconfirmed(ch) == 16);
  CHECK_FALSE(s.core.writable(ch));

  // A multiple ack past the mark wakes the waiter at once.
  recorder again;
  s.core.wait_writable(ch, s.core.next_op_id(), again.wake_cb());
  s.send(ch, ack(10, true));
  CHECK(again.ok());
  CHECK(s.core.unconfirmed(ch) == 10);
  CHECK(s.core.writable(ch));
}

TEST_CASE("core confirms: a publisher waiting for room is woken, failed or cancelled once") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  s.confirm_select(ch);
  s.core.set_confirm_window(ch, 2);
  s.publish(ch, "1");
  s.publish(ch, "2");
  s.discard();
  REQUIRE_FALSE(s.core.writable(ch));

  SUBCASE("a wider window lets it on") {
    recorder room;
    s.core.wait_writable(ch, s.core.next_op_id(), room.wake_cb());
    CHECK_FALSE(room.done());
    s.core.set_confirm_window(ch, 3);
    CHECK(s.core.writable(ch));
    CHECK(room.ok());
    s.send(ch, ack(2, true));
    CHECK(room.count() == 1);
  }
  SUBCASE("cancelled, it fails with operation_canceled, and an ack later leaves it alone") {
    recorder room;
    const std::uint64_t id = s.core.next_op_id();
    s.core.wait_writable(ch, id, room.wake_cb());
    CHECK(s.core.cancel_op(id));
    REQUIRE(room.done());
    CHECK(room.code() == canceled);
    CHECK_FALSE(s.core.cancel_op(id));
    s.send(ch, ack(2, true));
    CHECK(room.count() == 1);
  }
  SUBCASE("the broker closing the channel fails it with the broker's reason") {
    recorder room;
    s.core.wait_writable(ch, s.core.next_op_id(), room.wake_cb());
    const std::string text = "PRECONDITION_FAILED - test";
    s.send(ch, close_method<channel_close>(406, text, 60, 40));
    s.expect<channel_close_ok>(ch);
    REQUIRE(room.done());
    CHECK(room.code() == amqp(406));
    CHECK(room.result().error.text == text);
    // A wait on the closed channel fails at once.
    recorder late;
    s.core.wait_writable(ch, s.core.next_op_id(), late.wake_cb());
    REQUIRE(late.done());
    CHECK(late.code() == amqp(406));
  }
  SUBCASE("every waiter of the channel wakes on one ack") {
    recorder a, b;
    s.core.wait_writable(ch, s.core.next_op_id(), a.wake_cb());
    s.core.wait_writable(ch, s.core.next_op_id(), b.wake_cb());
    s.send(ch, ack(1));
    CHECK(a.ok());
    CHECK(b.ok());
  }
}

TEST_CASE("core: a publisher held back by the output's high-water mark wakes once it is written") {
  detail::core_config cfg;
  cfg.output_high_water = 64;
  script s(cfg);
  s.handshake();
  const auto ch = s.open_channel();
  s.discard();
  REQUIRE(s.core.writable(ch));
  s.publish(ch, std::string(100, 'x'));
  CHECK_FALSE(s.core.writable(ch));
  recorder room;
  s.core.wait_writable(ch, s.core.next_op_id(), room.wake_cb());
  CHECK_FALSE(room.done());
  s.discard();  // the driver takes the output
  CHECK(s.core.writable(ch));
  CHECK(room.ok());
}

TEST_CASE("core confirms: publish outside confirm mode") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  std::uint64_t seq = 99;
  recorder sent = s.publish(ch, "x", "ex", "rk", false, &seq);
  REQUIRE(sent.ok());
  CHECK(sent.result().outcome.status == publish_status::sent);
  CHECK(seq == 0);
  recorder waited;
  s.core.wait_for_confirms(ch, s.core.next_op_id(), waited.cb());
  CHECK(waited.code() == errc::not_in_confirm_mode);
}

// ---- heartbeats, flow control ----------------------------------------------------

TEST_CASE("core heartbeats") {
  script s;
  s.handshake(broker_tune(2047, 131072, 10));
  CHECK(s.core.heartbeat() == 10);
  const auto ch = s.open_channel();  // wrote and read since the handshake
  recorder pending = s.request(ch, declare("q"));
  s.expect<queue_declare>(ch);

  const byte_vec heartbeat = {8, 0, 0, 0, 0, 0, 0, 0xCE};
  s.core.heartbeat_tick();  // something was written since the last tick
  CHECK(s.take_raw().empty());
  s.core.heartbeat_tick();  // nothing written: a heartbeat goes out
  CHECK(hex(s.take_raw()) == hex(heartbeat));
  s.core.heartbeat_tick();
  CHECK(s.take_raw().empty());

  // Reading resets the silence count.
  s.feed(heartbeat);
  s.core.heartbeat_tick();
  CHECK(hex(s.take_raw()) == hex(heartbeat));
  for (int i = 0; i < 3; ++i) {
    s.core.heartbeat_tick();
    s.take_raw();
    CHECK(s.core.is_open());
  }
  s.feed(heartbeat);
  s.core.heartbeat_tick();  // the tick that saw the read
  s.take_raw();
  // Then four ticks (two intervals) without a byte from the broker.
  for (int i = 0; i < 3; ++i) {
    s.core.heartbeat_tick();
    s.take_raw();
    CHECK(s.core.is_open());
  }
  CHECK_FALSE(pending.done());
  s.core.heartbeat_tick();
  s.take_raw();
  CHECK(s.core.is_closed());
  CHECK(s.core.close_reason().code == errc::heartbeat_timeout);
  REQUIRE(pending.done());
  CHECK(pending.code() == errc::heartbeat_timeout);
}

TEST_CASE("core heartbeats: off when negotiated to 0") {
  detail::core_config cfg;
  cfg.params.heartbeat = 0;
  script s(cfg);
  s.handshake();
  CHECK(s.core.heartbeat() == 0);
  for (int i = 0; i < 10; ++i) s.core.heartbeat_tick();
  s.expect_silence();
  CHECK(s.core.is_open());
}

TEST_CASE("core connection.blocked and unblocked") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  CHECK(s.core.writable(ch));

  connection_blocked blocked;
  blocked.reason = "low on memory";
  s.send(0, blocked);
  CHECK(s.core.blocked());
  CHECK_FALSE(s.core.writable(ch));
  recorder room;
  s.core.wait_writable(ch, s.core.next_op_id(), room.wake_cb());
  CHECK_FALSE(room.done());

  recorder first;
  s.core.next_event(s.core.next_op_id(), first.cb());
  REQUIRE(first.ok());
  REQUIRE(first.result().event.has_value());
  CHECK(first.result().event->type == connection_event_type::blocked);
  CHECK(first.result().event->reason == "low on memory");

  recorder second;
  s.core.next_event(s.core.next_op_id(), second.cb());
  CHECK_FALSE(second.done());
  s.send(0, connection_unblocked{});
  CHECK_FALSE(s.core.blocked());
  CHECK(s.core.writable(ch));
  CHECK(room.ok());
  REQUIRE(second.ok());
  CHECK(second.result().event->type == connection_event_type::unblocked);
  s.expect_silence();
}

TEST_CASE("core channel.flow") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  channel_flow flow;
  flow.active = false;
  s.send(ch, flow);
  CHECK_FALSE(s.expect<channel_flow_ok>(ch).active);
  CHECK_FALSE(s.core.writable(ch));
  flow.active = true;
  s.send(ch, flow);
  CHECK(s.expect<channel_flow_ok>(ch).active);
  CHECK(s.core.writable(ch));
}

// ---- cancellation ----------------------------------------------------------------

TEST_CASE("core cancellation") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();

  SUBCASE("a queued request is withdrawn and never written") {
    recorder first = s.request(ch, declare("q1"));
    std::uint64_t id = 0;
    recorder second = s.request(ch, declare("q2"), &id);
    s.expect<queue_declare>(ch);
    CHECK(s.core.cancel_op(id));
    REQUIRE(second.done());
    CHECK(second.code() == canceled);
    CHECK_FALSE(s.core.cancel_op(id));
    s.send(ch, declare_ok("q1"));
    CHECK(first.ok());
    s.expect_silence();
    CHECK(second.count() == 1);
  }
  SUBCASE("a sent request completes at once; its reply is still consumed") {
    std::uint64_t id = 0;
    recorder first = s.request(ch, declare("q1"), &id);
    recorder second = s.request(ch, declare("q2"));
    s.expect<queue_declare>(ch);
    CHECK(s.core.cancel_op(id));
    REQUIRE(first.done());
    CHECK(first.code() == canceled);
    s.expect_silence();
    s.send(ch, declare_ok("q1"));
    CHECK(s.core.is_open());
    CHECK(first.count() == 1);
    CHECK(s.expect<queue_declare>(ch).queue == "q2");
    s.send(ch, declare_ok("q2"));
    CHECK(second.ok());
    CHECK(reply_as<queue_declare_ok>(second).queue == "q2");
  }
  SUBCASE("a consume cancelled after being sent is cancelled at consume-ok") {
    auto c = std::make_shared<detail::consumer_state>();
    basic_consume m;
    m.queue = "q";
    recorder started;
    const std::uint64_t id = s.core.next_op_id();
    s.core.consume(ch, m, c, id, started.cb());
    s.expect<basic_consume>(ch);
    CHECK(s.core.cancel_op(id));
    CHECK(started.code() == canceled);
    basic_consume_ok ok;
    ok.consumer_tag = "amq.ctag-1";
    s.send(ch, ok);
    const auto cancel = s.expect<basic_cancel>(ch);
    CHECK(cancel.consumer_tag == "amq.ctag-1");
    CHECK_FALSE(cancel.no_wait);
    CHECK(c->state == detail::consumer_state::status::cancelling);
    // A delivery that crossed the cancel goes back to the queue.
    s.send_message(ch, deliver("amq.ctag-1", 1), "x");
    const auto reject = s.expect<basic_reject>(ch);
    CHECK(reject.delivery_tag == 1);
    CHECK(reject.requeue);
    basic_cancel_ok cok;
    cok.consumer_tag = "amq.ctag-1";
    s.send(ch, cok);
    CHECK(c->state == detail::consumer_state::status::ended);
    CHECK(s.core.is_open());
  }
  SUBCASE("an abandoned consumer hands back what it buffered and what still arrives") {
    auto c = s.consume(ch, "q", "ctag");
    s.send_message(ch, deliver("ctag", 7), "buffered");
    s.core.abandon_consumer(c);
    const auto back = s.expect<basic_reject>(ch);
    CHECK(back.delivery_tag == 7);
    CHECK(back.requeue);
    CHECK(s.expect<basic_cancel>(ch).consumer_tag == "ctag");
    s.send_message(ch, deliver("ctag", 8), "late");
    CHECK(s.expect<basic_reject>(ch).delivery_tag == 8);
    basic_cancel_ok cok;
    cok.consumer_tag = "ctag";
    s.send(ch, cok);
    CHECK(c->state == detail::consumer_state::status::ended);
    s.expect_silence();
  }
  SUBCASE("a channel.open cancelled after being sent is closed at open-ok") {
    recorder opened;
    const std::uint64_t id = s.core.next_op_id();
    const std::uint16_t ch2 = s.core.open_channel(id, opened.cb());
    s.expect<channel_open>(ch2);
    CHECK(s.core.cancel_op(id));
    s.send(ch2, channel_open_ok{});
    CHECK(s.expect<channel_close>(ch2).reply_code == 200);
    s.send(ch2, channel_close_ok{});
    CHECK_FALSE(s.core.is_channel_open(ch2));
    CHECK(opened.count() == 1);
  }
  SUBCASE("a get cancelled after being sent rejects its message with requeue") {
    basic_get get;
    get.queue = "q";
    std::uint64_t id = 0;
    recorder got = s.request(ch, get, &id);
    s.expect<basic_get>(ch);
    CHECK(s.core.cancel_op(id));
    CHECK(got.code() == canceled);
    basic_get_ok gok;
    gok.delivery_tag = 4;
    s.send_message(ch, gok, "unwanted");
    const auto reject = s.expect<basic_reject>(ch);
    CHECK(reject.delivery_tag == 4);
    CHECK(reject.requeue);
    CHECK(got.count() == 1);
  }
  SUBCASE("a waiting wait_delivery") {
    auto c = s.consume(ch, "q", "ctag");
    recorder waiting;
    const std::uint64_t id = s.core.next_op_id();
    s.core.wait_delivery(c, id, waiting.cb());
    CHECK(s.core.cancel_op(id));
    CHECK(waiting.code() == canceled);
    s.send_message(ch, deliver("ctag", 1), "kept");
    CHECK(waiting.count() == 1);
    CHECK(s.next_delivery(c).body == "kept");
  }
  SUBCASE("a confirm outcome") {
    s.confirm_select(ch);
    recorder outcome;
    publish_frame_args a;
    a.channel = ch;
    const std::uint64_t id = s.core.next_op_id();
    REQUIRE_FALSE(s.core.publish(a, {}, as_bytes("x"), id, outcome.cb()));
    s.discard();
    CHECK(s.core.cancel_op(id));
    CHECK(outcome.code() == canceled);
    s.send(ch, ack(1));
    CHECK(outcome.count() == 1);
    CHECK(s.core.unconfirmed(ch) == 0);
  }
  CHECK_FALSE(s.core.cancel_op(987654));
  s.expect_silence();
  CHECK(s.core.is_open());
}

// ---- malformed input ----------------------------------------------------------

TEST_CASE("core malformed input from the server") {
  detail::core_config cfg;
  script s(cfg);
  s.handshake(broker_tune(2047, 4096, 60));
  const auto ch = s.open_channel();
  recorder pending = s.request(ch, declare("q"));
  s.expect<queue_declare>(ch);

  std::uint16_t code = 0;
  std::error_code ec;
  SUBCASE("a frame larger than frame_max") {
    // Only the header: the core must refuse before the payload arrives.
    s.feed(bytes_out{}.u8(3).u16(ch).u32(5000).v);
    code = 501;
    ec = errc::frame_too_large;
  }
  SUBCASE("a frame with a bad frame-end") {
    byte_vec f = method_frame(ch, declare_ok("q"));
    f.back() = 0;
    s.feed(f);
    code = 501;
    ec = errc::bad_frame_end;
  }
  SUBCASE("a reply nobody asked for") {
    s.send(ch, queue_bind_ok{});
    code = 505;
    ec = errc::unexpected_frame;
  }
  SUBCASE("a frame on a channel that is not open") {
    s.send(5, channel_open_ok{});
    code = 504;
    ec = errc::unexpected_frame;
  }
  SUBCASE("a content header nobody announced") {
    s.feed(header_frame(ch, 3));
    code = 505;
    ec = errc::unexpected_frame;
  }
  SUBCASE("a body longer than its header declared") {
    s.feed(method_frame(ch, deliver("x", 1)));
    s.feed(header_frame(ch, 3));
    s.feed(body_frame(ch, "toolong"));
    code = 501;
    ec = errc::body_size_mismatch;
  }
  SUBCASE("an undecodable method") {
    s.feed(bytes_out{}.frame(1, ch, bytes_out{}.u16(50).u16(11).u8(5).raw("ab").v).v);
    code = 502;
    ec = errc::truncated;
  }
  const auto close = s.expect<connection_close>(0);
  CHECK(close.reply_code == code);
  CHECK_FALSE(close.reply_text.empty());
  s.expect_silence();
  CHECK(s.core.is_closed());
  CHECK(s.core.close_reason().code == ec);
  REQUIRE(pending.done());
  CHECK(pending.code() == ec);
}

TEST_CASE("core malformed input: a method frame in the middle of content") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  auto c = s.consume(ch, "q", "ctag");
  recorder next;
  s.core.wait_delivery(c, s.core.next_op_id(), next.cb());
  s.feed(method_frame(ch, deliver("ctag", 1)));
  s.feed(header_frame(ch, 10));
  s.feed(body_frame(ch, "12345"));
  s.send(ch, deliver("ctag", 2));
  CHECK(s.expect<connection_close>(0).reply_code == 505);
  s.expect_silence();
  CHECK(s.core.is_closed());
  REQUIRE(next.done());
  CHECK(next.code() == errc::unexpected_frame);
  CHECK(c->state == detail::consumer_state::status::ended);
}

TEST_CASE("core transport error fails everything") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  auto c = s.consume(ch, "q", "ctag");
  recorder next;
  s.core.wait_delivery(c, s.core.next_op_id(), next.cb());
  recorder pending = s.request(ch, declare("q"));
  s.expect<queue_declare>(ch);
  recorder event;
  s.core.next_event(s.core.next_op_id(), event.cb());

  s.core.on_transport_error(std::make_error_code(std::errc::connection_reset));
  for (const recorder* r : {&next, &pending, &event}) {
    REQUIRE(r->done());
    CHECK(r->code() == errc::connection_lost);
  }
  CHECK(s.core.is_closed());
  CHECK(s.core.close_reason().code == errc::connection_lost);
  CHECK(c->end_reason.code == errc::connection_lost);
  s.expect_silence();
}

TEST_CASE("core transport error during the handshake fails the open") {
  script s;
  recorder opened;
  start_to_start_ok(s, opened);
  s.core.on_transport_error(std::make_error_code(std::errc::connection_reset));
  REQUIRE(opened.done());
  CHECK(opened.code() == errc::connection_lost);
}

// ---- publish framing -------------------------------------------------------------

TEST_CASE("core publish splits a body larger than frame_max") {
  script s;
  s.handshake(broker_tune(2047, 4096, 60));
  const auto ch = s.open_channel();
  std::string body(10000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);

  basic_properties props;
  props.content_type = "application/octet-stream";
  publish_frame_args a;
  a.channel = ch;
  a.exchange = "ex";
  a.routing_key = "rk";
  recorder sent;
  REQUIRE_FALSE(s.core.publish(a, props, as_bytes(body), s.core.next_op_id(), sent.cb()));
  CHECK(sent.ok());

  // Check the raw framing: every frame at most frame_max bytes in all.
  const byte_vec raw = s.take_raw();
  std::size_t at = 0;
  std::vector<written_frame> frames;
  while (at < raw.size()) {
    REQUIRE(raw.size() - at >= 8);
    const std::uint32_t size =
        (std::uint32_t{raw[at + 3]} << 24) | (raw[at + 4] << 16) | (raw[at + 5] << 8) | raw[at + 6];
    REQUIRE(raw.size() - at >= 8 + size);
    CHECK(size + 8 <= 4096);
    CHECK(raw[at + 7 + size] == 0xCE);
    frames.push_back({static_cast<frame_type>(raw[at]),
                      static_cast<std::uint16_t>((raw[at + 1] << 8) | raw[at + 2]),
                      byte_vec(raw.begin() + at + 7, raw.begin() + at + 7 + size)});
    at += 8 + size;
  }
  REQUIRE(frames.size() == 5);
  basic_publish pub;
  REQUIRE_FALSE(decode_method_as(view(frames[0].payload), pub));
  CHECK(pub.exchange == "ex");
  CHECK(pub.routing_key == "rk");
  content_header header;
  REQUIRE(frames[1].type == frame_type::header);
  REQUIRE_FALSE(decode_content_header(view(frames[1].payload), header));
  CHECK(header.body_size == 10000);
  CHECK(header.properties == props);
  std::string joined;
  const std::size_t sizes[] = {4088, 4088, 1824};
  for (std::size_t i = 2; i < frames.size(); ++i) {
    CHECK(frames[i].type == frame_type::body);
    CHECK(frames[i].channel == ch);
    CHECK(frames[i].payload.size() == sizes[i - 2]);
    joined.append(frames[i].payload.begin(), frames[i].payload.end());
  }
  CHECK(joined == body);
}

TEST_CASE("core publish on a closed channel fails without writing") {
  script s;
  s.handshake();
  recorder sent;
  publish_frame_args a;
  a.channel = 3;
  CHECK(s.core.publish(a, {}, as_bytes("x"), s.core.next_op_id(), sent.cb()) ==
        errc::channel_closed);
  CHECK(sent.code() == errc::channel_closed);
  s.expect_silence();
}

// ---- both sides at once, connection-level requests ---------------------------

TEST_CASE("core channels: closed from both sides at once") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  recorder closed;
  s.core.close_channel(ch, s.core.next_op_id(), closed.cb());
  s.expect<channel_close>(ch);
  // The broker's own close crosses ours: it answers ours.
  s.send(ch,
         close_method<channel_close>(406, "PRECONDITION_FAILED - unknown delivery tag 9", 60, 80));
  s.expect<channel_close_ok>(ch);
  CHECK(closed.ok());
  // Its close-ok for our close arrives on the now free id and is ignored.
  s.send(ch, channel_close_ok{});
  s.expect_silence();
  CHECK(s.core.is_open());
  CHECK(s.open_channel() != 0);
}

TEST_CASE("core connection closed from both sides at once") {
  script s;
  s.handshake();
  recorder closed;
  s.core.close(200, "bye", s.core.next_op_id(), closed.cb());
  s.expect<connection_close>(0);
  s.send(0, close_method<connection_close>(320, "CONNECTION_FORCED - shutdown"));
  s.expect<connection_close_ok>(0);
  CHECK(closed.ok());
  CHECK(s.core.is_closed());
  s.expect_silence();
}

TEST_CASE("core connection.update-secret") {
  script s;
  s.handshake();
  recorder updated;
  s.core.update_secret("new-token", "refresh", s.core.next_op_id(), updated.cb());
  const auto m = s.expect<connection_update_secret>(0);
  CHECK(m.new_secret == "new-token");
  CHECK(m.reason == "refresh");
  CHECK_FALSE(updated.done());
  s.send(0, connection_update_secret_ok{});
  CHECK(updated.ok());
  s.expect_silence();
}

TEST_CASE("core cancelling the open aborts the handshake") {
  script s;
  recorder opened;
  const std::uint64_t id = s.core.next_op_id();
  s.core.start(opened.cb(), id);
  s.take_raw();
  s.send(0, broker_start());
  s.expect<connection_start_ok>(0);
  CHECK(s.core.cancel_op(id));
  REQUIRE(opened.done());
  CHECK(opened.code() == std::make_error_code(std::errc::operation_canceled));
  CHECK(s.core.is_closed());
}

TEST_CASE("core confirms: ack multiple with tag 0 settles everything") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  s.confirm_select(ch);
  recorder one = s.publish(ch, "1");
  recorder two = s.publish(ch, "2");
  s.discard();
  s.send(ch, ack(0, true));
  CHECK(one.result().outcome.status == publish_status::acked);
  CHECK(two.result().outcome.status == publish_status::acked);
  CHECK(s.core.unconfirmed(ch) == 0);
  CHECK(s.core.is_open());
}

TEST_CASE("core confirms: a confirm for a sequence never published") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  s.confirm_select(ch);
  recorder one = s.publish(ch, "1");
  s.discard();
  s.send(ch, ack(2));
  CHECK(s.expect<connection_close>(0).reply_code != 0);
  CHECK(s.core.is_closed());
  CHECK(one.code() == errc::unexpected_frame);
}

TEST_CASE("unique_function: small callables are kept inline, large ones on the heap") {
  struct counts {
    int calls = 0, destroyed = 0;
  };
  auto c = std::make_shared<counts>();
  // Moves of the tracker leave a null pointer behind: only the live one counts.
  struct tracker {
    counts* n;
    explicit tracker(counts* p) : n(p) {}
    tracker(tracker&& o) noexcept : n(std::exchange(o.n, nullptr)) {}
    ~tracker() {
      if (n) ++n->destroyed;
    }
  };

  SUBCASE("inline: no allocation, moved as a value, destroyed once, run once") {
    const std::size_t before = test::allocation_count();
    detail::wake w = [t = tracker(c.get())](const error_info* why) {
      if (why == nullptr) ++t.n->calls;
    };
    detail::wake moved = std::move(w);
    detail::wake assigned;
    assigned = std::move(moved);
    CHECK(test::allocation_count() == before);
    CHECK_FALSE(w);
    CHECK_FALSE(moved);
    REQUIRE(assigned);
    assigned.consume(nullptr);
    CHECK_FALSE(assigned);
    assigned.consume(nullptr);  // empty: nothing runs
    CHECK(c->calls == 1);
    CHECK(c->destroyed == 1);
  }
  SUBCASE("on the heap: one allocation, moves keep the pointer, destroyed once") {
    std::array<char, 64> big{};
    big[0] = 'x';
    const std::size_t before = test::allocation_count();
    {
      detail::wake w = [t = tracker(c.get()), big](const error_info*) {
        if (big[0] == 'x') ++t.n->calls;
      };
      CHECK(test::allocation_count() == before + 1);
      detail::wake moved = std::move(w);
      CHECK(test::allocation_count() == before + 1);
      moved(nullptr);
      moved(nullptr);
      CHECK(c->destroyed == 0);
    }
    CHECK(c->calls == 2);
    CHECK(c->destroyed == 1);
  }
  SUBCASE("a completion that refills its own slot keeps the new one") {
    detail::completion slot;
    slot = [&slot, c](op_result&&) {
      ++c->calls;
      slot = [c](op_result&&) { c->calls += 10; };
    };
    slot.consume(op_result{});
    REQUIRE(slot);
    slot.consume(op_result{});
    CHECK(c->calls == 11);
    CHECK_FALSE(slot);
  }
}
