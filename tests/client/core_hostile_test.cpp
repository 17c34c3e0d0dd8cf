// The core against a misbehaving broker or an impossible request: each case
// is a defect once seen, scripted byte for byte.
#include <doctest/doctest.h>

#include <string>

#include "../codec/alloc_probe.hpp"
#include "core_script.hpp"

using namespace warren;
using namespace warren::test;
using namespace std::chrono_literals;

namespace {

basic_return unroutable() {
  basic_return r;
  r.reply_code = 312;
  r.reply_text = "NO_ROUTE";
  r.exchange = "ex";
  r.routing_key = "nowhere";
  return r;
}

// Feeds `count` copies of one frame in a single read.
template <class M>
void flood(script& s, std::uint16_t ch, const M& m, std::size_t count) {
  const byte_vec one = method_frame(ch, m);
  byte_vec all;
  all.reserve(one.size() * count);
  for (std::size_t i = 0; i < count; ++i) all.insert(all.end(), one.begin(), one.end());
  s.feed(all);
}

// A core that takes message bodies of up to 100 bytes.
detail::core_config body_limit_100() {
  detail::core_config cfg;
  cfg.max_body_size = 100;
  return cfg;
}

// Sends basic.get of queue "q" on `ch` and takes it off the wire; the get's record.
recorder get_from_q(script& s, std::uint16_t ch) {
  basic_get g;
  g.queue = "q";
  auto got = s.request(ch, g);
  s.expect<basic_get>(ch);
  return got;
}

}  // namespace

TEST_CASE("core encode errors fail the call locally and send nothing") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  const std::string long_name(300, 'q');

  SUBCASE("a queue name over 255 bytes") {
    recorder r = s.request(ch, declare(long_name));
    REQUIRE(r.done());
    CHECK(r.code() == errc::string_too_long);
    CHECK(r.result().error.text.find("queue.declare") != std::string::npos);
  }
  SUBCASE("an exchange name over 255 bytes, through send()") {
    exchange_delete m;
    m.exchange = long_name;
    m.no_wait = true;
    error_info e = s.core.send(ch, m);
    CHECK(e.code == errc::string_too_long);
    CHECK(e.text.find("exchange.delete") != std::string::npos);
  }
  SUBCASE("a consumer tag over 255 bytes") {
    auto c = std::make_shared<detail::consumer_state>();
    basic_consume m;
    m.queue = "q";
    m.consumer_tag = long_name;
    recorder r;
    s.core.consume(ch, m, c, s.core.next_op_id(), r.cb());
    REQUIRE(r.done());
    CHECK(r.code() == errc::string_too_long);
  }
  SUBCASE("an argument table that does not fit in frame_max") {
    queue_declare m = declare("q");
    m.arguments.add("x-big", std::string(200000, 'a'));
    recorder r = s.request(ch, m);
    REQUIRE(r.done());
    CHECK(r.code() == errc::frame_too_large);
    CHECK(r.result().error.text.find("frame_max") != std::string::npos);
  }
  SUBCASE("a close text over 255 bytes") {
    recorder r;
    s.core.close(200, long_name, s.core.next_op_id(), r.cb());
    REQUIRE(r.done());
    CHECK(r.code() == errc::string_too_long);
    CHECK(s.core.is_open());
  }
  s.expect_silence();
  CHECK(s.core.is_open());
  CHECK(s.core.is_channel_open(ch));
  // The channel still works.
  recorder next = s.request(ch, declare("fine"));
  CHECK(s.expect<queue_declare>(ch).queue == "fine");
  queue_declare_ok ok;
  ok.queue = "fine";
  s.send(ch, ok);
  CHECK(next.ok());
}

