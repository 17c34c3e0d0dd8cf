#include "warren/codec/frame.hpp"

#include <algorithm>

namespace warren {

void write_frame(byte_buffer& out, frame_type type, std::uint16_t channel, bytes_view payload) {
  std::uint8_t* p = out.extend(frame_overhead + payload.size());
  p[0] = static_cast<std::uint8_t>(type);
  detail::store16(p + 1, channel);
  detail::store32(p + 3, static_cast<std::uint32_t>(payload.size()));
  if (!payload.empty()) std::memcpy(p + frame_header_size, payload.data(), payload.size());
  p[frame_header_size + payload.size()] = frame_end_octet;
}

void frame_parser::compact() {
  if (pos_ == 0) return;
  buf_.consume(pos_);
  pos_ = 0;
}

std::span<std::uint8_t> frame_parser::prepare(std::size_t n) {
  // Move the unread tail to the front only when it is cheap or needed, so a
  // stream of small frames does not memmove on every read.
  if (pos_ != 0 && (pos_ == buf_.size() || buf_.capacity() - buf_.size() < n)) compact();
  std::size_t old = buf_.size();
  std::uint8_t* p = buf_.extend(n);
  buf_.resize(old);
  return {p, n};
}

void frame_parser::commit(std::size_t n) noexcept { buf_.resize(buf_.size() + n); }

void frame_parser::feed(bytes_view bytes) {
  auto room = prepare(bytes.size());
  if (!bytes.empty()) std::memcpy(room.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

frame_parser::status frame_parser::next_checked(frame_view& out, std::error_code& ec) {
  if (failed_) {
    ec = failed_;
    return status::error;
  }
  const std::size_t avail = buf_.size() - pos_;
  if (avail < frame_header_size) return status::need_more;
  const std::uint8_t* p = buf_.data() + pos_;

  const std::uint8_t type = p[0];
  if (type != 1 && type != 2 && type != 3 && type != 8) {
    // A server that rejects our protocol version replies with its own header.
    if (type == 'A') {
      if (avail < protocol_header.size()) return status::need_more;
      failed_ = std::equal(p, p + 4, protocol_header.begin()) ? errc::protocol_mismatch
                                                              : errc::bad_frame_type;
    } else {
      failed_ = errc::bad_frame_type;
    }
    ec = failed_;
    return status::error;
  }
  const std::uint32_t size = detail::load32(p + 3);
  const std::uint32_t limit = std::max(frame_max_, frame_min_size);
  if (size > limit - frame_overhead) {
    failed_ = errc::frame_too_large;
    ec = failed_;
    return status::error;
  }
  const std::size_t whole = frame_overhead + size;
  if (avail < whole) {
    // Reserve for the whole frame now that its size is known to be
    // acceptable, but never far ahead of the bytes that came: past
    // reserve_ahead the buffer grows as they arrive, so a header announcing
    // a huge frame costs nothing until the peer really sends it.
    const std::size_t want = std::min(whole, avail + reserve_ahead);
    if (buf_.capacity() - pos_ < want) {
      compact();
      buf_.reserve(want);
    }
    return status::need_more;
  }
  p = buf_.data() + pos_;
  if (p[whole - 1] != frame_end_octet) {
    failed_ = errc::bad_frame_end;
    ec = failed_;
    return status::error;
  }
  out.type = static_cast<frame_type>(type);
  out.channel = detail::load16(p + 1);
  out.payload = bytes_view(p + frame_header_size, size);
  pos_ += whole;
  return status::frame;
}

}  // namespace warren
