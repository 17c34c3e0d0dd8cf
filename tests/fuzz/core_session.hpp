// One session of connection_core driven by fuzz input, with the invariants a
// hostile broker must never break checked after every step. Shared by the
// libFuzzer target (core_fuzz.cpp, which aborts on a violation) and the
// doctest replay of saved inputs (tests/client/core_regression_test.cpp, which
// records it).
//
// The session plays both sides, the way the socket driver and a broker would:
//
//   * a scripted, valid handshake first (PLAIN, tune, open-ok), so that the
//     input is spent past it;
//   * then the input, read as steps: client calls (open a channel, declare,
//     consume, publish in confirm mode, wait for confirms, read deliveries,
//     cancel an operation by id, heartbeat ticks, a transport error...) mixed
//     with broker frames (most of them well-formed and answering what the
//     client really sent, so that the session gets deep; some raw bytes);
//   * broker bytes reach the core in chunks whose size the input picks, and
//     never while the core says reading is paused (the driver would not read);
//   * the client's output is drained after every step into a model broker
//     that parses it, unless the input has stalled the output (a broker that
//     does not read).
//
// Invariants (a violation names itself in violation()):
//   * every completion runs at most once, and none is destroyed unrun;
//   * once is_closed(), nothing is pending: every completion has run;
//   * cancel_op(id) ends a pending operation at once, and reports only those;
//   * wait_for_confirms completes only after the channel's earlier publishes;
//   * what the client writes is well-formed frames within frame_max, methods
//     that decode, content that matches its header; nothing after
//     connection.close but close-ok, nothing after close-ok, and nothing but
//     close-ok on a channel after the client's channel.close (the spec's MUST);
//   * memory the broker can make the core hold is bounded: the output not yet
//     taken (beyond the client's own calls) stays under the configured limit
//     plus what one read can produce; consumer streams under their capacity
//     plus one read's worth; queued returns and connection events likewise;
//   * a message the user takes (delivery, get-ok, return) is the one the
//     broker sent: tags, body and properties, and deliveries in order;
//   * at the end, once the user has drained every stream, reading is not
//     paused; once the broker has answered every request and confirmed every
//     publish, nothing but waits for the broker's own initiative is pending.
//
// Input layout: byte 0 configures the session (see configure()); every later
// step is one byte, `step(byte % step_count)`, followed by its arguments. A
// short input reads zeros past its end. WARREN_CORE_FUZZ_TRACE=1 prints the
// steps and the frames of both sides to stderr.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "warren/client/core.hpp"
#include "warren/client/wire.hpp"
#include "warren/codec/frame.hpp"
#include "warren/proto/methods.hpp"

namespace warren::fuzz {

// The steps, in the order of their byte values (modulo step_count), with
// the argument bytes each reads. Append only: the saved inputs under
// tests/fuzz/regressions/ mean what this table says.
enum class step : std::uint8_t {
  // ---- client calls
  open_channel,       // -
  close_channel,      // ch
  request,            // ch, kind, name
  consume,            // ch, flags
  cancel_consumer,    // consumer
  abandon_consumer,   // consumer
  read_deliveries,    // consumer, mode
  confirm_select,     // ch, window
  publish,            // ch, flags, size
  wait_for_confirms,  // ch
  next_return,        // ch, mode
  next_event,         // mode
  cancel_op,          // which
  heartbeat_tick,     // -
  output,             // mode: bit 0 stalls the output (the broker stops reading)
  transport_error,    // -
  close,              // code
  send_ack,           // ch, tag, flags
  // ---- broker frames
  answer,            // which, mode
  deliver,           // ch, tag, flags
  confirm,           // ch, which, flags
  return_message,    // ch, which, flags
  channel_close,     // ch, code
  channel_flow,      // ch, active
  blocked,           // mode
  broker_cancel,     // ch, tag, no_wait
  connection_close,  // code
  heartbeat,         // mode
  raw_method,        // ch, length, payload
  raw_bytes,         // length, bytes
  content,           // ch, kind, size
  repeat,            // count: the previous broker step again, 1 to 64 times
  reads,             // mode: chunk size, hold, feed now
  // ---- client calls the core may not have (skipped where it has not)
  tick,           // milliseconds: request deadlines (connection_core::tick)
  wait_writable,  // ch
  count
};
inline constexpr std::uint8_t step_count = static_cast<std::uint8_t>(step::count);

inline const char* step_name(std::uint8_t s) {
  static const char* const names[] = {"open_channel",
                                      "close_channel",
                                      "request",
                                      "consume",
                                      "cancel_consumer",
                                      "abandon_consumer",
                                      "read_deliveries",
                                      "confirm_select",
                                      "publish",
                                      "wait_for_confirms",
                                      "next_return",
                                      "next_event",
                                      "cancel_op",
                                      "heartbeat_tick",
                                      "output",
                                      "transport_error",
                                      "close",
                                      "send_ack",
                                      "answer",
                                      "deliver",
                                      "confirm",
                                      "return_message",
                                      "channel_close",
                                      "channel_flow",
                                      "blocked",
                                      "broker_cancel",
                                      "connection_close",
                                      "heartbeat",
                                      "raw_method",
                                      "raw_bytes",
                                      "content",
                                      "repeat",
                                      "reads",
                                      "tick",
                                      "wait_writable"};
  static_assert(std::size(names) == static_cast<std::size_t>(step::count));
  return s < std::size(names) ? names[s] : "?";
}

// Builds inputs for seeds and tests: config byte, then steps and arguments.
class program {
 public:
  explicit program(std::uint8_t config = 0) { bytes_.push_back(config); }
  program& add(step s, std::initializer_list<std::uint8_t> args = {}) {
    bytes_.push_back(static_cast<std::uint8_t>(s));
    bytes_.insert(bytes_.end(), args.begin(), args.end());
    return *this;
  }
  const std::vector<std::uint8_t>& bytes() const noexcept { return bytes_; }
  std::string str() const { return std::string(bytes_.begin(), bytes_.end()); }

 private:
  std::vector<std::uint8_t> bytes_;
};

// What happens on a broken invariant.
enum class on_violation : std::uint8_t {
  abort,   // print it and abort (libFuzzer records the input and the stack)
  record,  // keep the first one and stop the session
};

class core_session {
 public:
  using core_type = detail::connection_core;

  core_session(bytes_view input, on_violation policy) : in_(input), policy_(policy) {
    const char* t = std::getenv("WARREN_CORE_FUZZ_TRACE");
    trace_ = t != nullptr && *t != '\0' && *t != '0';
  }
  ~core_session() {
    tearing_down_ = true;
    core_.reset();
  }
  core_session(const core_session&) = delete;
  core_session& operator=(const core_session&) = delete;

  // Interprets the whole input; false if an invariant broke.
  bool run() {
    configure(in_.u8());
    if (!handshake()) return false;
    while (!in_.empty() && !violated_) {
      const std::uint8_t b = in_.u8();
      if (trace_) std::fprintf(stderr, "step %zu: %s\n", stats_.steps, step_name(b % step_count));
      do_step(static_cast<step>(b % step_count));
      if (violated_) break;
      after_step();
    }
    if (!violated_) finish();
    return !violated_;
  }

  bool violated() const noexcept { return violated_; }
  const std::string& violation() const noexcept { return violation_; }

  // For tests of the harness itself: how far the session got.
  struct counters {
    std::size_t steps = 0;
    std::size_t channels_opened = 0;
    std::size_t deliveries_taken = 0;
    std::size_t confirms = 0;  // publish completions with an ack or nack
    std::size_t returns_taken = 0;
    std::size_t events_taken = 0;
    std::size_t bytes_fed = 0;
    std::size_t bytes_written = 0;
    bool closed = false;
  };
  const counters& stats() const noexcept { return stats_; }

 private:
  // ---- input ------------------------------------------------------------------

  class reader {
   public:
    explicit reader(bytes_view b) : b_(b) {}
    bool empty() const noexcept { return pos_ >= b_.size(); }
    std::size_t pos() const noexcept { return pos_; }
    std::uint8_t u8() noexcept { return pos_ < b_.size() ? b_[pos_++] : 0; }
    bytes_view take(std::size_t n) noexcept {
      n = std::min(n, b_.size() - std::min(pos_, b_.size()));
      bytes_view v = b_.subspan(std::min(pos_, b_.size()), n);
      pos_ += n;
      return v;
    }
    bytes_view span(std::size_t from, std::size_t to) const noexcept {
      return b_.subspan(from, to - from);
    }

   private:
    bytes_view b_;
    std::size_t pos_ = 0;
  };

  // ---- completions --------------------------------------------------------------

  enum class op_kind : std::uint8_t {
    start,
    open_channel,
    close_channel,
    request,
    consume,
    cancel,
    wait_delivery,
    confirm_select,
    publish,
    wait_for_confirms,
    next_return,
    next_event,
    close,
    wait_writable
  };
  static const char* kind_name(op_kind k) {
    static const char* const names[] = {
        "start",       "open_channel",  "close_channel",  "request",      "consume",
        "cancel",      "wait_delivery", "confirm_select", "publish",      "wait_for_confirms",
        "next_return", "next_event",    "close",          "wait_writable"};
    return names[static_cast<int>(k)];
  }

  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  struct op_record {
    op_kind kind{};
    std::uint64_t id = 0;
    std::uint16_t channel = 0;
    std::uint32_t generation = 0;  // of the channel id, see open_channel
    std::uint64_t sequence = 0;    // publish: its sequence number in confirm mode
    std::size_t consumer = none;
    std::size_t horizon = 0;  // wait_for_confirms: records before it
    std::uint32_t calls = 0;
    std::error_code error;
    // Requests: the first tick() since it could be on the wire, which starts
    // its deadline.
    std::optional<std::chrono::steady_clock::time_point> first_tick;
  };

