// The publish encoder: basic.publish, its content header and the body frames
// in one contiguous buffer, and prepared_publish for many messages alike.
// Public (channel::prepare_publish returns one), so it does without the
// generated method header.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include "warren/codec/bytes.hpp"
#include "warren/codec/frame.hpp"
#include "warren/proto/properties.hpp"

namespace warren {

namespace detail {
// basic.publish (class 60, method 40); wire.cpp checks them against proto/.
inline constexpr std::uint16_t publish_class_id = 60;
inline constexpr std::uint32_t publish_method_key = (60u << 16) | 40u;
}  // namespace detail

// What a basic.publish carries besides its properties and body.
struct publish_frame_args {
  std::uint16_t channel = 1;
  std::string_view exchange;
  std::string_view routing_key;
  bool mandatory = false;
  bool immediate = false;
};

namespace detail {

// encode_publish for what its one-pass path leaves out: a headers table, or a
// string too long for a shortstr. Same contract.
std::error_code encode_publish_general(byte_buffer& out, const publish_frame_args& args,
                                       const basic_properties& props, bytes_view body,
                                       std::uint32_t frame_max);

// encode_publish for what its inline path leaves out: a body that is empty or
// takes more than one body frame, and an exchange or routing key too long for
// a shortstr. Same contract.
std::error_code encode_publish_frames(byte_buffer& out, const publish_frame_args& args,
                                      const basic_properties& props, bytes_view body,
                                      std::uint32_t frame_max);

// copy_bytes, forced inline, for bodies: in a function this size the compiler
// would otherwise call it out of line. Names go through copy_short_first.
[[gnu::always_inline]] inline void copy_short(std::uint8_t* d, const void* s,
                                              std::size_t n) noexcept {
  copy_bytes(d, s, n);
}

// Writes the method frame and the start of the content header frame (all but
// its size, which the caller patches in at offset 3) at p; returns where the
// properties go.
[[gnu::always_inline]] inline std::uint8_t* put_publish_head(std::uint8_t* p,
                                                             const publish_frame_args& args,
                                                             std::size_t method_payload,
                                                             std::uint64_t body_size) {
  const std::uint16_t ch = args.channel;
  // Read once, before the stores: a byte stored may alias args' members.
  const std::string_view exchange = args.exchange;
  const std::string_view key = args.routing_key;
  const std::uint8_t bits =
      static_cast<std::uint8_t>((args.mandatory ? 1 : 0) | (args.immediate ? 2 : 0));
  p[0] = static_cast<std::uint8_t>(frame_type::method);
  store16(p + 1, ch);
  store32(p + 3, static_cast<std::uint32_t>(method_payload));
  p += frame_header_size;
  store32(p, publish_method_key);
  store16(p + 4, 0);
  p += 6;
  *p++ = static_cast<std::uint8_t>(exchange.size());
  copy_short_first(p, exchange.data(), exchange.size());
  p += exchange.size();
  *p++ = static_cast<std::uint8_t>(key.size());
  copy_short_first(p, key.data(), key.size());
  p += key.size();
  *p++ = bits;
  *p++ = frame_end_octet;

  p[0] = static_cast<std::uint8_t>(frame_type::header);
  store16(p + 1, ch);
  p += frame_header_size;
  store16(p, publish_class_id);
  store16(p + 2, 0);
  store64(p + 4, body_size);
  return p + 12;
}

// Ends the content header frame and writes the body frames; returns the end.
[[gnu::always_inline]] inline std::uint8_t* put_publish_tail(std::uint8_t* p, std::uint16_t ch,
                                                             bytes_view body,
                                                             std::size_t max_payload) {
  *p++ = frame_end_octet;
  const std::uint8_t* src = body.data();
  std::size_t left = body.size();
  while (left != 0) {
    const std::size_t n = left < max_payload ? left : max_payload;
    p[0] = static_cast<std::uint8_t>(frame_type::body);
    store16(p + 1, ch);
    store32(p + 3, static_cast<std::uint32_t>(n));
    copy_short(p + frame_header_size, src, n);
    p[frame_header_size + n] = frame_end_octet;
    p += frame_overhead + n;
    src += n;
    left -= n;
  }
  return p;
}

// Body frames a body needs. Most bodies fit one frame: no division for them.
inline std::size_t body_frame_count(std::size_t body, std::size_t max_payload) noexcept {
  return body <= max_payload ? (body != 0 ? 1 : 0) : (body + max_payload - 1) / max_payload;
}

// The one-pass encode both paths of encode_publish share, for names that fit
// a shortstr: the method frame and the content header with its flat
// properties, written into room reserved for the largest they could be, then
// `tail(p)`, which ends the header at p, writes the body frames into
// `body_room` bytes and returns their end. A headers table or an over-long
// property string goes to encode_publish_general instead.
template <class Tail>
[[gnu::always_inline]] inline std::error_code encode_publish_flat(
    byte_buffer& out, const publish_frame_args& args, const basic_properties& props,
    bytes_view body, std::uint32_t frame_max, std::size_t body_room, Tail tail) {
  const std::size_t method_payload =
      4 + 2 + 1 + args.exchange.size() + 1 + args.routing_key.size() + 1;
  const std::size_t start = out.size();
  out.reserve(start + 2 * frame_overhead + method_payload + 12 + body_room +
              basic_properties::max_flat_size);
  std::uint8_t* const base = out.data() + start;
  std::uint8_t* const props_at = put_publish_head(base, args, method_payload, body.size());
  std::uint8_t* const props_end = props.encode_flat(props_at);
  if (props_end == nullptr) [[unlikely]]
    return encode_publish_general(out, args, props, body, frame_max);
  store32(props_at - 12 - 4, static_cast<std::uint32_t>(12 + (props_end - props_at)));
  std::uint8_t* const end = tail(props_end);
  out.resize(start + static_cast<std::size_t>(end - base));
  return no_error;
}

}  // namespace detail

// Encodes basic.publish, its content header and the body, split into body
// frames of at most frame_max bytes each, appended to one contiguous buffer.
// Exactly one allocation-free append once the buffer is warm. On error
// (shortstr too long, a content header bigger than frame_max) `out` is left as
// it was.
//
// Properties without a headers table, the common case, are written in one
// pass straight into room reserved for the largest they could be, and
// measured after; a table goes through the generic writer.
//
// Inline, and forced so: the common message (names that fit, a body in one
// frame) is encoded where it is published, without a call and the register
// saves that come with one. Every other case takes one out-of-line call.
[[gnu::always_inline]] inline std::error_code encode_publish(byte_buffer& out,
                                                             const publish_frame_args& args,
                                                             const basic_properties& props,
                                                             bytes_view body,
                                                             std::uint32_t frame_max) {
  const std::size_t exchange_size = args.exchange.size();
  const std::size_t key_size = args.routing_key.size();
  const std::uint16_t ch = args.channel;
  const std::size_t n = body.size();
  const std::size_t max_payload =
      (frame_max > frame_min_size ? frame_max : frame_min_size) - frame_overhead;
  // One test for all that is unusual: a name too long, a body that is empty
  // (n - 1 wraps) or needs more than one frame.
  if (((exchange_size | key_size) > 255) | (n - 1 >= max_payload)) [[unlikely]]
    return detail::encode_publish_frames(out, args, props, body, frame_max);
  // The header's frame end, then the body frame's type, channel and size, in
  // one store (n <= max_payload < 2^32); the body; its frame end.
  return detail::encode_publish_flat(
      out, args, props, body, frame_max, frame_overhead + n,
      [ch, body, n](std::uint8_t* p) __attribute__((always_inline)) {
        detail::store64(p, (std::uint64_t{frame_end_octet} << 56) |
                               (std::uint64_t{static_cast<std::uint8_t>(frame_type::body)} << 48) |
                               (std::uint64_t{ch} << 32) | n);
        detail::copy_short(p + 8, body.data(), n);
        p[8 + n] = frame_end_octet;
        return p + 9 + n;
      });
}

// A publish whose method frame and content header are encoded once, for a
// publisher that sends many messages with the same channel, exchange, routing
// key, flags and properties: each message then costs one copy of that prefix,
// its body size, and the body frames. encode() writes exactly the bytes
// encode_publish() would.
class prepared_publish {
 public:
  prepared_publish() = default;

