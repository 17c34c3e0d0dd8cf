// The sans-io protocol core of a connection and its channels: bytes and calls
// in, bytes and completions out. No sockets, no timers, no executors: the
// driver (connection.cpp) moves bytes between the core and the socket and ticks
// the heartbeat; unit tests script exchanges byte for byte.
//
// Completions are one-shot callables. The core calls them when an operation
// finishes, possibly from inside on_read(); the driver wraps every user-facing
// completion so that it only queues the resumption (run when the driver's read
// handler has finished with the core) or posts it to the user's executor, so
// no user code ever runs inside the frame parser.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "warren/client/confirms.hpp"
#include "warren/client/consumers.hpp"
#include "warren/client/handshake.hpp"
#include "warren/client/requests.hpp"
#include "warren/client/types.hpp"
#include "warren/client/unique_function.hpp"
#include "warren/client/uri.hpp"
#include "warren/client/wire.hpp"
#include "warren/codec/frame.hpp"
#include "warren/proto/methods.hpp"

namespace warren::detail {

struct core_config {
  connection_params params;
  std::string connection_name;
  std::uint64_t max_body_size = 512ull << 20;
  // Past this many unsent bytes publishers wait for the socket to drain.
  std::size_t output_high_water = 1u << 20;
  // basic.return messages kept per channel for next_return(); later ones
  // are counted (returns_dropped) and dropped, never allowed to stall reading.
  std::size_t max_returns_buffered = 1024;
  // Replies the broker's own frames make the client owe it (flow-ok,
  // cancel-ok, close-ok, heartbeats, rejects) while it does not read what
  // is already queued. Past this many unsent bytes the connection fails:
  // a broker that floods without reading cannot grow the output.
  std::size_t max_owed_output = 1u << 20;
  // Frames the client accepts when frame_max is negotiated as 0 ("no
  // limit"): a header announcing more is a frame error.
  std::uint32_t unlimited_frame_cap = 16u << 20;
  // How long a synchronous request may wait for its reply (0: for ever).
  // A channel whose reply is late is failed with errc::timeout and closed;
  // a late connection.close-ok or update-secret-ok fails the connection.
  std::chrono::milliseconds request_timeout{60000};
  // connect_options::log and ::client_properties.
  log_sink log;
  field_table client_properties;
};

// What the core needs of its driver, reported as it arises: bytes to send
// (its output went from empty to not), reading to go on (a full stream
// drained), or the end (the connection closed). Reported once until the
// driver takes the output or calls service_started(); the driver serves it
// later, never from inside the call that reported it.
class core_listener {
 public:
  virtual void core_needs_service() = 0;

 protected:
  ~core_listener() = default;
};

class connection_core {
 public:
  enum class phase : std::uint8_t { idle, start, tune, opening, open, closing, closed };

  explicit connection_core(core_config cfg);
  connection_core(const connection_core&) = delete;
  connection_core& operator=(const connection_core&) = delete;

  // ---- driver side -------------------------------------------------------

  void set_listener(core_listener* listener) noexcept { listener_ = listener; }
  // The driver is serving the core now: a later need is reported again.
  void service_started() noexcept { service_requested_ = false; }

  // Queues the protocol header; `on_open` completes after connection.open-ok
  // (or with the reason the handshake failed). Cancelling `id` aborts the
  // connection.
  void start(completion on_open, std::uint64_t id = 0);

  std::span<std::uint8_t> read_buffer(std::size_t n) { return parser_.prepare(n); }
  void on_read(std::size_t n);
  void feed(bytes_view bytes);  // prepare + copy + on_read

  bool has_output() const noexcept { return !output_.empty(); }
  // Swaps the pending output into `into` (which should be empty) and wakes
  // publishers waiting for room.
  void take_output(byte_buffer& into);
  const byte_buffer& output() const noexcept { return output_; }

  // The connection stops reading while a consumer stream holds more than its
  // capacity; it resumes when the user drains it.
  bool reading_paused() const noexcept { return full_streams_ != 0; }

  // The socket failed or the peer hung up.
  void on_transport_error(std::error_code ec, std::string text = {});
  // The driver failed: everything pending fails with `why`.
  void abort(const error_info& why);