  // Lives in each completion: tells the session if the core destroys one
  // that never ran (an operation that can never finish).
  struct completion_guard {
    core_session* s;
    std::size_t index;
    completion_guard(core_session* s_, std::size_t i) : s(s_), index(i) {}
    completion_guard(completion_guard&& o) noexcept : s(o.s), index(o.index) { o.s = nullptr; }
    completion_guard(const completion_guard&) = delete;
    completion_guard& operator=(const completion_guard&) = delete;
    completion_guard& operator=(completion_guard&&) = delete;
    ~completion_guard() {
      if (s != nullptr) s->on_destroyed(index);
    }
  };

  std::size_t new_op(op_kind kind, std::uint16_t ch = 0) {
    op_record r;
    r.kind = kind;
    r.id = ++next_id_ * 7 + 1000;  // never the core's own numbering
    r.channel = ch;
    r.generation = generation(ch);
    records_.push_back(r);
    ++pending_;
    return records_.size() - 1;
  }

  detail::completion completion_for(std::size_t index) {
    return [g = completion_guard(this, index)](detail::op_result&& r) mutable {
      g.s->on_complete(g.index, std::move(r));
    };
  }

  detail::wake wake_for(std::size_t index) {
    return [g = completion_guard(this, index)](const error_info* why) mutable {
      g.s->on_complete(g.index, why ? detail::failed_result(*why) : detail::op_result{});
    };
  }

  void on_destroyed(std::size_t index) {
    if (tearing_down_ || index >= records_.size()) return;
    const op_record& r = records_[index];
    if (r.calls == 0)
      fail("the core destroyed the completion of " + describe(index) + " without running it");
  }

  std::string describe(std::size_t index) const {
    const op_record& r = records_[index];
    return std::string(kind_name(r.kind)) + " #" + std::to_string(index) + " (id " +
           std::to_string(r.id) + ", channel " + std::to_string(r.channel) + ")";
  }

  void on_complete(std::size_t index, detail::op_result&& res) {
    op_record& r = records_[index];
    if (++r.calls > 1) {
      fail("the completion of " + describe(index) + " ran twice");
      return;
    }
    --pending_;
    r.error = res.error.code;
    if (awaits_reply(r.kind)) {
      // The next request of the channel goes on the wire now: its deadline
      // starts at the next tick.
      for (op_record& o : records_)
        if (o.calls == 0 && o.channel == r.channel && awaits_reply(o.kind)) o.first_tick.reset();
    }
    switch (r.kind) {
      case op_kind::open_channel: break;
      case op_kind::consume:
        if (r.consumer != none) {
          consumer_rec& c = consumers_[r.consumer];
          if (res.error)
            c.dead = true;
          else
            c.started = true;
        }
        break;
      case op_kind::wait_delivery:
        if (r.consumer != none && consumers_[r.consumer].waiter == index)
          consumers_[r.consumer].waiter = none;
        break;
      case op_kind::publish:
        if (!res.error && r.sequence != 0) {
          if (res.outcome.sequence != r.sequence)
            fail("the outcome of " + describe(index) + " names sequence " +
                 std::to_string(res.outcome.sequence) + ", publish() gave " +
                 std::to_string(r.sequence));
          if (res.outcome.status != publish_status::sent) ++stats_.confirms;
        }
        break;
      case op_kind::wait_for_confirms:
        if (!res.error) check_confirms_done(index);
        break;
      case op_kind::next_return:
        if (!res.error && res.returned) {
          ++stats_.returns_taken;
          const returned_message& m = *res.returned;
          if (const std::size_t n = serial_in(m.reply_text); n != none)
            check_content(sent_[n], m.properties, m.body, "basic.return (" + m.reply_text + ")");
        }
        break;
      case op_kind::request:
        if (!res.error && res.msg) {
          const message& m = *res.msg;
          if (const std::size_t n = serial_in(m.routing_key); n != none) {
            const std::string what = "basic.get-ok " + m.routing_key;
            if (m.delivery_tag != sent_[n].delivery_tag)
              fail(what + " does not carry the delivery tag the broker sent");
            else
              check_content(sent_[n], m.properties, m.body, what);
          }
        }
        break;
      case op_kind::next_event:
        if (!res.error && res.event) ++stats_.events_taken;
        break;
      default: break;
    }
  }

  // Operations that wait for the broker's reply, under request_timeout.
  static bool awaits_reply(op_kind k) {
    switch (k) {
      case op_kind::open_channel:
      case op_kind::close_channel:
      case op_kind::request:
      case op_kind::consume:
      case op_kind::cancel:
      case op_kind::confirm_select:
      case op_kind::close: return true;
      default: return false;
    }
  }

  // wait_for_confirms completed: every earlier confirm-mode publish on the
  // same channel must have completed before it.
  void check_confirms_done(std::size_t index) {
    const op_record& w = records_[index];
    for (std::size_t i = 0; i < w.horizon; ++i) {
      const op_record& p = records_[i];
      if (p.kind != op_kind::publish || p.sequence == 0 || p.channel != w.channel ||
          p.generation != w.generation)
        continue;
      if (p.calls == 0) {
        fail(describe(index) + " completed while " + describe(i) + " (sequence " +
             std::to_string(p.sequence) + ") was still unconfirmed");
        return;
      }
    }
  }

  // ---- violations -----------------------------------------------------------------

  void fail(std::string what) {
    if (violated_) return;
    violated_ = true;
    violation_ = std::move(what);
    if (policy_ == on_violation::abort && !known(violation_)) {
      std::fprintf(stderr, "core_session: invariant violated: %s\n", violation_.c_str());
      std::abort();
    }
    tearing_down_ = true;  // nothing after the first one counts
  }

  // For exploring past a finding not fixed yet: WARREN_CORE_FUZZ_KNOWN holds
  // '|'-separated pieces of violation messages that end the session quietly
  // instead of aborting. Never set by tests/fuzz/run or the tests.
  static bool known(const std::string& what) {
    static const std::string list = [] {
      const char* v = std::getenv("WARREN_CORE_FUZZ_KNOWN");
      return std::string(v == nullptr ? "" : v);
    }();
    for (std::size_t at = 0; at < list.size();) {
      std::size_t end = list.find('|', at);
      if (end == std::string::npos) end = list.size();
      if (end > at && what.find(list.substr(at, end - at)) != std::string::npos) return true;
      at = end + 1;
    }
    return false;
  }

  void check_invariants() {
    if (violated_) return;
    if (core_->is_closed() && pending_ != 0) {
      for (std::size_t i = 0; i < records_.size(); ++i)
        if (records_[i].calls == 0) {
          fail("the core is closed but " + describe(i) + " is still pending (" +
               std::to_string(pending_) + " pending in all)");
          return;
        }
    }
  }

  // ---- configuration and handshake ---------------------------------------------------
  //
  // Config byte: bits 0-1 frame_max the broker tunes {4096, 8192, 131072, 0};
  // bits 2-3 channel_max {0, 2, 8, 2047}; bit 4 heartbeat 60 (else 0); bit 5
  // the library's default limits (else small ones the fuzzer can reach); bit 6
  // the client asks for no frame limit; bit 7 the handshake arrives in 5-byte
  // reads.

  void configure(std::uint8_t c) {
    static const std::uint32_t frame_maxes[] = {4096, 8192, 131072, 0};
    static const std::uint16_t channel_maxes[] = {0, 2, 8, 2047};
    tune_frame_max_ = frame_maxes[c & 3];
    tune_channel_max_ = channel_maxes[(c >> 2) & 3];
    tune_heartbeat_ = (c & 0x10) ? 60 : 0;
    small_ = (c & 0x20) == 0;
    split_handshake_ = (c & 0x80) != 0;

    detail::core_config cfg;
    if (c & 0x40) cfg.params.frame_max = 0;
    if (small_) {
      cfg.max_body_size = 50000;
      cfg.output_high_water = 4096;
      cfg.max_returns_buffered = 4;
      capacity_ = 4;
    } else {
      capacity_ = 1024;
    }
    // Limits that not every version of the core has.
    [this](auto& k) {
      if constexpr (requires { k.request_timeout; }) {
        if (small_) k.request_timeout = std::chrono::milliseconds(1000);
        request_timeout_ = k.request_timeout;
      }
      if constexpr (requires { k.max_owed_output; }) {
        if (small_) k.max_owed_output = 4096;
        owed_limit_ = std::max<std::size_t>(k.max_owed_output, k.output_high_water);
      } else {
        owed_limit_ = k.output_high_water;
      }
    }(cfg);
    max_returns_ = cfg.max_returns_buffered;
    client_frame_max_ = cfg.params.frame_max;
    core_ = std::make_unique<core_type>(std::move(cfg));
  }

  static std::uint32_t negotiate(std::uint32_t ours, std::uint32_t theirs) {
    if (ours == 0) return theirs;
    if (theirs == 0) return ours;
    return std::min(ours, theirs);
  }

  template <class M>
  static void put_method(byte_buffer& out, std::uint16_t ch, const M& m) {
    write_method_frame(out, ch, m);
  }

  void feed_handshake(const byte_buffer& b) {
    const std::size_t chunk = split_handshake_ ? 5 : b.size();
    for (std::size_t at = 0; at < b.size() && !core_->is_closed(); at += chunk)
      core_->feed(b.view().subspan(at, std::min(chunk, b.size() - at)));
  }

