// A harness for scripting connection_core exchanges without a socket: feed the
// frames a broker would send, then check, frame by frame, what the core wrote.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "warren/client/core.hpp"
#include "warren/client/wire.hpp"
#include "warren/codec/bytes.hpp"
#include "warren/codec/frame.hpp"
#include "warren/proto/methods.hpp"

namespace warren::test {

using byte_vec = std::vector<std::uint8_t>;
using detail::connection_core;
using detail::op_result;

inline bytes_view view(const byte_vec& v) noexcept { return {v.data(), v.size()}; }

inline std::string hex(bytes_view b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i != 0) s += (i % 16 == 0) ? '\n' : ' ';
    s += digits[b[i] >> 4];
    s += digits[b[i] & 15];
  }
  return s;
}
inline std::string hex(const byte_vec& v) { return hex(view(v)); }

// Records what a completion was called with. Copies share the record, so a
// callback handed to the core stays observable from the test.
class recorder {
 public:
  detail::completion cb() const {
    return [calls = calls_](op_result&& r) { calls->push_back(std::move(r)); };
  }
  // The same for an operation that only wakes its caller: recorded as an
  // empty result, or as the error it failed with.
  detail::wake wake_cb() const {
    return [calls = calls_](const error_info* why) {
      calls->push_back(why ? detail::failed_result(*why) : op_result{});
    };
  }
  std::size_t count() const noexcept { return calls_->size(); }
  bool done() const noexcept { return !calls_->empty(); }
  // The one result; a completion must never run twice.
  op_result& result() const {
    REQUIRE(calls_->size() == 1);
    return calls_->front();
  }
  bool ok() const { return done() && !result().error; }
  std::error_code code() const { return result().error.code; }

 private:
  std::shared_ptr<std::vector<op_result>> calls_ = std::make_shared<std::vector<op_result>>();
};

// One frame the core wrote, copied out of its output.
struct written_frame {
  frame_type type{};
  std::uint16_t channel = 0;
  byte_vec payload;

  std::uint32_t key() const noexcept {
    return type == frame_type::method ? peek_method_key(view(payload)) : 0;
  }
  std::string describe() const {
    std::string s = "frame type " + std::to_string(static_cast<int>(type)) + " on channel " +
                    std::to_string(channel);
    if (type == frame_type::method) s += ": " + method_name(key() >> 16, key() & 0xFFFF);
    return s;
  }
};

// Builders for what the broker sends.
template <class M>
byte_vec method_frame(std::uint16_t ch, const M& m) {
  byte_buffer b;
  REQUIRE(!write_method_frame(b, ch, m));
  return byte_vec(b.data(), b.data() + b.size());
}

inline byte_vec header_frame(std::uint16_t ch, std::uint64_t body_size,
                             const basic_properties& props = {}) {
  byte_buffer b;
  writer w(b);
  const std::size_t start = begin_frame(w, frame_type::header, ch);
  encode_content_header(w, body_size, props);
  finish_frame(w, start);
  REQUIRE(w.ok());
  return byte_vec(b.data(), b.data() + b.size());
}

inline byte_vec body_frame(std::uint16_t ch, std::string_view body) {
  byte_buffer b;
  write_frame(b, frame_type::body, ch, as_bytes(body));
  return byte_vec(b.data(), b.data() + b.size());
}