  // Negotiated heartbeat in seconds (0 = off). The driver calls
  // heartbeat_tick() every interval/2; the core queues a heartbeat frame if
  // nothing was written since the previous tick, and fails the connection
  // after two intervals (four ticks) with nothing read. While reading is
  // paused the driver cannot see what arrives: `unread_waiting` tells
  // whether bytes wait unread in the transport, which proves the peer alive;
  // a paused connection with nothing waiting is silent like any other.
  std::uint16_t heartbeat() const noexcept { return heartbeat_; }
  void heartbeat_tick(bool unread_waiting = false);

  // Request deadlines (core_config::request_timeout): the driver calls this
  // at least every request_timeout/4 while has_deadlines(). A request is
  // stamped at the first tick after it went on the wire.
  using clock = std::chrono::steady_clock;
  void tick(clock::time_point now);
  bool has_deadlines() const noexcept { return cfg_.request_timeout.count() > 0; }
  std::chrono::milliseconds request_timeout() const noexcept { return cfg_.request_timeout; }

  phase current_phase() const noexcept { return phase_; }
  bool is_open() const noexcept { return phase_ == phase::open; }
  bool is_closed() const noexcept { return phase_ == phase::closed; }
  const error_info& close_reason() const noexcept { return close_reason_; }

  std::uint32_t frame_max() const noexcept { return frame_max_; }
  std::uint16_t channel_max() const noexcept { return channel_max_; }
  const field_table& server_properties() const noexcept { return handshake_.server_properties(); }
  bool blocked() const noexcept { return blocked_; }

  connection_counters counters() const noexcept {
    connection_counters c = counters_;
    c.frames_out += 3 * c.publishes + publish_frames_other_than_three_;
    return c;
  }
  // A line for connect_options::log (nothing when no sink is set).
  bool logging() const noexcept { return static_cast<bool>(cfg_.log); }
  void log(log_level level, std::string_view text) const noexcept;

  // ---- user operations ---------------------------------------------------
  // Every operation that completes later takes an id (from next_op_id()) so
  // that cancel_op(id) can withdraw it.

  std::uint64_t next_op_id() noexcept { return ++op_ids_; }
  // Completes the operation with operation_aborted, if still pending. A
  // synchronous request already on the wire stays tracked so that its reply
  // is still matched; only its completion is dropped.
  bool cancel_op(std::uint64_t id);

  void close(std::uint16_t code, std::string text, std::uint64_t id, completion done);
  void update_secret(std::string secret, std::string reason, std::uint64_t id, completion done);

  // Picks a free channel id and sends channel.open; 0 if none is free.
  std::uint16_t open_channel(std::uint64_t id, completion done);
  void close_channel(std::uint16_t ch, std::uint64_t id, completion done);
  bool is_channel_open(std::uint16_t ch) const noexcept;
  // Why the channel is not open (empty while it is).
  error_info channel_error(std::uint16_t ch) const;

  // A synchronous request: sent when no other is outstanding on the channel;
  // completes with the reply (or, for basic.get-ok, the message too).
  // A method that cannot be encoded (a name over 255 bytes, a frame over
  // frame_max) fails the call at once; nothing is sent.
  template <class M>
  void request(std::uint16_t ch, const M& m, std::uint64_t id, completion done) {
    byte_buffer frame;
    if (error_info e = encode_method(frame, ch, m)) {
      done.consume(failed_result(std::move(e)));
      return;
    }
    enqueue_request(ch, M::key, std::span<const std::uint32_t>(M::responses), std::move(frame),
                    id, std::move(done), nullptr);
  }
  // A method without a reply (ack, nack, reject, no-wait forms). Returns why
  // it was not sent (channel closed, or it cannot be encoded).
  template <class M>
  error_info send(std::uint16_t ch, const M& m) {
    if (check_channel(ch)) return channel_error(ch);
    return encode_method(out(), ch, m, &counters_.frames_out);
  }