  // The frames the core wrote, which must be exactly `keys` on channel 0.
  bool expect_written(std::initializer_list<std::uint32_t> keys, const char* when) {
    byte_buffer out;
    core_->take_output(out);
    frame_parser p(0xFFFFFFFFu);
    p.feed(out.view());
    for (std::uint32_t key : keys) {
      frame_view f;
      std::error_code ec;
      if (p.next(f, ec) != frame_parser::status::frame || f.type != frame_type::method ||
          f.channel != 0 || peek_method_key(f.payload) != key) {
        fail(std::string("handshake: the client did not write ") +
             method_name(static_cast<std::uint16_t>(key >> 16), key & 0xFFFF) + " " + when);
        return false;
      }
      any_method m;
      if (decode_method(f.payload, m)) {
        fail(std::string("handshake: undecodable ") +
             method_name(static_cast<std::uint16_t>(key >> 16), key & 0xFFFF));
        return false;
      }
      if (auto* t = std::get_if<connection_tune_ok>(&m); t && t->frame_max != frame_max_) {
        fail("handshake: tune-ok frame_max " + std::to_string(t->frame_max) + ", expected " +
             std::to_string(frame_max_));
        return false;
      }
    }
    if (p.buffered() != 0) {
      fail(std::string("handshake: unexpected bytes ") + when);
      return false;
    }
    return true;
  }

  bool handshake() {
    const std::size_t start = new_op(op_kind::start);
    core_->start(completion_for(start), records_[start].id);
    byte_buffer out;
    core_->take_output(out);
    if (out.str() != std::string_view(reinterpret_cast<const char*>(protocol_header.data()),
                                      protocol_header.size())) {
      fail("handshake: the client did not start with the protocol header");
      return false;
    }

    connection_start s;
    s.version_major = 0;
    s.version_minor = 9;
    field_table caps;
    caps.add("publisher_confirms", true)
        .add("basic.nack", true)
        .add("consumer_cancel_notify", true)
        .add("connection.blocked", true)
        .add("authentication_failure_close", true);
    s.server_properties.add("capabilities", std::move(caps)).add("product", "fuzz broker");
    s.mechanisms = "PLAIN AMQPLAIN";
    s.locales = "en_US";
    byte_buffer b;
    put_method(b, 0, s);
    feed_handshake(b);
    if (!expect_written({connection_start_ok::key}, "after connection.start")) return false;

    connection_tune t;
    t.channel_max = tune_channel_max_;
    t.frame_max = tune_frame_max_;
    t.heartbeat = tune_heartbeat_;
    frame_max_ = negotiate(client_frame_max_, tune_frame_max_);
    if (frame_max_ != 0 && frame_max_ < frame_min_size) frame_max_ = frame_min_size;
    b.clear();
    put_method(b, 0, t);
    feed_handshake(b);
    if (!expect_written({connection_tune_ok::key, connection_open::key}, "after connection.tune"))
      return false;

    b.clear();
    put_method(b, 0, connection_open_ok{});
    feed_handshake(b);
    if (records_[start].calls != 1 || records_[start].error) {
      fail("handshake: connection.open-ok did not complete start() successfully");
      return false;
    }
    // The broker's own frames stay within what was negotiated.
    body_chunk_ = (frame_max_ == 0 ? 131072 : frame_max_) - frame_overhead;
    return true;
  }

  // ---- the client's channels and consumers ---------------------------------------------

  struct channel_rec {
    std::uint16_t id = 0;
    std::uint64_t last_tag = 0;  // the last delivery tag taken on it
  };
  struct consumer_rec {
    std::shared_ptr<detail::consumer_state> state;
    std::uint16_t channel = 0;
    bool started = false;    // consume completed without error
    bool dead = false;       // consume failed
    bool abandoned = false;  // abandon_consumer called: its handle is gone
    bool no_ack = false;
    std::size_t waiter = none;       // pending wait_delivery
    std::size_t last_serial = none;  // of the last delivery taken
  };

  std::uint32_t generation(std::uint16_t ch) const {
    auto it = generations_.find(ch);
    return it == generations_.end() ? 0 : it->second;
  }

  // A channel for a client call: one open_channel() gave, open or not any
  // more (a user holds only those: never 0, never one it made up); channel
  // 1 before any was opened.
  std::uint16_t pick_channel(std::uint8_t b) const {
    if (channels_.empty()) return 1;
    return channels_[b % channels_.size()].id;
  }

  consumer_rec* pick_consumer(std::uint8_t b) {
    if (consumers_.empty()) return nullptr;
    // The first usable one from a starting point.
    for (std::size_t k = 0; k < consumers_.size(); ++k) {
      consumer_rec& c = consumers_[(b + k) % consumers_.size()];
      if (c.started && !c.abandoned) return &c;
    }
    return nullptr;
  }

  // ---- client steps ----------------------------------------------------------------

  static std::string name_for(std::uint8_t b) {
    switch (b % 4) {
      case 0: return "q";
      case 1: return "";
      case 2: return "amq.x";
      default: return std::string(300, 'n');  // cannot be encoded as a shortstr
    }
  }

  void do_open_channel() {
    if (channels_.size() >= 16) return;
    const std::size_t op = new_op(op_kind::open_channel);
    std::uint16_t ch = 0;
    call([&] { ch = core_->open_channel(records_[op].id, completion_for(op)); });
    credit_ += 64;
    if (ch == 0) return;
    ++stats_.channels_opened;
    ++generations_[ch];
    records_[op].channel = ch;
    records_[op].generation = generation(ch);
    auto it = std::find_if(channels_.begin(), channels_.end(),
                           [ch](const channel_rec& c) { return c.id == ch; });
    if (it == channels_.end())
      channels_.push_back({ch, 0});
    else
      it->last_tag = 0;
  }

  void do_close_channel() {
    const std::uint16_t ch = pick_channel(in_.u8());
    const std::size_t op = new_op(op_kind::close_channel, ch);
    call([&] { core_->close_channel(ch, records_[op].id, completion_for(op)); });
    credit_ += 64;
  }

  template <class M>
  void request(std::uint16_t ch, const M& m) {
    const std::size_t op = new_op(op_kind::request, ch);
    call([&] { core_->request(ch, m, records_[op].id, completion_for(op)); });
    credit_ += m.encoded_size() + 64;
  }
  template <class M>
  void send(std::uint16_t ch, const M& m) {
    (void)core_->send(ch, m);
    credit_ += m.encoded_size() + 64;
  }

  // A no-wait method has no reply to wait for.
  template <class M>
  void send_or_request(std::uint16_t ch, const M& m, bool no_wait) {
    if (no_wait)
      send(ch, m);
    else
      request(ch, m);
  }

  void do_request() {
    const std::uint16_t ch = pick_channel(in_.u8());
    const std::uint8_t kind = in_.u8();
    const std::string name = name_for(in_.u8());
    const bool no_wait = (kind & 0x08) != 0;
    switch (kind & 7) {
      case 0: {
        queue_declare m;
        m.queue = name;
        m.no_wait = no_wait;
        // Over 5000 bytes: more than a frame_max of 4096 allows.
        if (kind & 0x40) m.arguments.add("x-big", std::string(5000, 'a'));
        send_or_request(ch, m, no_wait);
        break;
      }
      case 1: {
        exchange_declare m;
        m.exchange = name;
        m.type = "direct";
        m.no_wait = no_wait;
        send_or_request(ch, m, no_wait);
        break;
      }
      case 2: {
        queue_bind m;
        m.queue = "q";
        m.exchange = name;
        m.routing_key = "rk";
        m.no_wait = no_wait;
        send_or_request(ch, m, no_wait);
        break;
      }
      case 3: {
        basic_qos m;
        m.prefetch_count = static_cast<std::uint16_t>(kind >> 4);
        request(ch, m);
        break;
      }
      case 4: {
        basic_get m;
        m.queue = name;
        m.no_ack = (kind & 0x10) != 0;
        request(ch, m);
        break;
      }
      case 5: {
        queue_delete m;
        m.queue = name;
        m.no_wait = no_wait;
        send_or_request(ch, m, no_wait);
        break;
      }
      case 6: {
        basic_recover m;
        m.requeue = true;
        request(ch, m);
        break;
      }
      default: request(ch, tx_select{}); break;
    }
  }

  void do_consume() {
    const std::uint16_t ch = pick_channel(in_.u8());
    const std::uint8_t flags = in_.u8();
    if (consumers_.size() >= 16) return;
    static const char* const tags[] = {"", "t1", "t2"};
    basic_consume m;
    m.queue = "q";
    m.consumer_tag = (flags & 3) == 3 ? std::string(300, 't') : tags[flags & 3];
    m.no_ack = (flags & 4) != 0;
    m.exclusive = (flags & 8) != 0;
    consumer_rec c;
    c.state = std::make_shared<detail::consumer_state>();
    c.state->capacity = capacity_;
    c.channel = ch;
    c.no_ack = m.no_ack;
    consumers_.push_back(c);
    const std::size_t op = new_op(op_kind::consume, ch);
    records_[op].consumer = consumers_.size() - 1;
    call([&] {
      core_->consume(ch, m, consumers_.back().state, records_[op].id, completion_for(op));
    });
    credit_ += 512;
  }

  void do_cancel_consumer() {
    consumer_rec* c = pick_consumer(in_.u8());
    if (c == nullptr) return;
    const std::size_t op = new_op(op_kind::cancel, c->channel);
    const std::string tag = c->state->tag;
    call([&] { core_->cancel(c->channel, tag, records_[op].id, completion_for(op)); });
    credit_ += 512;
  }

  void do_abandon_consumer() {
    consumer_rec* c = pick_consumer(in_.u8());
    if (c == nullptr) return;
    // A handle is dropped only once nothing awaits it: withdraw the wait first.
    if (c->waiter != none) cancel(c->waiter);
    if (violated_) return;
    c->abandoned = true;
    call([&] { core_->abandon_consumer(c->state); });
    // A requeue per buffered delivery and a basic.cancel.
    credit_ += 48 * stream_bound(*c) + 512;
  }

  // What a stream may hold: its capacity, plus what one read could bring
  // past it before reading pauses (a delivery is at least 46 bytes).
  std::size_t stream_bound(const consumer_rec& c) const {
    return c.state->capacity + 1 + max_read_ / 40;
  }