TEST_CASE("core returns: never queued twice, never a reason to stop reading") {
  detail::core_config cfg;
  cfg.max_returns_buffered = 1024;
  script s(cfg);
  s.handshake();
  const auto ch = s.open_channel();
  s.confirm_select(ch);
  constexpr int n = 1100;

  SUBCASE("publishes awaiting their outcome learn of the return there") {
    std::vector<recorder> outcomes;
    for (int i = 0; i < n; ++i) outcomes.push_back(s.publish(ch, "m", "ex", "nowhere", true));
    s.discard();
    for (int i = 0; i < n; ++i) {
      s.send_message(ch, unroutable(), "m");
      REQUIRE_FALSE(s.core.reading_paused());
    }
    s.send(ch, ack(n, true));
    for (auto& o : outcomes) {
      REQUIRE(o.ok());
      CHECK(o.result().outcome.status == publish_status::returned);
    }
    recorder ret;
    s.core.next_return(ch, s.core.next_op_id(), ret.cb());
    CHECK_FALSE(ret.done());
    CHECK(s.core.returns_dropped(ch) == 0);
  }
  SUBCASE("pipelined publishes: the queue is bounded and overflow counted") {
    publish_frame_args a;
    a.channel = ch;
    a.exchange = "ex";
    a.routing_key = "nowhere";
    a.mandatory = true;
    for (int i = 0; i < n; ++i)
      REQUIRE(!s.core.publish(a, basic_properties{}, as_bytes(std::string_view("m")), 0, {}));
    s.discard();
    for (int i = 0; i < n; ++i) {
      s.send_message(ch, unroutable(), "m");
      REQUIRE_FALSE(s.core.reading_paused());
    }
    recorder confirms;
    s.core.wait_for_confirms(ch, s.core.next_op_id(), confirms.cb());
    s.send(ch, ack(n, true));
    REQUIRE(confirms.ok());
    CHECK(confirms.result().summary.returned == n);
    CHECK(s.core.returns_dropped(ch) == n - 1024);
    for (int i = 0; i < 1024; ++i) {
      recorder ret;
      s.core.next_return(ch, s.core.next_op_id(), ret.cb());
      REQUIRE(ret.ok());
    }
    recorder none;
    s.core.next_return(ch, s.core.next_op_id(), none.cb());
    CHECK_FALSE(none.done());
  }
}

TEST_CASE("core blocked notices keep the latest state, not a list") {
  script s;
  s.handshake();
  connection_blocked b;
  b.reason = "low on memory";
  byte_vec all;
  const byte_vec blocked = method_frame(0, b);
  const byte_vec unblocked = method_frame(0, connection_unblocked{});
  for (int i = 0; i < 50000; ++i) {
    all.insert(all.end(), blocked.begin(), blocked.end());
    all.insert(all.end(), unblocked.begin(), unblocked.end());
  }
  all.insert(all.end(), blocked.begin(), blocked.end());
  reset_largest_allocation();
  const std::size_t before = allocation_count();
  s.feed(all);
  // Each notice replaces the last: no allocation grows with their number.
  CHECK(allocation_count() - before < 1000);
  CHECK(s.core.blocked());

  recorder first;
  s.core.next_event(s.core.next_op_id(), first.cb());
  REQUIRE(first.ok());
  CHECK(first.result().event->type == connection_event_type::blocked);
  CHECK(first.result().event->reason == "low on memory");
  recorder second;
  s.core.next_event(s.core.next_op_id(), second.cb());
  CHECK_FALSE(second.done());
  // A second reader is refused; the first keeps its place.
  recorder third;
  s.core.next_event(s.core.next_op_id(), third.cb());
  REQUIRE(third.done());
  CHECK(third.code() == std::errc::operation_in_progress);
  s.send(0, connection_unblocked{});
  REQUIRE(second.ok());
  CHECK(second.result().event->type == connection_event_type::unblocked);
}

TEST_CASE("core replies owed to a broker that does not read are bounded") {
  detail::core_config cfg;
  cfg.max_owed_output = 64 * 1024;
  script s(cfg);
  s.handshake();
  const auto ch = s.open_channel();
  channel_flow stop;
  stop.active = false;

  SUBCASE("read as it comes: no limit reached") {
    for (int i = 0; i < 100; ++i) {
      flood(s, ch, stop, 1000);
      s.discard();
    }
    CHECK(s.core.is_open());
  }
  SUBCASE("never read: the connection fails, the output stops growing") {
    for (int i = 0; i < 100 && s.core.is_open(); ++i) flood(s, ch, stop, 1000);
    REQUIRE(s.core.is_closed());
    CHECK(s.core.close_reason().code == errc::output_overflow);
    CHECK(s.core.output().size() < 2 * cfg.max_owed_output);
    const std::size_t at_close = s.core.output().size();
    flood(s, ch, stop, 1000);
    CHECK(s.core.output().size() == at_close);
  }
}

TEST_CASE("core frame_max 0 (no limit) still caps what one header can announce") {
  connection_params p;
  p.frame_max = 0;
  detail::core_config cfg;
  cfg.params = p;
  script s(cfg);
  s.handshake(broker_tune(2047, 0, 60));
  CHECK(s.core.frame_max() == 0);
  const auto ch = s.open_channel();
  (void)ch;
  reset_largest_allocation();
  // A body frame header announcing 4 GiB - 16 on channel 1, and a few bytes.
  byte_vec huge = {3, 0, 1, 0xFF, 0xFF, 0xFF, 0xF0, 1, 2, 3};
  s.feed(huge);
  CHECK(largest_allocation() < (1u << 20));
  REQUIRE(s.core.is_closed());
  CHECK(s.core.close_reason().code == errc::frame_too_large);
}