  // basic.consume; `consumer` is registered under the broker's tag at consume-ok.
  void consume(std::uint16_t ch, const basic_consume& m, std::shared_ptr<consumer_state> consumer,
               std::uint64_t id, completion done);
  void cancel(std::uint16_t ch, const std::string& tag, std::uint64_t id, completion done);
  // The consumer's reader is gone: cancel it, and reject (requeue) what it
  // buffered and what still arrives, unless it is no-ack.
  void abandon_consumer(const std::shared_ptr<consumer_state>& c);
  // Completes (empty result) once a delivery is buffered or the stream has
  // ended (consumer->end_reason tells why); at once if either is already so.
  // Completes with an error when the channel or connection failed first.
  void wait_delivery(const std::shared_ptr<consumer_state>& c, std::uint64_t id, completion done);
  // The oldest buffered delivery, removed from the stream, for the caller to
  // move from before the core runs again; nullptr when none is buffered.
  message* take_delivery(const std::shared_ptr<consumer_state>& c);
  // The same, swapped into `out`: the stream keeps `out`'s old storage for a
  // later delivery, so a reader that reuses one message allocates nothing
  // once warm. False when none is buffered.
  bool take_delivery(const std::shared_ptr<consumer_state>& c, message& out);

  // confirm.select: switches the channel into confirm mode at select-ok.
  void confirm_select(std::uint16_t ch, std::uint64_t id, completion done);
  bool confirm_mode(std::uint16_t ch) const noexcept;
  // At most `window` unconfirmed publishes (0 = no bound): past it the
  // channel is not writable() until confirms arrive.
  void set_confirm_window(std::uint16_t ch, std::size_t window);
  std::uint64_t unconfirmed(std::uint16_t ch) const noexcept;
  // A channel that failed (with its connection, say) in confirm mode: its
  // confirm state as it was then, for recovery's account of what was lost.
  // Null if there is none.
  const confirm_tracker* lost_confirms(std::uint16_t ch) const noexcept;
  // Whether publish `seq` of the channel is acked or nacked.
  bool confirm_settled(std::uint16_t ch, std::uint64_t seq) const noexcept;

  // Encodes a publish into the output. In confirm mode, `done` (may be empty)
  // completes with the outcome and *sequence receives the sequence number.
  // On error nothing is queued and `done` completes with the error.
  std::error_code publish(const publish_frame_args& args, const basic_properties& props,
                          bytes_view body, std::uint64_t id, completion done,
                          std::uint64_t* sequence = nullptr);
  // The same with the frames encoded once (prepared_publish, made for this
  // channel and this connection's frame_max).
  std::error_code publish(const prepared_publish& prepared, bytes_view body, std::uint64_t id,
                          completion done, std::uint64_t* sequence = nullptr);
  // The same without a completion: a pipelined publisher's hot path.
  std::error_code publish(const prepared_publish& prepared, bytes_view body,
                          std::uint64_t* sequence);
  // Frames of a publish encoded earlier, perhaps for another channel number
  // (recovery publishing again what was unconfirmed): the channel number in
  // every frame header is rewritten to `ch`. Fails with frame_too_large if a
  // frame exceeds this connection's frame_max; nothing is queued then.
  std::error_code publish_encoded(std::uint16_t ch, bytes_view frames, bool mandatory,
                                  std::string_view exchange, std::string_view routing_key,
                                  std::uint64_t* sequence);
  std::uint32_t publish_frame_max() const noexcept { return frame_max_ == 0 ? 131072 : frame_max_; }
  // True while publishing may go on: not blocked by the broker, flow active,
  // and the output below its high-water mark.
  bool writable(std::uint16_t ch) const noexcept;
  // Wakes `done` (with no error) once writable(ch), or fails it with the
  // channel's error.
  void wait_writable(std::uint16_t ch, std::uint64_t id, wake done);
  // Completes once every publish so far on the channel is confirmed, with the
  // tallies since the previous wait_for_confirms.
  void wait_for_confirms(std::uint16_t ch, std::uint64_t id, completion done);

  // basic.return messages of the channel, in arrival order: those not
  // already reported as a publish's outcome (a confirm-mode publish() that
  // waits learns of its return there). At most max_returns_buffered wait;
  // later ones are dropped and counted.
  void next_return(std::uint16_t ch, std::uint64_t id, completion done);
  std::uint64_t returns_dropped(std::uint16_t ch) const noexcept;
  // The latest connection.blocked / unblocked state not yet taken: notices
  // that arrive faster than they are read replace each other.
  void next_event(std::uint64_t id, completion done);