  void do_read_deliveries() {
    consumer_rec* c = pick_consumer(in_.u8());
    const std::uint8_t mode = in_.u8();
    if (c == nullptr) return;
    if ((mode & 1) && (c->waiter == none || (mode & 0x40))) {
      const std::size_t op = new_op(op_kind::wait_delivery, c->channel);
      records_[op].consumer = static_cast<std::size_t>(c - consumers_.data());
      if (c->waiter == none) c->waiter = op;  // a second one is refused at once
      call([&] { core_->wait_delivery(c->state, records_[op].id, completion_for(op)); });
      if (violated_) return;
    }
    std::size_t taken = 0;
    channel_rec* ch = find_channel_rec(c->channel);
    for (;;) {
      std::uint64_t tag = 0;
      if (mode & 4) {
        message* m = core_->take_delivery(c->state);
        if (m == nullptr) break;
        tag = m->delivery_tag;
        check_delivery(*c, *m);
        m->body.clear();
      } else {
        if (!core_->take_delivery(c->state, scratch_)) break;
        tag = scratch_.delivery_tag;
        check_delivery(*c, scratch_);
      }
      if (violated_) return;
      ++taken;
      ++stats_.deliveries_taken;
      if (ch != nullptr) ch->last_tag = tag;
      if (!(mode & 2)) break;  // one at a time
    }
    if ((mode & 2) && taken > stream_bound(*c)) {
      fail("a consumer stream held " + std::to_string(taken) + " deliveries: capacity " +
           std::to_string(c->state->capacity) + ", largest read " + std::to_string(max_read_) +
           " bytes (reading should have paused)");
      return;
    }
    if ((mode & 8) && ch != nullptr && ch->last_tag != 0 && !c->no_ack) {
      if (mode & 0x20) {
        basic_nack m;
        m.delivery_tag = ch->last_tag;
        m.multiple = (mode & 0x10) != 0;
        m.requeue = true;
        send(c->channel, m);
      } else {
        basic_ack m;
        m.delivery_tag = ch->last_tag;
        m.multiple = (mode & 0x10) != 0;
        send(c->channel, m);
      }
    }
  }

  channel_rec* find_channel_rec(std::uint16_t id) {
    for (auto& c : channels_)
      if (c.id == id) return &c;
    return nullptr;
  }

  void do_confirm_select() {
    const std::uint16_t ch = pick_channel(in_.u8());
    const std::uint8_t window = in_.u8();
    const std::size_t op = new_op(op_kind::confirm_select, ch);
    call([&] { core_->confirm_select(ch, records_[op].id, completion_for(op)); });
    // 1 to 3, or 8, 16 or 24: windows with a low-water gap too.
    if (window & 3) core_->set_confirm_window(ch, std::size_t{window & 3u} << (window & 4 ? 3 : 0));
    credit_ += 64;
  }

  void do_publish() {
    const std::uint16_t ch = pick_channel(in_.u8());
    const std::uint8_t flags = in_.u8();
    static const std::size_t sizes[] = {0, 1, 10, 100, 4000, 4100, 9000, 60000};
    const std::size_t size = sizes[in_.u8() & 7];
    static const char* const keys[] = {"rk", "q", ""};
    const std::string exchange = (flags & 8) ? "ex" : "";
    const std::string routing_key =
        ((flags >> 4) & 3) == 3 ? std::string(300, 'r') : keys[(flags >> 4) & 3];
    publish_frame_args a;
    a.channel = ch;
    a.exchange = exchange;
    a.routing_key = routing_key;
    a.mandatory = (flags & 1) != 0;
    a.immediate = (flags & 0x40) != 0;
    basic_properties props;
    if (flags & 4) {
      props.headers = field_table{};
      props.headers->add("h", std::int32_t{1}).add("s", "v");
      props.content_type = "text/plain";
    }
    const bytes_view body(reinterpret_cast<const std::uint8_t*>(body_bytes().data()), size);
    const std::size_t chunk = frame_max_ == 0 ? 131072 : frame_max_ - frame_overhead;
    credit_ += size + 8 * (size / chunk + 1) + 1024;
    std::uint64_t seq = 0;
    if (flags & 2) {
      const std::size_t op = new_op(op_kind::publish, ch);
      call([&] {
        (void)core_->publish(a, props, body, records_[op].id, completion_for(op), &seq);
        records_[op].sequence = records_[op].calls == 0 || !records_[op].error ? seq : 0;
      });
    } else {
      call([&] { (void)core_->publish(a, props, body, 0, {}, &seq); });
    }
  }

  void do_wait_for_confirms() {
    const std::uint16_t ch = pick_channel(in_.u8());
    const std::size_t op = new_op(op_kind::wait_for_confirms, ch);
    records_[op].horizon = op;
    call([&] { core_->wait_for_confirms(ch, records_[op].id, completion_for(op)); });
  }

  // Takes what is queued: next_return until it would wait (the last call
  // stays pending, as a reader loop's would). Bit 0 of `mode`: call once
  // even while one call waits, as two coroutines would.
  void do_next_return() {
    const std::uint16_t ch = pick_channel(in_.u8());
    drain_returns(ch, (in_.u8() & 1) != 0);
  }

  void drain_returns(std::uint16_t ch, bool concurrent) {
    std::size_t got = 0;
    for (;;) {
      if (!concurrent && has_pending(op_kind::next_return, ch)) break;
      concurrent = false;
      const std::size_t op = new_op(op_kind::next_return, ch);
      call([&] { core_->next_return(ch, records_[op].id, completion_for(op)); });
      if (violated_ || records_[op].calls == 0 || records_[op].error) break;
      ++got;
    }
    if (got > max_returns_ + 1 + max_read_ / 32)
      fail("channel " + std::to_string(ch) + " had " + std::to_string(got) +
           " basic.return messages queued: max_returns_buffered is " +
           std::to_string(max_returns_) + ", largest read " + std::to_string(max_read_) + " bytes");
  }

  bool has_pending(op_kind k, std::uint16_t ch) const {
    for (auto it = records_.rbegin(); it != records_.rend(); ++it)
      if (it->kind == k && it->channel == ch && it->calls == 0) return true;
    return false;
  }

  // connection events: the same. Bit 0 of `mode`: call once more even while
  // one call waits, as two coroutines awaiting notices would.
  void do_next_event() {
    const std::uint8_t mode = in_.u8();
    drain_events((mode & 1) != 0);
  }

  void drain_events(bool concurrent) {
    std::size_t got = 0;
    for (;;) {
      if (!concurrent && has_pending(op_kind::next_event, 0)) break;
      concurrent = false;
      const std::size_t op = new_op(op_kind::next_event);
      call([&] { core_->next_event(records_[op].id, completion_for(op)); });
      if (violated_ || records_[op].calls == 0 || records_[op].error) break;
      ++got;
    }
    // Only the latest blocked/unblocked state matters; a queue of them may
    // hold at most what one read brought (an unblocked frame is 12 bytes).
    if (got > 16 + max_read_ / 12)
      fail(std::to_string(got) + " connection events were queued (largest read " +
           std::to_string(max_read_) + " bytes): the queue grows with every notice");
  }

  void cancel(std::size_t index) {
    const bool was_pending = records_[index].calls == 0;
    const std::uint32_t calls = records_[index].calls;
    bool found = false;
    call([&] { found = core_->cancel_op(records_[index].id); });
    if (violated_) return;
    if (found && !was_pending)
      fail("cancel_op found " + describe(index) + ", which had already completed");
    else if (found && records_[index].calls == calls)
      fail("cancel_op reported " + describe(index) + " cancelled but did not complete it");
    else if (was_pending && records_[index].calls == 0)
      fail("cancel_op left " + describe(index) + " pending: the wait cannot be cancelled");
  }

  void do_cancel_op() {
    const std::uint8_t b = in_.u8();
    if (records_.empty()) return;
    // The first pending operation from a starting point; a finished one
    // if none is (which cancel_op must leave alone).
    const std::size_t n = records_.size();
    std::size_t pick = b % n;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (b + k) % n;
      if (records_[i].calls == 0) {
        pick = i;
        break;
      }
    }
    cancel(pick);
  }

  // Heartbeats are always on (the client proposes 60 s): after two
  // intervals (four ticks) without a byte from the broker the core must
  // give up on it, paused or not, unless bytes wait unread while paused.
  void do_heartbeat_tick() {
    credit_ += 8;
    const bool unread = wire_pos_ < wire_.size();
    if (core_->reading_paused() && unread) silent_ticks_ = 0;
    call([&] {
      [unread](auto& c) {
        if constexpr (requires { c.heartbeat_tick(true); })
          c.heartbeat_tick(unread);
        else
          c.heartbeat_tick();
      }(*core_);
    });
    if (++silent_ticks_ > 5 && !core_->is_closed())
      fail("the broker was silent for " + std::to_string(silent_ticks_) +
           " heartbeat ticks, yet the connection is still open");
  }

