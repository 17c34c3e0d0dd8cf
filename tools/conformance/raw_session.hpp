// A raw AMQP 0-9-1 session for conformance scenarios: a blocking TCP socket
// whose every wait is bounded, the client handshake shared with the library
// (detail::handshake), and frames sent exactly as written, including frames
// no well-behaved client would send. What the broker sends back is read frame
// by frame and turned into events a scenario can compare with the spec.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "warren/client/uri.hpp"
#include "warren/codec/bytes.hpp"
#include "warren/codec/field.hpp"
#include "warren/codec/frame.hpp"
#include "warren/proto/methods.hpp"
#include "warren/proto/properties.hpp"

namespace warren::conformance {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One thing the broker did, as seen from the client.
struct event {
  enum class kind : std::uint8_t {
    method,     // a method frame, decoded (with its content for deliver, get-ok, return)
    heartbeat,  // a heartbeat frame (channel kept: a broker could send one on another channel)
    frame,      // a header or body frame that follows no content-carrying method
    header,     // the protocol header (the broker refused our version)
    closed,     // the broker closed the socket
    timeout,    // nothing arrived in time
    bad,        // bytes that are not a valid frame, or a method that does not decode
  };
  kind what = kind::timeout;
  std::uint16_t channel = 0;
  std::uint32_t key = 0;
  any_method method;
  bool has_content = false;
  basic_properties properties;
  std::string body;
  std::string detail;  // bad: why; header: the bytes; frame: its type

  template <class M>
  const M* as() const noexcept {
    return what == kind::method && key == M::key ? std::get_if<M>(&method) : nullptr;
  }
  bool is_channel_close() const noexcept { return as<channel_close>() != nullptr; }
  bool is_connection_close() const noexcept { return as<connection_close>() != nullptr; }
  // The close's reply code, 0 when this is no close.
  std::uint16_t close_code() const noexcept;
  // Short and stable: "queue.declare-ok", "channel.close 404", "connection.close 501",
  // "socket closed", "no reply in 2000 ms", "heartbeat on channel 3"...
  std::string describe() const;
};

// Thrown by a step that did not observe what it needed; the scenario's
// observed value is the description of what came instead.
struct step_failed {
  std::string observed;
};

// Options for opening a session; the defaults give a normal login.
struct session_options {
  bool handshake = true;     // false: TCP connect only
  bool open_channel = true;  // open channel 1 after the handshake
  std::uint16_t heartbeat = 0;
  std::uint32_t frame_max = 131072;
  std::uint16_t channel_max = 0;
  std::string vhost_override;  // empty: the URI's
  std::string password_override;
  std::string product = "warren-conformance";
};

class raw_session {
 public:
  raw_session(const connection_params& params, milliseconds reply_timeout,
              clock::time_point deadline);
  ~raw_session();
  raw_session(const raw_session&) = delete;
  raw_session& operator=(const raw_session&) = delete;

  // TCP connect, then (unless told not to) the shared client handshake and
  // channel 1. Throws step_failed on any failure.
  void open(const session_options& o);

  // Sends bytes as they are. Throws step_failed when the socket fails or the
  // broker stops reading past the deadline.
  void send_raw(const void* data, std::size_t n);
  void send_raw(const byte_buffer& b) { send_raw(b.data(), b.size()); }
  void send_frame(std::uint8_t type, std::uint16_t channel, std::string_view payload);
  template <class M>
  void send(std::uint16_t channel, const M& m) {
    byte_buffer b;
    write_method_frame(b, channel, m);
    send_raw(b);
  }
  // basic.publish with its header and body frames (the body split at frame_max).
  void publish(std::uint16_t channel, const basic_publish& p, const basic_properties& props,
               std::string_view body);

  // The next event within `wait` (capped by the scenario's deadline). Events
  // set aside by expect() are handed out first. A channel.close or
  // connection.close from the broker is answered with close-ok here.
  event next(std::optional<milliseconds> wait = std::nullopt);
  event next_raw(std::optional<milliseconds> wait = std::nullopt);

  // Waits for method M on `channel`. Asynchronous methods (deliveries,
  // returns, confirms, cancels, flow, blocked) met on the way are set aside
  // for next(). Anything else throws step_failed with its description.
  template <class M>
  M expect(std::uint16_t channel) {
    for (;;) {
      event e = pull_sync();
      if (const M* m = e.as<M>(); m != nullptr && e.channel == channel) return *m;
      throw step_failed{e.describe() + " (waiting for " + std::string(M::name) + ")"};
    }
  }
  // Sends a synchronous method and waits for its reply.
  template <class M>
  typename M::reply call(std::uint16_t channel, const M& m) {
    send(channel, m);
    return expect<typename M::reply>(channel);
  }
  // The description of the next synchronous (non-asynchronous) event.
  std::string observe() { return pull_sync().describe(); }
  event pull_sync();

  // The next asynchronous event of kind `key` on `channel` (from the set-aside
  // ones first), or a timeout event.
  event next_async(std::uint16_t channel, std::uint32_t key,
                   std::optional<milliseconds> wait = std::nullopt);
  // True when nothing arrives within `wait` (asynchronous methods included).
  bool quiet(milliseconds wait);

  void open_channel(std::uint16_t channel);
  void close_channel(std::uint16_t channel);
  // Sends connection.close and waits briefly for close-ok; never throws.
  void close();

  bool connected() const noexcept { return fd_ >= 0; }
  const field_table& server_properties() const noexcept { return server_properties_; }
  std::string mechanisms;
  std::string locales;
  std::uint16_t version_major = 0, version_minor = 0;
  std::uint32_t frame_max() const noexcept { return frame_max_; }
  std::uint16_t tuned_heartbeat = 0;
  std::uint32_t tuned_frame_max = 0;
  std::uint16_t tuned_channel_max = 0;
  const connection_params& params() const noexcept { return params_; }
  milliseconds reply_timeout() const noexcept { return reply_timeout_; }
  void set_frame_max(std::uint32_t f) noexcept;
  // Moves the deadline every wait is capped by (a session kept across scenarios).
  void set_deadline(clock::time_point d) noexcept { deadline_ = d; }

 private:
  void connect_tcp();
  void handshake(const session_options& o);
  clock::time_point until(std::optional<milliseconds> wait) const;
  event read_event(clock::time_point until);
  // Waits for bytes until `stop`: 0 when the socket closed or time ran out (`why` says which).
  std::size_t receive(clock::time_point stop, std::uint8_t* buf, std::size_t size,
                      std::string& why);
  bool fill(clock::time_point stop, std::string& why);  // false: closed or timed out
  void answer_close(const event& e);

  connection_params params_;
  milliseconds reply_timeout_;
  clock::time_point deadline_;
  int fd_ = -1;
  frame_parser parser_;
  std::uint32_t frame_max_ = 131072;
  field_table server_properties_;
  std::deque<event> aside_;
  bool eof_ = false;
  bool started_ = false;  // past the first 8 bytes, which may be a protocol header
  std::string head_;
};

// True for the methods a broker sends on its own, not as a reply.
bool is_async_method(std::uint32_t key) noexcept;

}  // namespace warren::conformance
