// The client's side of the AMQP 0-9-1 handshake as a sans-io state machine:
// protocol header, start / start-ok (SASL), tune / tune-ok, open / open-ok.
// Methods received on channel 0 go in; the frames to send come out. The
// connection core, the benchmark programs and raw protocol sessions share it.
#pragma once

#include <cstdint>
#include <string>

#include "warren/client/types.hpp"
#include "warren/client/uri.hpp"
#include "warren/codec/bytes.hpp"
#include "warren/proto/methods.hpp"

namespace warren::detail {

class handshake {
 public:
  enum class state : std::uint8_t { idle, start, tune, opening, open, failed };
  enum class step : std::uint8_t { more, open, failed };

  // `product` is the client-properties product name; `connection_name` is
  // shown by the broker's tools when not empty.
  handshake(const connection_params& params, std::string connection_name,
            std::string product = "warren");

  // The user's client properties (connect_options::client_properties),
  // merged into start-ok's: see merge_client_properties.
  void set_client_properties(field_table extra) { extra_properties_ = std::move(extra); }

  // Appends the protocol header: the client speaks first.
  void begin(byte_buffer& out);

  // One method received on channel 0 while the handshake runs, decoded;
  // appends what the client answers to `out`. On step::failed, error() says
  // why (the server's close included: with authentication_failure_close a
  // 403 during tuning is errc::authentication_failed).
  step on_method(std::uint32_t key, const any_method& m, byte_buffer& out);

  // Whether method `key` is the one the handshake waits for now.
  bool expects(std::uint32_t key) const noexcept;
  state current() const noexcept { return state_; }
  bool running() const noexcept { return state_ != state::idle && state_ != state::open && state_ != state::failed; }
  const error_info& error() const noexcept { return error_; }

  // Negotiated at tune (frame_max 0: no limit; heartbeat 0: off).
  std::uint16_t channel_max() const noexcept { return channel_max_; }
  std::uint32_t frame_max() const noexcept { return frame_max_; }
  std::uint16_t heartbeat() const noexcept { return heartbeat_; }
  const field_table& server_properties() const noexcept { return server_properties_; }
  // Frames appended to `out` so far (the protocol header is none).
  std::uint64_t frames_written() const noexcept { return frames_written_; }

 private:
  step fail(std::error_code ec, std::string text);
  step on_start(const connection_start& start, byte_buffer& out);
  step on_tune(const connection_tune& tune, byte_buffer& out);
  template <class M>
  void put(byte_buffer& out, const M& m);

  connection_params params_;
  std::string connection_name_;
  std::string product_;
  state state_ = state::idle;
  error_info error_;
  std::uint16_t channel_max_ = 0;
  std::uint32_t frame_max_ = 0;
  std::uint16_t heartbeat_ = 0;
  field_table server_properties_;
  field_table extra_properties_;
  std::uint64_t frames_written_ = 0;
};

// The user's client properties merged into the client's own: a key of the
// user's replaces the client's (product, version, platform, information),
// except "capabilities", whose entries are only added to the client's
// (the client's own capabilities keep their values: it relies on them), and
// "connection_name", which connect_options::connection_name sets when it is
// not empty. A "capabilities" that is not a table is ignored.
void merge_client_properties(field_table& ours, const field_table& theirs);

}  // namespace warren::detail