// Header and body frames of one message; the body is cut into frames of at
// most `chunk` bytes (0: one frame; none at all for an empty body).
inline byte_vec content_frames(std::uint16_t ch, std::string_view body,
                               const basic_properties& props = {}, std::size_t chunk = 0) {
  byte_vec out = header_frame(ch, body.size(), props);
  if (chunk == 0) chunk = body.size();
  for (std::size_t at = 0; at < body.size(); at += chunk) {
    byte_vec f = body_frame(ch, body.substr(at, chunk));
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

// Methods tests send or expect often.
inline queue_declare declare(std::string name) {
  queue_declare m;
  m.queue = std::move(name);
  return m;
}
template <class M>  // basic_ack or basic_nack
M confirm_of(std::uint64_t tag, bool multiple) {
  M m;
  m.delivery_tag = tag;
  m.multiple = multiple;
  return m;
}
inline basic_ack ack(std::uint64_t tag, bool multiple = false) {
  return confirm_of<basic_ack>(tag, multiple);
}
inline basic_nack nack(std::uint64_t tag, bool multiple = false) {
  return confirm_of<basic_nack>(tag, multiple);
}

inline connection_start broker_start() {
  connection_start s;
  s.version_major = 0;
  s.version_minor = 9;
  field_table caps;
  caps.add("publisher_confirms", true)
      .add("exchange_exchange_bindings", true)
      .add("basic.nack", true)
      .add("consumer_cancel_notify", true)
      .add("connection.blocked", true)
      .add("authentication_failure_close", true)
      .add("per_consumer_qos", true);
  s.server_properties.add("capabilities", std::move(caps))
      .add("product", "RabbitMQ")
      .add("version", "3.12.1");
  s.mechanisms = "PLAIN AMQPLAIN";
  s.locales = "en_US";
  return s;
}

inline connection_tune broker_tune(std::uint16_t channel_max = 2047,
                                   std::uint32_t frame_max = 131072, std::uint16_t heartbeat = 60) {
  connection_tune t;
  t.channel_max = channel_max;
  t.frame_max = frame_max;
  t.heartbeat = heartbeat;
  return t;
}

inline detail::core_config default_config() { return {}; }

class script {
 public:
  explicit script(detail::core_config cfg = default_config()) : core(std::move(cfg)) {
    parser_.set_frame_max(0xFFFFFFFFu);
  }

  connection_core core;
  // Bytes fed to the core and taken from its output so far.
  std::uint64_t bytes_fed = 0;
  std::uint64_t bytes_taken = 0;

  // ---- the broker's side ---------------------------------------------------

  // Feeds bytes in pieces of `chunk` bytes (0: all at once).
  void feed(const byte_vec& bytes, std::size_t chunk = 0) {
    bytes_fed += bytes.size();
    if (chunk == 0 || chunk >= bytes.size()) {
      core.feed(view(bytes));
      return;
    }
    for (std::size_t at = 0; at < bytes.size(); at += chunk)
      core.feed(view(bytes).subspan(at, std::min(chunk, bytes.size() - at)));
  }
  template <class M>
  void send(std::uint16_t ch, const M& m) {
    feed(method_frame(ch, m));
  }
  // A content-carrying method with its header and body frames, in one read.
  template <class M>
  void send_message(std::uint16_t ch, const M& m, std::string_view body,
                    const basic_properties& props = {}, std::size_t chunk = 0) {
    byte_vec all = method_frame(ch, m);
    byte_vec content = content_frames(ch, body, props, chunk);
    all.insert(all.end(), content.begin(), content.end());
    feed(all);
  }

  // ---- what the core wrote -------------------------------------------------

  // The raw output, taken from the core; nothing may be left unchecked.
  byte_vec take_raw() {
    REQUIRE(pending_.empty());
    byte_buffer out;
    core.take_output(out);
    bytes_taken += out.size();
    return byte_vec(out.data(), out.data() + out.size());
  }

  // Moves the core's output into the queue of written frames.
  void collect() {
    byte_buffer out;
    core.take_output(out);
    bytes_taken += out.size();
    if (out.empty()) return;
    parser_.feed(out.view());
    frame_view f;
    std::error_code ec;
    for (;;) {
      auto st = parser_.next(f, ec);
      REQUIRE_MESSAGE(st != frame_parser::status::error,
                      "core wrote a malformed frame: ", ec.message());
      if (st == frame_parser::status::need_more) break;
      pending_.push_back({f.type, f.channel, byte_vec(f.payload.begin(), f.payload.end())});
    }
    REQUIRE_MESSAGE(parser_.buffered() == 0, "core wrote a partial frame");
  }

  written_frame next_frame() {
    collect();
    REQUIRE_MESSAGE(!pending_.empty(), "expected a frame, the core wrote nothing");
    written_frame f = std::move(pending_.front());
    pending_.pop_front();
    return f;
  }

  // The next frame written must be method M on channel `ch`; returns it decoded.
  template <class M>
  M expect(std::uint16_t ch) {
    written_frame f = next_frame();
    INFO("expected ", M::name, " on channel ", ch, ", got ", f.describe());
    REQUIRE(f.type == frame_type::method);
    REQUIRE(f.channel == ch);
    REQUIRE(f.key() == M::key);
    M m;
    REQUIRE(!decode_method_as(view(f.payload), m));
    return m;
  }

  // Nothing more was written.
  void expect_silence() {
    collect();
    if (!pending_.empty()) FAIL_CHECK("unexpected write: ", pending_.front().describe());
    pending_.clear();
  }

  // Drops whatever was written so far, unchecked.
  void discard() {
    collect();
    pending_.clear();
  }

  std::size_t frames_pending() {
    collect();
    return pending_.size();
  }

  // ---- whole exchanges -----------------------------------------------------

  // Runs the handshake to connection.open-ok.
  void handshake(const connection_tune& tune = broker_tune()) {
    recorder opened;
    core.start(opened.cb());
    REQUIRE(take_raw() == byte_vec(protocol_header.begin(), protocol_header.end()));
    send(0, broker_start());
    expect<connection_start_ok>(0);
    send(0, tune);
    expect<connection_tune_ok>(0);
    expect<connection_open>(0);
    send(0, connection_open_ok{});
    REQUIRE(opened.ok());
    REQUIRE(core.is_open());
    expect_silence();
  }

  // Opens a channel and returns its id.
  std::uint16_t open_channel() {
    recorder opened;
    const std::uint16_t ch = core.open_channel(core.next_op_id(), opened.cb());
    REQUIRE(ch != 0);
    expect<channel_open>(ch);
    send(ch, channel_open_ok{});
    REQUIRE(opened.ok());
    REQUIRE(core.is_channel_open(ch));
    return ch;
  }

  // Sends a request on `ch` and returns the recorder of its completion.
  template <class M>
  recorder request(std::uint16_t ch, const M& m, std::uint64_t* id = nullptr) {
    recorder r;
    const std::uint64_t op = core.next_op_id();
    if (id) *id = op;
    core.request(ch, m, op, r.cb());
    return r;
  }

  // Starts a consumer on `ch` and lets the broker confirm it under `tag`.
  std::shared_ptr<detail::consumer_state> consume(std::uint16_t ch, std::string queue,
                                                  std::string tag, std::size_t capacity = 1024) {
    auto c = std::make_shared<detail::consumer_state>();
    c->capacity = capacity;
    basic_consume m;
    m.queue = std::move(queue);
    recorder done;
    core.consume(ch, m, c, core.next_op_id(), done.cb());
    CHECK(expect<basic_consume>(ch).queue == m.queue);
    basic_consume_ok ok;
    ok.consumer_tag = std::move(tag);
    send(ch, ok);
    REQUIRE(done.ok());
    REQUIRE(c->state == detail::consumer_state::status::active);
    return c;
  }

  // Puts `ch` into confirm mode.
  void confirm_select(std::uint16_t ch) {
    recorder done;
    core.confirm_select(ch, core.next_op_id(), done.cb());
    expect<warren::confirm_select>(ch);
    send(ch, warren::confirm_select_ok{});
    REQUIRE(done.ok());
    REQUIRE(core.confirm_mode(ch));
  }

  // Publishes `body` and returns the recorder of its outcome.
  recorder publish(std::uint16_t ch, std::string_view body, std::string_view exchange = "ex",
                   std::string_view routing_key = "rk", bool mandatory = false,
                   std::uint64_t* sequence = nullptr) {
    recorder r;
    publish_frame_args a;
    a.channel = ch;
    a.exchange = exchange;
    a.routing_key = routing_key;
    a.mandatory = mandatory;
    REQUIRE(
        !core.publish(a, basic_properties{}, as_bytes(body), core.next_op_id(), r.cb(), sequence));
    return r;
  }

  // The next delivery of `c`, which must already be there.
  message next_delivery(const std::shared_ptr<detail::consumer_state>& c) {
    recorder r;
    core.wait_delivery(c, core.next_op_id(), r.cb());
    REQUIRE(r.done());
    REQUIRE(!r.result().error);
    message m;
    REQUIRE(core.take_delivery(c, m));
    return m;
  }

 private:
  frame_parser parser_;
  std::deque<written_frame> pending_;
};

}  // namespace warren::test
