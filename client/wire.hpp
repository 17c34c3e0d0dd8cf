// The wire layer under the client: content headers and content assembly
// (method + header + body frames into one message); the publish encoder is
// in publish.hpp. Private to the library.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "warren/client/publish.hpp"
#include "warren/codec/bytes.hpp"
#include "warren/codec/frame.hpp"
#include "warren/proto/methods.hpp"
#include "warren/proto/properties.hpp"

namespace warren {

// The payload of a content header frame: class, weight (always 0), body size,
// then the class's properties.
struct content_header {
  std::uint16_t class_id = basic_class_id;
  std::uint64_t body_size = 0;
  basic_properties properties;
};

// Fails with truncated, bad_content_header (a class other than basic, bad
// flags) or trailing_bytes.
std::error_code decode_content_header(bytes_view payload, content_header& out);
// The same, the properties decoded into `props` (whose storage is reused).
std::error_code decode_content_header(bytes_view payload, std::uint16_t& class_id,
                                      std::uint64_t& body_size, basic_properties& props);
void encode_content_header(writer& w, std::uint64_t body_size, const basic_properties& props);

// Collects the header and body frames that follow a content-carrying method
// (basic.deliver, basic.get-ok, basic.return) into one body.
//
// Memory follows the bytes that actually arrive: the declared body size is
// checked against max_body_size but never reserved for up front beyond a
// small bound, so a header that lies about its size cannot force a large
// allocation.
// basic.ack, basic.nack and basic.reject have a fixed layout, a delivery tag
// and one octet of bits: their frames are written in one step, not through
// the generic writer. Chosen over the template in codec/frame.hpp.
namespace detail {
inline void write_settle_frame(byte_buffer& out, std::uint16_t channel, std::uint32_t key,
                               std::uint64_t tag, std::uint8_t bits) {
  constexpr std::uint32_t payload = 4 + 8 + 1;
  std::uint8_t* p = out.extend(frame_overhead + payload);
  p[0] = static_cast<std::uint8_t>(frame_type::method);
  store16(p + 1, channel);
  store32(p + 3, payload);
  store32(p + 7, key);
  store64(p + 11, tag);
  p[19] = bits;
  p[20] = frame_end_octet;
}
}  // namespace detail

inline std::error_code write_method_frame(byte_buffer& out, std::uint16_t channel,
                                          const basic_ack& m) {
  detail::write_settle_frame(out, channel, basic_ack::key, m.delivery_tag, m.multiple ? 1 : 0);
  return detail::no_error;
}
inline std::error_code write_method_frame(byte_buffer& out, std::uint16_t channel,
                                          const basic_nack& m) {
  detail::write_settle_frame(out, channel, basic_nack::key, m.delivery_tag,
                             static_cast<std::uint8_t>((m.multiple ? 1u : 0u) | (m.requeue ? 2u : 0u)));
  return detail::no_error;
}
inline std::error_code write_method_frame(byte_buffer& out, std::uint16_t channel,
                                          const basic_reject& m) {
  detail::write_settle_frame(out, channel, basic_reject::key, m.delivery_tag, m.requeue ? 1 : 0);
  return detail::no_error;
}

class content_assembler {
 public:
  enum class state { idle, want_header, want_body };

  explicit content_assembler(std::uint64_t max_body_size = 512ull << 20) noexcept
      : max_body_size_(max_body_size) {}

  state current() const noexcept { return state_; }
  bool idle() const noexcept { return state_ == state::idle; }

  // A content-carrying method arrived: the next frame on the channel must be
  // its content header.
  void expect_header() noexcept {
    state_ = state::want_header;
    props_ = &header_.properties;
    body_ = &own_body_;
  }
  // The same, the message assembled straight into `props` and `body` (a
  // delivery's own message): they must stay put until it is complete or
  // reset(), and properties() and take_body() then refer to them.
  void expect_header(basic_properties& props, std::string& body) noexcept {
    state_ = state::want_header;
    props_ = &props;
    body_ = &body;
  }

  // Returns true once the whole body is in (at once for an empty body).
  // A body over max_body_size fails on_header with errc::message_too_large;
  // skip_body() then lets the body frames pass, unstored, to the end.
  bool on_header(bytes_view payload, std::error_code& ec);
  bool on_body(bytes_view payload, std::error_code& ec);
  void skip_body() noexcept;
  // The body size the last content header declared, and the limit.
  std::uint64_t declared_size() const noexcept { return header_.body_size; }
  std::uint64_t max_body_size() const noexcept { return max_body_size_; }

  // The completed message; leaves the assembler idle for the next one.
  basic_properties& properties() noexcept { return *props_; }
  std::string take_body() noexcept;
  void reset() noexcept;

  content_assembler(const content_assembler&) = delete;
  content_assembler& operator=(const content_assembler&) = delete;

 private:
  state state_ = state::idle;
  content_header header_;
  std::string own_body_;
  basic_properties* props_ = &header_.properties;  // where this message goes
  std::string* body_ = &own_body_;
  std::uint64_t max_body_size_;
  std::uint64_t skipped_ = 0;  // bytes of a skipped body so far
  bool skipping_ = false;
};

}  // namespace warren