  // Request deadlines: a request on the wire since a tick at least
  // request_timeout ago has failed by now.
  void do_tick() {
    static const int ms[] = {0, 300, 1000, 5000};
    now_ += std::chrono::milliseconds(ms[in_.u8() & 3]);
    // An expired request makes the client close its channel.
    credit_ += 64 * channels_.size() + 64;
    bool ticked = false;
    [&](auto& c) {
      if constexpr (requires { c.tick(now_); }) {
        call([&] { c.tick(now_); });
        ticked = true;
      }
    }(*core_);
    if (!ticked || request_timeout_.count() <= 0) return;
    for (std::size_t i = 0; i < records_.size() && !violated_; ++i) {
      op_record& r = records_[i];
      if (r.calls != 0 || !awaits_reply(r.kind)) continue;
      if (!r.first_tick)
        r.first_tick = now_;
      else if (now_ >= *r.first_tick + request_timeout_)
        fail(describe(i) + " got no reply for " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                now_ - *r.first_tick)
                                .count()) +
             " ms of ticks, yet has not timed out (request_timeout " +
             std::to_string(request_timeout_.count()) + " ms)");
    }
  }

  void do_wait_writable() {
    const std::uint16_t ch = pick_channel(in_.u8());
    const std::size_t op = new_op(op_kind::wait_writable, ch);
    call([&] { core_->wait_writable(ch, records_[op].id, wake_for(op)); });
  }

  void do_transport_error() {
    core_->on_transport_error(std::make_error_code(std::errc::connection_reset), "fuzz");
    if (!core_->is_closed()) fail("on_transport_error() left the core open");
  }

  void do_close() {
    const std::uint8_t b = in_.u8();
    static const std::uint16_t codes[] = {200, 320, 0, 200};
    const std::size_t op = new_op(op_kind::close);
    std::string text = (b & 4) ? std::string(300, 'c') : "bye";
    call([&] { core_->close(codes[b & 3], std::move(text), records_[op].id, completion_for(op)); });
    credit_ += 512;
  }

  void do_send_ack() {
    const std::uint16_t ch = pick_channel(in_.u8());
    const std::uint8_t tag = in_.u8();
    const std::uint8_t flags = in_.u8();
    switch (flags % 3) {
      case 0: {
        basic_ack m;
        m.delivery_tag = tag;
        m.multiple = (flags & 4) != 0;
        send(ch, m);
        break;
      }
      case 1: {
        basic_nack m;
        m.delivery_tag = tag;
        m.multiple = (flags & 4) != 0;
        m.requeue = (flags & 8) != 0;
        send(ch, m);
        break;
      }
      default: {
        basic_reject m;
        m.delivery_tag = tag;
        m.requeue = (flags & 8) != 0;
        send(ch, m);
        break;
      }
    }
  }

  // Every call into the core goes through here (one place to trace or
  // break on).
  template <class F>
  void call(F&& f) {
    f();
  }

  // ---- the model broker --------------------------------------------------------------

  struct seen_request {
    std::uint32_t key = 0;
    std::string name;  // queue, or consumer tag
  };
  struct seen_publish {
    std::uint64_t seq = 0;
    bool mandatory = false;
    std::string exchange;
    std::string routing_key;
  };
  struct broker_channel {
    std::deque<seen_request> pending;  // requests awaiting the broker's answer
    bool confirm = false;
    std::uint64_t seq = 0;  // publishes counted since confirm.select
    std::deque<seen_publish> unconfirmed;
    std::uint64_t delivery_tag = 0;
    std::vector<std::string> consumers;  // tags it confirmed
    // The client's view of its output on this channel.
    bool client_closing = false;  // sent channel.close, not yet channel.open again
    bool header_next = false;     // sent basic.publish, the header must follow
    std::uint64_t body_left = 0;  // body bytes the header announced, still to come
  };

  // What the broker sent in a message, found again by the serial number it
  // carries (deliveries and get-ok in the routing key, returns in the reply
  // text) when the user takes it.
  struct sent_message {
    std::uint64_t delivery_tag = 0;
    std::string consumer_tag;
    bool redelivered = false;
    std::size_t body = 0;
    bool props = false;  // props_for() set headers, delivery_mode and message_id
  };

  std::string remember(sent_message m) {
    sent_.push_back(std::move(m));
    return "r" + std::to_string(sent_.size() - 1);
  }

  // The serial in `s` ("...r<N>"), or none.
  std::size_t serial_in(std::string_view s) const {
    const std::size_t r = s.rfind('r');
    if (r == std::string_view::npos || r + 1 >= s.size()) return none;
    std::size_t n = 0;
    for (std::size_t i = r + 1; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9' || n > sent_.size()) return none;
      n = n * 10 + static_cast<std::size_t>(s[i] - '0');
    }
    return n < sent_.size() ? n : none;
  }

  void check_content(const sent_message& e, const basic_properties& p, const std::string& body,
                     const std::string& what) {
    if (body.size() != e.body || (!body.empty() && (body.front() != 'm' || body.back() != 'm')))
      fail(what + ": its body has " + std::to_string(body.size()) + " bytes, the broker sent " +
           std::to_string(e.body));
    else if (p.headers.has_value() != e.props || p.message_id.has_value() != e.props ||
             p.delivery_mode.has_value() != e.props || p.content_type || p.correlation_id ||
             p.timestamp || p.expiration)
      fail(what + ": its properties are not the ones the broker sent (" +
           (e.props ? "headers, delivery_mode, message_id" : "none") + ")");
  }

  // A message taken from a consumer: the one the broker sent, whole, in order.
  void check_delivery(consumer_rec& c, const message& m) {
    const std::size_t n = serial_in(m.routing_key);
    if (n == none) return;  // not one of the model's (raw frames)
    const sent_message& e = sent_[n];
    const std::string what =
        "delivery " + std::to_string(m.delivery_tag) + " (routing key " + m.routing_key + ")";
    if (m.delivery_tag != e.delivery_tag || m.consumer_tag != e.consumer_tag ||
        m.redelivered != e.redelivered || m.exchange != "ex") {
      fail(what + " does not carry the tag, consumer and flags the broker sent");
      return;
    }
    if (c.last_serial != none && n <= c.last_serial) {
      fail(what + " came out after a later one");
      return;
    }
    c.last_serial = n;
    check_content(e, m.properties, m.body, what);
  }

  static const std::string& body_bytes() {
    static const std::string b(70000, 'm');
    return b;
  }

  bool wire_budget_left() const { return wire_total_ < (2u << 20); }

  template <class M>
  void put(std::uint16_t ch, const M& m) {
    const std::size_t before = wire_.size();
    put_method(wire_, ch, m);
    wire_total_ += wire_.size() - before;
  }

  basic_properties props_for(std::uint8_t b) const {
    basic_properties p;
    if (b & 1) {
      p.headers = field_table{};
      p.headers->add("x-death", field_array{{std::int64_t{1}, "q"}});
      p.delivery_mode = 2;
      p.message_id = "m";
    }
    return p;
  }

  // Content header and body frames: `declared` in the header, `actual` body
  // bytes sent in frames of at most `chunk`.
  void put_content(std::uint16_t ch, std::uint64_t declared, std::size_t actual,
                   const basic_properties& props, std::size_t chunk) {
    const std::size_t before = wire_.size();
    writer w(wire_);
    const std::size_t start = begin_frame(w, frame_type::header, ch);
    encode_content_header(w, declared, props);
    finish_frame(w, start);
    if (chunk == 0) chunk = 1;
    for (std::size_t at = 0; at < actual; at += chunk) {
      const std::size_t n = std::min(chunk, actual - at);
      write_frame(wire_, frame_type::body, ch,
                  bytes_view(reinterpret_cast<const std::uint8_t*>(body_bytes().data()) + at, n));
    }
    wire_total_ += wire_.size() - before;
  }

  // Past the session's budget of broker bytes, bodies are empty: the frames
  // stay consistent with the model, the session stays fast.
  std::size_t body_size_for(std::uint8_t b) const {
    static const std::size_t sizes[] = {0, 1, 5, 100, 4089, 4090, 12000, 60000};
    return wire_budget_left() ? sizes[b & 7] : 0;
  }

  // A channel for a broker frame: one the client opened (as the broker saw
  // it), or any small id.
  std::uint16_t broker_pick_channel(std::uint8_t b) const {
    const std::size_t n = broker_.size();
    const std::size_t i = n == 0 ? 0 : b % (n + 1);
    if (i < n) {
      auto it = broker_.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(i));
      if (it->first != 0) return it->first;
    }
    return b >> 5;
  }

  void do_answer() {
    const std::uint8_t which = in_.u8();
    const std::uint8_t mode = in_.u8();
    std::vector<std::uint16_t> waiting;
    for (auto& [ch, c] : broker_)
      if (!c.pending.empty()) waiting.push_back(ch);
    if (waiting.empty()) return;
    const std::uint16_t ch = waiting[which % waiting.size()];
    broker_channel& c = broker_[ch];
    const seen_request req = c.pending.front();
    c.pending.pop_front();
    if (mode & 1) {
      // The wrong answer.
      put(ch, basic_qos_ok{});
      return;
    }
    answer(ch, c, req, mode);
  }

  void answer(std::uint16_t ch, broker_channel& c, const seen_request& req, std::uint8_t mode) {
    switch (req.key) {
      case connection_close::key: put(0, connection_close_ok{}); break;
      case channel_open::key: put(ch, channel_open_ok{}); break;
      case channel_close::key: put(ch, channel_close_ok{}); break;
      case exchange_declare::key: put(ch, exchange_declare_ok{}); break;
      case exchange_delete::key: put(ch, exchange_delete_ok{}); break;
      case exchange_bind::key: put(ch, exchange_bind_ok{}); break;
      case exchange_unbind::key: put(ch, exchange_unbind_ok{}); break;
      case queue_declare::key: {
        queue_declare_ok m;
        m.queue = req.name.empty() ? "amq.gen-1" : req.name;
        m.message_count = mode;
        put(ch, m);
        break;
      }
      case queue_bind::key: put(ch, queue_bind_ok{}); break;
      case queue_unbind::key: put(ch, queue_unbind_ok{}); break;
      case queue_purge::key: put(ch, queue_purge_ok{}); break;
      case queue_delete::key: put(ch, queue_delete_ok{}); break;
      case basic_qos::key: put(ch, basic_qos_ok{}); break;
      case basic_recover::key: put(ch, basic_recover_ok{}); break;
      case confirm_select::key: put(ch, confirm_select_ok{}); break;
      case tx_select::key: put(ch, tx_select_ok{}); break;
      case tx_commit::key: put(ch, tx_commit_ok{}); break;
      case tx_rollback::key: put(ch, tx_rollback_ok{}); break;
      case connection_update_secret::key: put(0, connection_update_secret_ok{}); break;
      case basic_consume::key: {
        basic_consume_ok m;
        static const char* const tags[] = {"amq.ctag-1", "amq.ctag-2", "amq.ctag-3", "t1"};
        m.consumer_tag = req.name.empty() ? tags[(mode >> 2) & 3] : req.name;
        c.consumers.push_back(m.consumer_tag);
        put(ch, m);
        break;
      }
      case basic_cancel::key: {
        basic_cancel_ok m;
        m.consumer_tag = req.name;
        std::erase(c.consumers, req.name);
        put(ch, m);
        break;
      }
      case basic_get::key: {
        if (mode & 2) {
          put(ch, basic_get_empty{});
          break;
        }
        basic_get_ok m;
        m.delivery_tag = ++c.delivery_tag;
        m.exchange = "ex";
        const std::size_t size = body_size_for(mode >> 4);
        m.routing_key = remember({m.delivery_tag, {}, false, size, (mode >> 7) != 0});
        m.message_count = 3;
        put(ch, m);
        put_content(ch, size, size, props_for(mode >> 7), body_chunk_);
        break;
      }
      default: break;
    }
  }

  void do_deliver() {
    const std::uint16_t ch = broker_pick_channel(in_.u8());
    const std::uint8_t which = in_.u8();
    const std::uint8_t flags = in_.u8();
    broker_channel& c = broker_[ch];
    basic_deliver m;
    if (!c.consumers.empty() && which < 224)
      m.consumer_tag = c.consumers[which % c.consumers.size()];
    else
      m.consumer_tag = (which & 1) ? "t2" : "unknown";
    m.delivery_tag = ++c.delivery_tag;
    m.redelivered = (flags & 0x40) != 0;
    m.exchange = "ex";
    const std::size_t size = body_size_for(flags);
    m.routing_key =
        remember({m.delivery_tag, m.consumer_tag, m.redelivered, size, ((flags >> 3) & 1) != 0});
    put(ch, m);
    const std::size_t chunk = (flags & 0x80) ? 1000 : body_chunk_;
    switch ((flags >> 4) & 3) {
      case 0: put_content(ch, size, size, props_for(flags >> 3), chunk); break;
      case 1: put_content(ch, size, size + 1, props_for(flags >> 3), chunk); break;  // overrun
      case 2:  // the body never comes: a method interrupts it
        put_content(ch, size + 1, size, props_for(flags >> 3), chunk);
        put(ch, basic_qos_ok{});
        break;
      default: put_content(ch, (1ull << 40) + size, 0, props_for(flags >> 3), chunk); break;
    }
  }

  void do_confirm() {
    const std::uint16_t ch = broker_pick_channel(in_.u8());
    const std::uint8_t which = in_.u8();
    const std::uint8_t flags = in_.u8();
    broker_channel& c = broker_[ch];
    const std::size_t n = c.unconfirmed.size();
    const std::size_t i = which % (n + 2);
    std::uint64_t tag = 0;
    if (i < n)
      tag = c.unconfirmed[i].seq;
    else if (i == n)
      tag = c.seq + 1;  // a publish that never happened
    const bool multiple = (flags & 1) != 0;
    if (multiple)
      std::erase_if(c.unconfirmed, [&](const seen_publish& p) { return tag == 0 || p.seq <= tag; });
    else
      std::erase_if(c.unconfirmed, [&](const seen_publish& p) { return p.seq == tag; });
    if (flags & 2) {
      basic_nack m;
      m.delivery_tag = tag;
      m.multiple = multiple;
      put(ch, m);
    } else {
      basic_ack m;
      m.delivery_tag = tag;
      m.multiple = multiple;
      put(ch, m);
    }
  }

  void do_return_message() {
    const std::uint16_t ch = broker_pick_channel(in_.u8());
    const std::uint8_t which = in_.u8();
    const std::uint8_t flags = in_.u8();
    broker_channel& c = broker_[ch];
    std::vector<std::size_t> mandatory;
    for (std::size_t i = 0; i < c.unconfirmed.size(); ++i)
      if (c.unconfirmed[i].mandatory) mandatory.push_back(i);
    basic_return m;
    m.reply_code = 312;
    const std::size_t size = body_size_for(flags >> 1);
    m.reply_text = "NO_ROUTE " + remember({0, {}, false, size, ((flags >> 4) & 1) != 0});
    std::optional<std::uint64_t> seq;
    if (!mandatory.empty()) {
      const seen_publish& p = c.unconfirmed[mandatory[which % mandatory.size()]];
      m.exchange = p.exchange;
      m.routing_key = p.routing_key;
      seq = p.seq;
    } else {
      m.exchange = (which & 1) ? "ex" : "";
      m.routing_key = "rk";
    }
    put(ch, m);
    put_content(ch, size, size, props_for(flags >> 4), body_chunk_);
    if ((flags & 1) && seq) {
      // As RabbitMQ does: the ack of the returned publish right behind it.
      std::erase_if(c.unconfirmed, [&](const seen_publish& p) { return p.seq == *seq; });
      basic_ack a;
      a.delivery_tag = *seq;
      put(ch, a);
    }
  }

  void do_channel_close() {
    const std::uint16_t ch = broker_pick_channel(in_.u8());
    static const std::uint16_t codes[] = {404, 406, 320, 200};
    channel_close m;
    m.reply_code = codes[in_.u8() & 3];
    m.reply_text = "closed by the fuzz broker";
    m.class_id = 50;
    m.method_id = 10;
    put(ch, m);
  }

  void do_channel_flow() {
    const std::uint16_t ch = broker_pick_channel(in_.u8());
    channel_flow m;
    m.active = (in_.u8() & 1) != 0;
    put(ch, m);
  }

  void do_blocked() {
    if (in_.u8() & 1) {
      connection_blocked m;
      m.reason = "low on memory";
      put(0, m);
    } else {
      put(0, connection_unblocked{});
    }
  }

  void do_broker_cancel() {
    const std::uint16_t ch = broker_pick_channel(in_.u8());
    const std::uint8_t which = in_.u8();
    const std::uint8_t no_wait = in_.u8();
    broker_channel& c = broker_[ch];
    basic_cancel m;
    if (!c.consumers.empty()) {
      m.consumer_tag = c.consumers[which % c.consumers.size()];
      std::erase(c.consumers, m.consumer_tag);
    } else {
      m.consumer_tag = "t1";
    }
    m.no_wait = (no_wait & 1) != 0;
    put(ch, m);
  }

  void do_connection_close() {
    static const std::uint16_t codes[] = {320, 541, 403, 200};
    connection_close m;
    m.reply_code = codes[in_.u8() & 3];
    m.reply_text = "closed by the fuzz broker";
    put(0, m);
  }

  void do_heartbeat() {
    const std::uint8_t b = in_.u8();
    static const std::uint8_t hb[] = {8, 0, 0, 0, 0, 0, 0, frame_end_octet};
    static const std::uint8_t hb1[] = {8, 0, 1, 0, 0, 0, 0, frame_end_octet};
    wire_.append((b & 1) ? hb1 : hb, sizeof hb);
    wire_total_ += sizeof hb;
  }

  void do_raw_method() {
    const std::uint8_t chb = in_.u8();
    const std::uint16_t ch = (chb & 0x80) ? broker_pick_channel(chb) : (chb & 7);
    const std::size_t len = in_.u8() % 64;
    const bytes_view payload = in_.take(len);
    write_frame(wire_, frame_type::method, ch, payload);
    wire_total_ += payload.size() + frame_overhead;
  }

  void do_raw_bytes() {
    const std::size_t len = in_.u8() % 64;
    const bytes_view b = in_.take(len);
    framing_lost_ = true;  // the broker's frames may no longer be where they seem
    wire_.append(b.data(), b.size());
    wire_total_ += b.size();
  }

  void do_content() {
    const std::uint16_t ch = broker_pick_channel(in_.u8());
    const std::uint8_t kind = in_.u8();
    const std::size_t size = body_size_for(in_.u8());
    if ((kind & 6) == 6) {
      basic_get_ok m;  // no basic.get asked for it
      m.delivery_tag = ++broker_[ch].delivery_tag;
      put(ch, m);
    }
    if (kind & 1) {
      put_content(ch, size, 0, props_for(kind >> 1), body_chunk_);
    } else {
      const std::size_t n = std::min(size, body_chunk_);
      write_frame(wire_, frame_type::body, ch,
                  bytes_view(reinterpret_cast<const std::uint8_t*>(body_bytes().data()), n));
      wire_total_ += n + frame_overhead;
    }
  }

  void do_reads() {
    const std::uint8_t mode = in_.u8();
    static const std::size_t chunks[] = {0, 1, 2, 7, 64, 500, 4096, 16384};
    chunk_ = chunks[mode & 7];
    hold_ = (mode & 8) != 0;
    if (mode & 0x10) pump(true);
  }

  bool is_broker_step(step s) const { return s >= step::answer && s < step::repeat; }

  void broker_step(step s) {
    switch (s) {
      case step::answer: do_answer(); break;
      case step::deliver: do_deliver(); break;
      case step::confirm: do_confirm(); break;
      case step::return_message: do_return_message(); break;
      case step::channel_close: do_channel_close(); break;
      case step::channel_flow: do_channel_flow(); break;
      case step::blocked: do_blocked(); break;
      case step::broker_cancel: do_broker_cancel(); break;
      case step::connection_close: do_connection_close(); break;
      case step::heartbeat: do_heartbeat(); break;
      case step::raw_method: do_raw_method(); break;
      case step::raw_bytes: do_raw_bytes(); break;
      case step::content: do_content(); break;
      default: break;
    }
  }

  void do_step(step s) {
    ++stats_.steps;
    if (is_broker_step(s)) {
      const std::size_t from = in_.pos();
      const std::size_t queued = wire_.size();
      broker_step(s);
      if (trace_) trace_queued(queued);
      last_broker_ = s;
      const bytes_view args = in_.span(from, in_.pos());
      last_args_.assign(args.begin(), args.end());
      return;
    }
    switch (s) {
      case step::open_channel: do_open_channel(); break;
      case step::close_channel: do_close_channel(); break;
      case step::request: do_request(); break;
      case step::consume: do_consume(); break;
      case step::cancel_consumer: do_cancel_consumer(); break;
      case step::abandon_consumer: do_abandon_consumer(); break;
      case step::read_deliveries: do_read_deliveries(); break;
      case step::confirm_select: do_confirm_select(); break;
      case step::publish: do_publish(); break;
      case step::wait_for_confirms: do_wait_for_confirms(); break;
      case step::next_return: do_next_return(); break;
      case step::next_event: do_next_event(); break;
      case step::cancel_op: do_cancel_op(); break;
      case step::heartbeat_tick: do_heartbeat_tick(); break;
      case step::output: stalled_ = (in_.u8() & 1) != 0; break;
      case step::transport_error: do_transport_error(); break;
      case step::close: do_close(); break;
      case step::send_ack: do_send_ack(); break;
      case step::repeat: {
        const std::size_t n = in_.u8() % 64 + 1;
        if (!last_broker_) break;
        const std::vector<std::uint8_t> args = last_args_;
        for (std::size_t i = 0; i < n && wire_budget_left() && !violated_; ++i) {
          reader saved = in_;
          in_ = reader(bytes_view(args.data(), args.size()));
          const std::size_t queued = wire_.size();
          broker_step(*last_broker_);
          if (trace_) trace_queued(queued);
          in_ = saved;
          pump(false);
          if (!stalled_) drain_output();
        }
        break;
      }
      case step::reads: do_reads(); break;
      case step::tick: do_tick(); break;
      case step::wait_writable: do_wait_writable(); break;
      default: break;
    }
  }

  // ---- bytes between the two sides --------------------------------------------------

  // The driver reads while the core is open and not paused, at most 64 KiB
  // at a time.
  void pump(bool force) {
    if (hold_ && !force) return;
    while (wire_pos_ < wire_.size() && !core_->is_closed() && !core_->reading_paused() &&
           !violated_) {
      std::size_t n = std::min<std::size_t>(wire_.size() - wire_pos_, 64 * 1024);
      if (chunk_ != 0 && feeds_ < 100000) n = std::min(n, chunk_);
      if (trace_) trace_read(n);
      core_->feed(bytes_view(wire_.data() + wire_pos_, n));
      silent_ticks_ = 0;
      wire_pos_ += n;
      ++feeds_;
      stats_.bytes_fed += n;
      max_read_ = std::max(max_read_, n);
      max_read_since_drain_ = std::max(max_read_since_drain_, n);
    }
    if (wire_pos_ == wire_.size()) {
      wire_.clear();
      wire_pos_ = 0;
    }
  }

  void trace_read(std::size_t n) {
    std::fprintf(stderr, "  client read %zu of %zu broker bytes\n", n, wire_.size() - wire_pos_);
  }

  // Names the broker frames a step queued (from `from` on the wire).
  void trace_queued(std::size_t from) {
    frame_parser p(0xFFFFFFFFu);
    p.feed(bytes_view(wire_.data() + from, wire_.size() - from));
    frame_view f;
    std::error_code ec;
    while (p.next(f, ec) == frame_parser::status::frame) {
      const std::uint32_t k = f.type == frame_type::method ? peek_method_key(f.payload) : 0;
      std::fprintf(stderr, "  broker sends: type %d on channel %u %s (%zu bytes)\n",
                   static_cast<int>(f.type), f.channel,
                   k ? method_name(static_cast<std::uint16_t>(k >> 16), k & 0xFFFF).c_str() : "",
                   f.payload.size());
    }
    if (p.buffered() != 0) std::fprintf(stderr, "  broker sends: %zu raw bytes\n", p.buffered());
  }

  void drain_output() {
    if (violated_) return;
    sink_.clear();
    core_->take_output(sink_);
    const std::size_t n = sink_.size();
    stats_.bytes_written += n;
    // The client's own calls may queue what they like (publishers are held
    // back by writable(), which this session ignores); what the broker's
    // frames make the client owe stays under the configured limit plus the
    // replies one read can cause.
    const std::size_t allowed = credit_ + owed_limit_ + 4 * max_read_since_drain_ + 2048;
    if (n > allowed) {
      fail("the output grew to " + std::to_string(n) + " bytes while the broker did not read it (" +
           std::to_string(credit_) + " from client calls, limit " + std::to_string(owed_limit_) +
           ", largest read since " + std::to_string(max_read_since_drain_) +
           "): replies owed to the broker are not bounded");
      return;
    }
    credit_ = credit_ > n ? credit_ - n : 0;
    max_read_since_drain_ = 0;
    if (n != 0) parse_output(sink_.view());
    if (sink_.capacity() > (1u << 20)) sink_ = byte_buffer();
  }

  // Checks the client's frames and shows them to the model broker.
  void parse_output(bytes_view bytes) {
    out_parser_.feed(bytes);
    for (;;) {
      frame_view f;
      std::error_code ec;
      const auto st = out_parser_.next(f, ec);
      if (st == frame_parser::status::need_more) return;
      if (st == frame_parser::status::error) {
        fail("the client wrote a malformed frame: " + ec.message());
        return;
      }
      on_client_frame(f);
      if (violated_) return;
    }
  }

  void on_client_frame(const frame_view& f) {
    const std::string where = " on channel " + std::to_string(f.channel);
    if (trace_) {
      const std::uint32_t k = f.type == frame_type::method ? peek_method_key(f.payload) : 0;
      std::fprintf(stderr, "  client wrote: type %d%s %s (%zu bytes)\n", static_cast<int>(f.type),
                   where.c_str(),
                   k ? method_name(static_cast<std::uint16_t>(k >> 16), k & 0xFFFF).c_str() : "",
                   f.payload.size());
    }
    if (sent_close_ok_) {
      fail("the client wrote a frame (type " + std::to_string(static_cast<int>(f.type)) + where +
           ") after connection.close-ok");
      return;
    }
    if (frame_max_ != 0 && f.payload.size() + frame_overhead > frame_max_) {
      fail("the client wrote a " + std::to_string(f.payload.size() + frame_overhead) +
           "-byte frame" + where + ", over frame_max " + std::to_string(frame_max_));
      return;
    }
    if (f.type == frame_type::heartbeat) {
      if (f.channel != 0) fail("the client wrote a heartbeat" + where);
      return;
    }
    if (sent_close_ && f.type != frame_type::method) {
      fail("the client wrote content" + where + " after connection.close");
      return;
    }
    if (f.type != frame_type::method && f.channel == 0) {
      fail("the client wrote content on channel 0");
      return;
    }
    broker_channel& c = broker_[f.channel];
    if (f.type == frame_type::header) {
      content_header h;
      if (!c.header_next || decode_content_header(f.payload, h)) {
        fail("the client wrote a content header" + where + " that does not follow a publish");
        return;
      }
      c.header_next = false;
      c.body_left = h.body_size;
      return;
    }
    if (f.type == frame_type::body) {
      if (c.header_next || f.payload.size() > c.body_left) {
        fail("the client wrote a body frame" + where + " beyond its content header's size");
        return;
      }
      c.body_left -= f.payload.size();
      return;
    }
    any_method m;
    if (auto ec = decode_method(f.payload, m)) {
      const std::uint32_t key = peek_method_key(f.payload);
      fail("the client wrote a method that does not decode" + where + ": " +
           method_name(static_cast<std::uint16_t>(key >> 16), key & 0xFFFF) + ": " + ec.message());
      return;
    }
    const std::uint32_t key = peek_method_key(f.payload);
    const std::string name = method_name(static_cast<std::uint16_t>(key >> 16), key & 0xFFFF);
    if (c.header_next || c.body_left != 0) {
      fail("the client wrote " + name + where + " in the middle of a message's content");
      return;
    }
    if (sent_close_) {
      if (key != connection_close_ok::key)
        fail("the client wrote " + name + where + " after connection.close");
      else
        sent_close_ok_ = true;
      return;
    }
    if (f.channel != 0 && c.client_closing && key != channel_close_ok::key &&
        key != channel_open::key) {
      fail("the client wrote " + name + where + " after its channel.close there");
      return;
    }
    on_client_method(f.channel, key, m);
  }

  void on_client_method(std::uint16_t ch, std::uint32_t key, const any_method& m) {
    switch (key) {
      case connection_close::key:
        sent_close_ = true;
        broker_[0].pending.push_back({key, {}});
        return;
      case connection_close_ok::key: sent_close_ok_ = true; return;
      case channel_open::key:
        broker_[ch] = broker_channel{};
        broker_[ch].pending.push_back({key, {}});
        return;
      case channel_close::key:
        broker_[ch].client_closing = true;
        broker_[ch].pending.push_back({key, {}});
        return;
      case channel_close_ok::key: broker_.erase(ch); return;
      case basic_publish::key: {
        const auto& p = std::get<basic_publish>(m);
        broker_channel& c = broker_[ch];
        c.header_next = true;
        if (c.confirm) c.unconfirmed.push_back({++c.seq, p.mandatory, p.exchange, p.routing_key});
        return;
      }
      default: break;
    }
    broker_channel& c = broker_[ch];
    std::visit(
        [&](const auto& x) {
          using M = std::decay_t<decltype(x)>;
          bool no_wait = false;
          if constexpr (requires { x.no_wait; }) no_wait = x.no_wait;
          if constexpr (requires { x.nowait; }) no_wait = x.nowait;
          if constexpr (std::is_same_v<M, confirm_select>) c.confirm = true;
          if (M::responses.size() == 0 || no_wait) return;
          seen_request r{key, {}};
          if constexpr (std::is_same_v<M, basic_consume> || std::is_same_v<M, basic_cancel>)
            r.name = x.consumer_tag;
          if constexpr (std::is_same_v<M, queue_declare>) r.name = x.queue;
          c.pending.push_back(std::move(r));
        },
        m);
  }

  void after_step() {
    pump(false);
    if (!stalled_) drain_output();
    check_invariants();
  }

  // The end of the input: the user drains what is buffered, the broker's
  // bytes go in, then the broker answers every request and confirms every
  // publish it saw; every operation that waits on the broker must then be
  // done. Last the connection drops; nothing may be left pending.
  void finish() {
    stalled_ = false;
    hold_ = false;
    chunk_ = 0;
    bool settled = false;
    for (int round = 0; round < 64 && !violated_; ++round) {
      drain_output();
      for (auto& c : consumers_) {
        if (!c.started || c.abandoned || violated_) continue;
        std::size_t taken = 0;
        while (!violated_ && core_->take_delivery(c.state, scratch_)) {
          ++taken;
          check_delivery(c, scratch_);
        }
        stats_.deliveries_taken += taken;
        if (taken > stream_bound(c))
          fail("a consumer stream held " + std::to_string(taken) + " deliveries: capacity " +
               std::to_string(c.state->capacity) + ", largest read " + std::to_string(max_read_) +
               " bytes (reading should have paused)");
      }
      if (violated_) return;
      if (!core_->is_closed() && core_->reading_paused()) {
        fail("reading stays paused although the user has drained every stream it holds");
        return;
      }
      for (const auto& ch : channels_)
        if (!violated_) drain_returns(ch.id, false);
      if (!violated_) drain_events(false);
      if (violated_) return;
      const bool more = wire_pos_ < wire_.size() && !core_->is_closed();
      pump(false);
      drain_output();
      check_invariants();
      if (more || violated_ || core_->is_closed()) continue;
      if (trace_) std::fprintf(stderr, "finish: the broker catches up\n");
      const std::size_t queued = wire_.size();
      if (!answer_everything()) {
        settled = true;
        break;
      }
      if (trace_) trace_queued(queued);
      pump(false);
      drain_output();
      check_invariants();
    }
    if (violated_) return;
    if (settled && !framing_lost_ && !core_->is_closed()) check_settled();
    if (violated_) return;
    if (!core_->is_closed()) do_transport_error();
    if (violated_) return;
    drain_output();
    check_invariants();
    stats_.closed = core_->is_closed();
  }

  // A well-behaved broker catching up: answers what the client asked and
  // confirms what it published. False if there was nothing left to do.
  bool answer_everything() {
    bool any = false;
    for (auto& [ch, c] : broker_) {
      // Confirms go before the answer to channel.close, as a broker sends
      // them: after close-ok they would be on a closed channel.
      while (!c.pending.empty() && c.pending.front().key != channel_close::key) {
        any = true;
        const seen_request req = c.pending.front();
        c.pending.pop_front();
        answer(ch, c, req, 0x02);  // basic.get finds the queue empty
      }
      if (!c.unconfirmed.empty()) {
        any = true;
        basic_ack a;
        a.delivery_tag = c.unconfirmed.back().seq;
        a.multiple = true;
        c.unconfirmed.clear();
        put(ch, a);
      }
      if (!c.pending.empty()) {
        any = true;
        const seen_request req = c.pending.front();
        c.pending.pop_front();
        answer(ch, c, req, 0);
      }
    }
    return any;
  }

  // After answer_everything(): nothing that waits on a reply or a confirm
  // may still wait.
  void check_settled() {
    for (std::size_t i = 0; i < records_.size(); ++i) {
      const op_record& r = records_[i];
      if (r.calls != 0) continue;
      switch (r.kind) {
        case op_kind::wait_delivery:
        case op_kind::next_return:
        case op_kind::next_event:
        case op_kind::wait_writable: continue;  // these wait on the broker's initiative
        default:
          fail("the broker answered every request and confirmed every publish, yet " + describe(i) +
               " is still pending");
          return;
      }
    }
  }

  // ---- state --------------------------------------------------------------------

  reader in_;
  on_violation policy_;
  bool trace_ = false;  // WARREN_CORE_FUZZ_TRACE: steps and frames to stderr
  bool violated_ = false;
  bool tearing_down_ = false;
  std::string violation_;
  counters stats_;

  // configuration
  std::uint32_t tune_frame_max_ = 0;
  std::uint16_t tune_channel_max_ = 0;
  std::uint16_t tune_heartbeat_ = 0;
  std::uint32_t client_frame_max_ = 0;
  std::uint32_t frame_max_ = 0;  // negotiated (0: no limit)
  std::size_t body_chunk_ = 4088;
  bool small_ = true;
  bool split_handshake_ = false;
  std::size_t capacity_ = 4;
  std::size_t max_returns_ = 0;
  std::size_t owed_limit_ = 0;

  // operations
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1)};
  std::chrono::milliseconds request_timeout_{0};
  int silent_ticks_ = 0;  // heartbeat ticks since the broker's last byte
  std::vector<op_record> records_;
  std::size_t pending_ = 0;
  std::uint64_t next_id_ = 0;
  std::vector<channel_rec> channels_;
  std::map<std::uint16_t, std::uint32_t> generations_;
  std::vector<consumer_rec> consumers_;
  message scratch_;

  // broker -> client
  byte_buffer wire_;
  std::size_t wire_pos_ = 0;
  std::size_t wire_total_ = 0;
  std::size_t chunk_ = 0;  // bytes per read (0: all that is there)
  bool hold_ = false;      // reads wait for a `reads` step
  std::size_t feeds_ = 0;
  std::size_t max_read_ = 0;
  std::size_t max_read_since_drain_ = 0;
  std::optional<step> last_broker_;
  std::vector<sent_message> sent_;
  bool framing_lost_ = false;  // raw bytes went out: a frame may be left half sent
  std::vector<std::uint8_t> last_args_;

  // client -> broker
  bool stalled_ = false;
  std::size_t credit_ = 0;  // output bytes the client's own calls account for
  byte_buffer sink_;
  frame_parser out_parser_{0xFFFFFFFFu};
  bool sent_close_ = false;
  bool sent_close_ok_ = false;
  std::map<std::uint16_t, broker_channel> broker_;

  // Last, so that it goes first: completions it still holds point into the
  // state above.
  std::unique_ptr<core_type> core_;
};

