// AMQP frames: the 7-byte header, the frame-end octet, heartbeats, the protocol
// header, and an incremental parser that turns arbitrary chunks of bytes into
// whole frames.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <system_error>

#include "warren/codec/bytes.hpp"

namespace warren {

enum class frame_type : std::uint8_t { method = 1, header = 2, body = 3, heartbeat = 8 };

inline constexpr std::uint8_t frame_end_octet = 0xCE;
inline constexpr std::size_t frame_header_size = 7;  // type, channel, size
inline constexpr std::size_t frame_overhead = 8;     // header + frame-end
// Every peer must accept frames of this size, before and after tuning.
inline constexpr std::uint32_t frame_min_size = 4096;

// "AMQP" 0 0 9 1: sent by the client first; a server that does not speak 0-9-1
// answers with its own header and closes.
inline constexpr std::array<std::uint8_t, 8> protocol_header = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

// A frame whose payload points into the parser's buffer.
struct frame_view {
  frame_type type{};
  std::uint16_t channel = 0;
  bytes_view payload;
};

// Writes a whole frame: header, payload, frame-end.
void write_frame(byte_buffer& out, frame_type type, std::uint16_t channel, bytes_view payload);

// Starts a frame whose payload is written next; returns the offset to pass to
// finish_frame, which patches in the size and appends the frame-end octet.
inline std::size_t begin_frame(writer& w, frame_type type, std::uint16_t channel) {
  std::uint8_t* p = w.buffer().extend(frame_header_size);
  p[0] = static_cast<std::uint8_t>(type);
  detail::store16(p + 1, channel);
  return w.size() - frame_header_size;
}
inline void finish_frame(writer& w, std::size_t start) {
  std::size_t payload = w.size() - start - frame_header_size;
  if (payload > 0xFFFFFFFFu) {
    w.fail(errc::value_too_large);
    return;
  }
  w.patch_u32(start + 3, static_cast<std::uint32_t>(payload));
  w.u8(frame_end_octet);
}

// Appends one method frame: any method struct with encode(writer&). Returns
// the writer's error (the frame is then malformed; the caller truncates).
template <class M>
std::error_code write_method_frame(byte_buffer& out, std::uint16_t channel, const M& m) {
  writer w(out);
  const std::size_t start = begin_frame(w, frame_type::method, channel);
  m.encode(w);
  finish_frame(w, start);
  return w.error();
}

inline void write_heartbeat(byte_buffer& out) {
  static constexpr std::uint8_t hb[] = {8, 0, 0, 0, 0, 0, 0, frame_end_octet};
  out.append(hb, sizeof hb);
}

// Splits a byte stream into frames. Bytes go in through prepare()/commit() (read
// straight into the parser's buffer) or feed() (copied). next() hands out one
// whole frame at a time; the frame's payload stays valid until the next call to
// prepare(), feed() or next().
//
// A frame whose declared size exceeds frame_max is rejected as soon as its
// header is seen, before any space is reserved for it; so is an unknown frame
// type and a missing frame-end octet. Space for an accepted frame is reserved
// at most reserve_ahead beyond what has arrived. After an error the parser
// stays failed.
class frame_parser {
 public:
  enum class status { need_more, frame, error };
  // How far ahead of the bytes received the buffer is reserved for a frame
  // still arriving.
  static constexpr std::size_t reserve_ahead = 256 * 1024;

  explicit frame_parser(std::uint32_t frame_max = frame_min_size) noexcept
      : frame_max_(frame_max) {}

  // The largest whole frame (header and frame-end included) accepted. 0 is
  // taken as the protocol's own minimum, never as "no limit".
  void set_frame_max(std::uint32_t frame_max) noexcept { frame_max_ = frame_max; }
  std::uint32_t frame_max() const noexcept { return frame_max_; }

  // Room for at least n more bytes at the end of the buffer.
  std::span<std::uint8_t> prepare(std::size_t n);
  void commit(std::size_t n) noexcept;
  void feed(bytes_view bytes);

  status next(frame_view& out, std::error_code& ec) {
    // A whole, well-formed frame already buffered is handed out inline; what
    // is not (too few bytes, a bad header, an earlier failure) goes the long
    // way, which checks everything again.
    const std::size_t avail = buf_.size() - pos_;
    if (avail >= frame_header_size && !failed_) {
      const std::uint8_t* p = buf_.data() + pos_;
      const std::uint8_t type = p[0];
      const std::uint32_t size = detail::load32(p + 3);
      const std::size_t whole = frame_overhead + std::size_t{size};
      if ((type == 1 || type == 2 || type == 3 || type == 8) &&
          size <= std::max(frame_max_, frame_min_size) - frame_overhead && avail >= whole &&
          p[whole - 1] == frame_end_octet) {
        out.type = static_cast<frame_type>(type);
        out.channel = detail::load16(p + 1);
        out.payload = bytes_view(p + frame_header_size, size);
        pos_ += whole;
        return status::frame;
      }
    }
    return next_checked(out, ec);
  }

  // Bytes buffered but not yet handed out as frames.
  std::size_t buffered() const noexcept { return buf_.size() - pos_; }

 private:
  void compact();
  status next_checked(frame_view& out, std::error_code& ec);

  byte_buffer buf_;
  std::size_t pos_ = 0;  // start of the first byte not yet handed out
  std::uint32_t frame_max_;
  std::error_code failed_;
};

}  // namespace warren