  // Fails like encode_publish (string_too_long, frame_too_large, a table
  // error), leaving the object empty.
  std::error_code prepare(const publish_frame_args& args, const basic_properties& props,
                          std::uint32_t frame_max);
  bool ready() const noexcept { return !prefix_.empty(); }

  std::uint16_t channel() const noexcept { return channel_; }
  std::uint32_t frame_max() const noexcept { return frame_max_; }
  bool mandatory() const noexcept { return mandatory_; }
  const std::string& exchange() const noexcept { return exchange_; }
  const std::string& routing_key() const noexcept { return routing_key_; }

  // Appends one message's frames; needs ready().
  void encode(byte_buffer& out, bytes_view body) const {
    std::uint64_t uncounted = 0;
    encode(out, body, uncounted);
  }
  // The same for a connection that counts its frames: a message is taken to
  // be three frames (method, header, one body frame), and `other_than_three`
  // receives the difference when it is not (an empty body, or one split over
  // several frames), modulo 2^64 so that -1 is a wrap. The common case costs
  // no counting at all.
  void encode(byte_buffer& out, bytes_view body, std::uint64_t& other_than_three) const {
    const std::size_t n = body.size();
    if (n - 1 >= max_payload_) [[unlikely]] {  // empty, or more than one body frame
      encode_other(out, body, other_than_three);
      return;
    }
    const std::size_t head = prefix_.size();
    std::uint8_t* p = out.extend(head + frame_overhead + n);
    std::memcpy(p, prefix_.data(), head);
    detail::store64(p + body_size_at_, n);
    // The header's frame end again, then the body frame's type, channel and
    // size: one store. n <= max_payload_ < 2^32.
    detail::store64(p + head - 1, body_frame_word_ | n);
    detail::copy_short(p + head + 7, body.data(), n);
    p[head + 7 + n] = frame_end_octet;
  }

 private:
  // encode() for an empty body or one that takes several body frames.
  [[gnu::noinline]] void encode_other(byte_buffer& out, bytes_view body,
                                      std::uint64_t& other_than_three) const {
    const std::size_t head = prefix_.size();
    const std::size_t body_frames = detail::body_frame_count(body.size(), max_payload_);
    other_than_three += body_frames - 1;
    std::uint8_t* p = out.extend(head + body_frames * frame_overhead + body.size());
    std::memcpy(p, prefix_.data(), head);
    detail::store64(p + body_size_at_, body.size());
    detail::put_publish_tail(p + head - 1, channel_, body, max_payload_);
  }

  byte_buffer prefix_;  // method frame and content header frame, frame-end included
  // A frame end, then a body frame's type and channel, as a big-endian word
  // whose low 32 bits take the body frame's size.
  std::uint64_t body_frame_word_ = 0;
  std::size_t body_size_at_ = 0;
  std::size_t max_payload_ = 0;
  std::uint32_t frame_max_ = 0;
  std::uint16_t channel_ = 0;
  bool mandatory_ = false;
  std::string exchange_;
  std::string routing_key_;
};

inline bytes_view as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace warren