TEST_CASE("frame parser reserves as bytes arrive, not what a header announces") {
  frame_parser p(0xFFFFFFFFu);
  reset_largest_allocation();
  byte_vec header = {3, 0, 1, 0x40, 0x00, 0x00, 0x00};  // 1 GiB
  p.feed(view(header));
  frame_view f;
  std::error_code ec;
  CHECK(p.next(f, ec) == frame_parser::status::need_more);
  CHECK(largest_allocation() < (1u << 20));
}

TEST_CASE("core request deadlines") {
  detail::core_config cfg;
  cfg.request_timeout = 1000ms;
  script s(cfg);
  s.handshake();
  const auto ch = s.open_channel();
  const auto t0 = detail::connection_core::clock::now();

  SUBCASE("a reply that never comes fails the request and closes the channel") {
    recorder r = s.request(ch, declare("q"));
    s.expect<queue_declare>(ch);
    s.core.tick(t0);  // stamps the deadline
    s.core.tick(t0 + 900ms);
    CHECK_FALSE(r.done());
    s.core.tick(t0 + 1000ms);
    REQUIRE(r.done());
    CHECK(r.code() == errc::timeout);
    CHECK(r.result().error.text.find("queue.declare") != std::string::npos);
    CHECK_FALSE(s.core.is_channel_open(ch));
    CHECK(s.core.channel_error(ch).code == errc::timeout);
    s.expect<channel_close>(ch);
    // The id stays taken until the broker answers the close.
    recorder other;
    const auto ch2 = s.core.open_channel(s.core.next_op_id(), other.cb());
    CHECK(ch2 != ch);
    s.discard();
    // A late reply, a delivery, anything: dropped without a protocol error.
    queue_declare_ok ok;
    ok.queue = "q";
    s.send(ch, ok);
    CHECK(s.core.is_open());
    s.send(ch, channel_close_ok{});
    CHECK(s.core.is_open());
    s.expect_silence();
  }
  SUBCASE("a channel.close never answered") {
    recorder r;
    s.core.close_channel(ch, s.core.next_op_id(), r.cb());
    s.expect<channel_close>(ch);
    s.core.tick(t0);
    s.core.tick(t0 + 1000ms);
    REQUIRE(r.done());
    CHECK(r.code() == errc::timeout);
    s.expect_silence();  // no second close
    CHECK(s.core.is_open());
  }
  SUBCASE("a connection.close never answered fails the connection") {
    recorder r;
    s.core.close(200, "bye", s.core.next_op_id(), r.cb());
    s.expect<connection_close>(0);
    s.core.tick(t0);
    s.core.tick(t0 + 1000ms);
    REQUIRE(r.done());
    CHECK(r.code() == errc::timeout);
    CHECK(s.core.is_closed());
  }
  SUBCASE("heartbeats from the broker do not extend a deadline") {
    recorder r = s.request(ch, declare("q"));
    s.discard();
    s.core.tick(t0);
    const byte_vec hb = {8, 0, 0, 0, 0, 0, 0, 0xCE};
    for (int i = 1; i <= 10; ++i) {
      s.feed(hb);
      s.core.tick(t0 + i * 100ms);
    }
    CHECK(r.done());
  }
}

TEST_CASE("core a delivery for a consumer tag nobody registered is rejected with requeue") {
  script s;
  s.handshake();
  const auto ch = s.open_channel();
  basic_deliver d;
  d.consumer_tag = "nobody";
  d.delivery_tag = 7;
  d.exchange = "ex";
  d.routing_key = "rk";
  s.send_message(ch, d, "body");
  auto rej = s.expect<basic_reject>(ch);
  CHECK(rej.delivery_tag == 7);
  CHECK(rej.requeue);
  CHECK(s.core.is_channel_open(ch));
}