// Well-behaved sessions that reach deep: the seed corpus of the `core`
// fuzzer, and the harness's own test.
inline std::vector<std::pair<std::string, program>> sample_programs() {
  using s = step;
  std::vector<std::pair<std::string, program>> out;

  program consume(0x00);  // frame_max 4096, small limits
  consume.add(s::open_channel).add(s::answer, {0, 0});
  consume.add(s::request, {0, 3, 0}).add(s::answer, {0, 0});  // basic.qos
  consume.add(s::consume, {0, 0x01}).add(s::answer, {0, 0});  // tag t1
  consume.add(s::deliver, {0, 0, 0x02}).add(s::repeat, {3});
  consume.add(s::read_deliveries, {0, 0x0b});  // wait, take all, ack the last
  consume.add(s::deliver, {0, 0, 0x84});       // 4089 bytes in 1000-byte frames
  consume.add(s::read_deliveries, {0, 0x07});
  consume.add(s::read_deliveries, {0, 0x01});  // a wait that stays pending
  consume.add(s::cancel_consumer, {0}).add(s::answer, {0, 0});
  consume.add(s::close_channel, {0}).add(s::answer, {0, 0});
  consume.add(s::close, {0}).add(s::answer, {0, 0});
  out.emplace_back("consume", consume);

  program confirms(0x01);  // frame_max 8192
  confirms.add(s::open_channel).add(s::answer, {0, 0});
  confirms.add(s::confirm_select, {0, 0}).add(s::answer, {0, 0});
  confirms.add(s::publish, {0, 0x03, 2});  // mandatory, awaited, 10 bytes
  confirms.add(s::publish, {0, 0x0b, 3});  // to "ex"
  confirms.add(s::publish, {0, 0x02, 5});
  confirms.add(s::publish, {0, 0x06, 6});         // headers, 9000 bytes: two body frames
  confirms.add(s::return_message, {0, 0, 0x01});  // return + ack of the first
  confirms.add(s::confirm, {0, 0, 0x00});
  confirms.add(s::wait_for_confirms, {0});
  confirms.add(s::confirm, {0, 0, 0x02});  // nack
  confirms.add(s::confirm, {0, 0, 0x01});  // multiple
  confirms.add(s::next_return, {0, 0});
  confirms.add(s::wait_for_confirms, {0});
  confirms.add(s::close, {0}).add(s::answer, {0, 0});
  out.emplace_back("confirms", confirms);

  program misc(0x12);  // frame_max 131072, heartbeat 60
  misc.add(s::open_channel).add(s::answer, {0, 0});
  misc.add(s::request, {0, 4, 0}).add(s::answer, {0, 0x30});  // basic.get-ok, 100 bytes
  misc.add(s::request, {0, 4, 0}).add(s::answer, {0, 0x02});  // basic.get-empty
  misc.add(s::request, {0, 0, 1}).add(s::answer, {0, 0});     // queue.declare ""
  misc.add(s::channel_flow, {0, 0}).add(s::channel_flow, {0, 1});
  misc.add(s::blocked, {1}).add(s::next_event, {0});
  misc.add(s::blocked, {0}).add(s::next_event, {0});
  misc.add(s::heartbeat, {0}).add(s::heartbeat_tick).add(s::heartbeat_tick);
  misc.add(s::open_channel).add(s::answer, {0, 0});
  misc.add(s::consume, {1, 0x00}).add(s::answer, {0, 0});  // on the second channel
  misc.add(s::broker_cancel, {1, 0, 0});
  misc.add(s::output, {1}).add(s::channel_flow, {0, 1}).add(s::repeat, {2}).add(s::output, {0});
  misc.add(s::channel_close, {0, 0});
  misc.add(s::close, {0}).add(s::answer, {0, 0});
  out.emplace_back("misc", misc);
  return out;
}

// Replays one input; the violation, or an empty string.
inline std::string replay(bytes_view input) {
  core_session s(input, on_violation::record);
  s.run();
  return s.violation();
}

}  // namespace warren::fuzz