 private:
  struct channel_state {
    // abandoned: failed locally after a late reply; channel.close is on the
    // wire and everything but its answer is discarded until the id is free.
    enum class status : std::uint8_t { free, opening, open, closing, abandoned };
    status state = status::free;
    request_queue requests;
    content_assembler content;
    // What the content now arriving belongs to (discarded: a delivery or
    // return on a channel we are closing).
    enum class target : std::uint8_t { none, deliver, get_ok, returned, discarded } content_for =
        target::none;
    // The delivery being assembled: basic.deliver's fields, the properties and
    // the body are decoded straight into it, and it goes into its stream's
    // ring whole, trading places with a reused slot's message.
    std::unique_ptr<message> incoming;
    basic_get_ok get_ok;
    basic_return returned;
    bool flow_active = true;
    confirm_tracker confirms;
    consumer_set consumers;
    std::deque<returned_message> returns;
    std::uint64_t returns_dropped = 0;
    waiter return_waiter;
    std::vector<wake_waiter> writable_waiters;
    error_info closed_reason;
    // The confirm state of the channel that failed under this id (see
    // lost_confirms()).
    std::unique_ptr<confirm_tracker> lost_confirms;

    explicit channel_state(std::uint64_t max_body) : content(max_body) {}
    // Every pending operation of the channel, whatever its kind: withdraw
    // one (cancel_op), or fail them all (the channel is gone).
    bool cancel(std::uint64_t id);
    // Returns how many consumer streams were full (held reading paused).
    std::size_t fail(const error_info& why);
  };

  void needs_service() {
    if (service_requested_ || listener_ == nullptr) return;
    service_requested_ = true;
    listener_->core_needs_service();
  }
  // The output, for appending: the first bytes after a flush tell the driver.
  byte_buffer& out() {
    if (output_.empty()) needs_service();
    return output_;
  }

  // Appends one method frame to `out`; if it cannot be encoded, or is larger
  // than frame_max, appends nothing and returns why. `sent` (when given)
  // counts the frame.
  template <class M>
  error_info encode_method(byte_buffer& out, std::uint16_t ch, const M& m,
                           std::uint64_t* sent = nullptr) const {
    const std::size_t mark = out.size();
    const std::error_code ec = write_method_frame(out, ch, m);
    if (!ec && (frame_max_ == 0 || out.size() - mark <= frame_max_)) {
      if (sent) ++*sent;
      return {};
    }
    const std::size_t size = out.size() - mark;
    out.resize(mark);
    return encode_failure(M::name, ec ? ec : std::error_code(errc::frame_too_large), size);
  }
  error_info encode_failure(std::string_view method, std::error_code ec, std::size_t size) const;
  // Frames the core owes the broker (replies to its methods): encoded like
  // any other, and counted against max_owed_output.
  template <class M>
  void reply(std::uint16_t ch, const M& m) {
    const std::size_t before = output_.size();
    encode_method_frame(out(), ch, m);
    ++counters_.frames_out;
    owed_ += output_.size() - before;
  }
  // For frames built by the core itself, whose fields it controls.
  template <class M>
  static void encode_method_frame(byte_buffer& out, std::uint16_t ch, const M& m) {
    write_method_frame(out, ch, m);
  }

  // The channel a publish goes to, or nullptr (and `done` failed, the error
  // returned in `ec`) if it cannot take one.
  // The next request of the channel goes on the wire if none is outstanding.
  void pump(channel_state& c) {
    if (c.requests.pump(out())) ++counters_.frames_out;
  }

  channel_state* publish_channel(std::uint16_t ch, completion& done, std::error_code& ec);
  // Bookkeeping after a publish was encoded: its sequence number and confirm.
  std::error_code published(channel_state& c, bool mandatory, std::string_view exchange,
                            std::string_view routing_key, std::uint64_t id, completion done,
                            std::uint64_t* sequence);
  void enqueue_request(std::uint16_t ch, std::uint32_t key, std::span<const std::uint32_t> replies,
                       byte_buffer frame, std::uint64_t id, completion done,
                       std::shared_ptr<consumer_state> consumer);
  std::error_code check_channel(std::uint16_t ch) const;
  channel_state* find_channel(std::uint16_t ch) noexcept;
  const channel_state* find_channel(std::uint16_t ch) const noexcept;