TEST_CASE("core heartbeats while reading is paused") {
  script s;
  s.handshake(broker_tune(2047, 131072, 10));
  const auto ch = s.open_channel();
  auto c = s.consume(ch, "q", "ctag", 1);
  basic_deliver d;
  d.consumer_tag = "ctag";
  for (std::uint64_t tag = 1; tag <= 2; ++tag) {
    d.delivery_tag = tag;
    s.send_message(ch, d, "x");
  }
  REQUIRE(s.core.reading_paused());
  s.discard();

  SUBCASE("bytes wait unread: the broker is alive") {
    for (int i = 0; i < 10; ++i) s.core.heartbeat_tick(true);
    CHECK(s.core.is_open());
  }
  SUBCASE("nothing arrives: a dead broker is noticed all the same") {
    s.core.heartbeat_tick(false);  // the deliveries were read since the last tick
    for (int i = 0; i < 3; ++i) s.core.heartbeat_tick(false);
    CHECK(s.core.is_open());
    s.core.heartbeat_tick(false);  // two intervals of silence
    REQUIRE(s.core.is_closed());
    CHECK(s.core.close_reason().code == errc::heartbeat_timeout);
  }
}

TEST_CASE("core a delivery over max_body_size closes its channel, not the connection") {
  script s(body_limit_100());
  s.handshake();
  const auto ch = s.open_channel();
  const auto other = s.open_channel();
  auto c = s.consume(ch, "q", "t");
  recorder waiting;
  s.core.wait_delivery(c, s.core.next_op_id(), waiting.cb());
  REQUIRE_FALSE(waiting.done());

  basic_deliver d;
  d.consumer_tag = "t";
  d.delivery_tag = 1;
  // 1000 bytes in body frames of 64: skipped, never stored.
  s.send_message(ch, d, std::string(1000, 'x'), {}, 64);
  auto close = s.expect<channel_close>(ch);
  CHECK(close.reply_code == 200);
  CHECK(close.reply_text.find("1000") != std::string::npos);
  s.expect_silence();
  REQUIRE(waiting.done());
  CHECK(waiting.code() == errc::message_too_large);
  CHECK(waiting.result().error.text.find("1000 bytes") != std::string::npos);
  CHECK(waiting.result().error.text.find("(100 bytes)") != std::string::npos);
  CHECK(s.core.is_open());
  CHECK_FALSE(s.core.is_channel_open(ch));

  // What the broker had sent there before our close is dropped; its close-ok
  // frees the id.
  s.send_message(ch, d, std::string(10, 'y'));
  s.send(ch, channel_close_ok{});
  s.expect_silence();

  // The other channel works on.
  auto declared = s.request(other, declare("q2"));
  s.expect<queue_declare>(other);
  queue_declare_ok ok;
  ok.queue = "q2";
  s.send(other, ok);
  CHECK(declared.ok());
  CHECK(s.core.is_open());
}

TEST_CASE("core a basic.get-ok over max_body_size fails the get and closes the channel") {
  script s(body_limit_100());
  s.handshake();
  const auto ch = s.open_channel();
  auto got = get_from_q(s, ch);
  basic_get_ok ok;
  ok.delivery_tag = 1;
  s.send_message(ch, ok, std::string(101, 'x'));
  s.expect<channel_close>(ch);
  REQUIRE(got.done());
  CHECK(got.code() == errc::message_too_large);
  CHECK(s.core.is_open());
}

TEST_CASE("core a get-ok over max_body_size while a close waits fails the get, then closes") {
  script s(body_limit_100());
  s.handshake();
  const auto ch = s.open_channel();
  auto got = get_from_q(s, ch);
  // The close waits behind the get on the wire.
  recorder closed;
  s.core.close_channel(ch, s.core.next_op_id(), closed.cb());
  s.expect_silence();
  basic_get_ok ok;
  ok.delivery_tag = 1;
  s.send_message(ch, ok, std::string(1000, 'x'), {}, 300);
  REQUIRE(got.done());
  CHECK(got.code() == errc::message_too_large);
  s.expect<channel_close>(ch);
  s.expect_silence();
  CHECK(s.core.is_open());
  s.send(ch, channel_close_ok{});
  REQUIRE(closed.done());
  CHECK(closed.ok());
}

TEST_CASE("core a delivery over max_body_size on a channel being closed is skipped") {
  script s(body_limit_100());
  s.handshake();
  const auto ch = s.open_channel();
  auto c = s.consume(ch, "q", "t");
  recorder closed;
  s.core.close_channel(ch, s.core.next_op_id(), closed.cb());
  s.expect<channel_close>(ch);
  basic_deliver d;
  d.consumer_tag = "t";
  d.delivery_tag = 1;
  s.send_message(ch, d, std::string(1000, 'x'), {}, 300);
  s.expect_silence();
  CHECK(s.core.is_open());
  s.send(ch, channel_close_ok{});
  REQUIRE(closed.done());
  CHECK(closed.ok());
  s.expect_silence();
}