  void process_frames();
  void on_frame(const frame_view& f);
  // on_frame() but for a frame on an open channel of an open connection.
  [[gnu::noinline]] void on_other_frame(const frame_view& f);
  // A method, header or body frame on channel `c`, which takes frames.
  void on_channel_frame(channel_state& c, const frame_view& f);
  void on_connection_method(bytes_view payload);
  void on_abandoned_channel_frame(const frame_view& f);
  void on_channel_method(std::uint16_t ch, channel_state& c, bytes_view payload);
  // A content-carrying method (deliver, return, get-ok): decoded into the
  // channel's slot for it; its header and body frames come next.
  template <class M>
  static std::error_code expect_content(channel_state& c, bytes_view payload, M& slot,
                                        channel_state::target target) {
    std::error_code ec = decode_method_as(payload, slot);
    if (!ec) {
      c.content_for = target;
      c.content.expect_header();
    }
    return ec;
  }
  // basic.deliver, decoded into the channel's incoming message.
  static std::error_code expect_delivery(channel_state& c, bytes_view payload);
  void on_content_complete(std::uint16_t ch, channel_state& c);

  void on_reply(std::uint16_t ch, channel_state& c, std::uint32_t key, any_method&& m);
  void on_confirm(channel_state& c, std::uint64_t tag, bool multiple, bool ack);
  void on_return(channel_state& c, returned_message&& r);
  void deliver(channel_state& c, consumer_state& s);

  void on_handshake_step(handshake::step st);

  // A protocol violation by the peer: close the connection with `code`.
  void protocol_error(reply_code code, std::error_code ec, std::string text);
  // A reply did not come in time: fail the channel (or the connection).
  void request_expired(std::uint16_t ch, const pending_request& req);
  // Fails channel `ch` with `why` and sends channel.close (unless one is on
  // the wire already); the id stays taken, and everything the broker sends
  // there but the close's answer is dropped, until it answers.
  void abandon_channel(std::uint16_t ch, const error_info& why, std::string close_text,
                       bool send_close);
  // A content header over max_body_size on channel `ch`.
  void refuse_content(std::uint16_t ch, channel_state& c);
  // The connection is gone: fail everything pending with `why`.
  // `report`: log it as a failure (unless the connection was not open).
  void fail_all(const error_info& why, bool report = true);
  // The channel is gone: fail what is pending on it and free its id.
  void fail_channel(std::uint16_t ch, const error_info& why);
  bool writable(const channel_state& c) const noexcept;
  // Wakes the publishers waiting on every channel that is writable now, or
  // on channel `c` only.
  void notify_writable();
  void notify_writable(channel_state& c);
  void stream_drained(bool was_full);
  // basic.reject with requeue: a delivery nobody will read goes back.
  void requeue(std::uint16_t ch, std::uint64_t delivery_tag);

  core_config cfg_;
  handshake handshake_;
  phase phase_ = phase::idle;
  frame_parser parser_;
  byte_buffer output_;  // appended to through out() only
  core_listener* listener_ = nullptr;
  bool service_requested_ = false;
  std::uint64_t op_ids_ = 0;

  std::uint16_t channel_max_ = 0;
  std::uint32_t frame_max_ = frame_min_size;
  std::uint16_t heartbeat_ = 0;
  int silent_ticks_ = 0;
  std::size_t owed_ = 0;  // bytes of replies queued since the output was last taken
  bool read_since_tick_ = false;
  bool wrote_since_tick_ = false;
  bool blocked_ = false;
  std::size_t full_streams_ = 0;
  // Publishes count as three frames each in counters(), plus this (see
  // prepared_publish::encode): a publish bumps one counter, this one only
  // for an empty or a split body.
  connection_counters counters_;
  std::uint64_t publish_frames_other_than_three_ = 0;

  completion on_open_;
  std::uint64_t open_id_ = 0;
  waiter close_waiter_;
  clock::time_point close_deadline_{};
  error_info close_reason_;
  std::optional<connection_notice> event_;  // latest state not yet taken
  waiter event_waiter_;
  std::vector<std::unique_ptr<channel_state>> channels_;  // index = channel id; 0 = connection
  std::uint16_t channel_hint_ = 1;

  friend struct core_test_access;
};

}  // namespace warren::detail
