#include "warren/client/wire.hpp"

#include <algorithm>

namespace warren {

std::error_code decode_content_header(bytes_view payload, content_header& out) {
  reader r(payload);
  out.class_id = r.u16();
  r.u16();  // weight, unused
  out.body_size = r.u64();
  if (!r.ok()) return r.error();
  if (out.class_id != basic_class_id) return errc::bad_content_header;
  out.properties.decode(r);
  if (!r.ok()) return r.error();
  if (!r.empty()) return errc::trailing_bytes;
  return {};
}

void encode_content_header(writer& w, std::uint64_t body_size, const basic_properties& props) {
  w.u16(basic_class_id);
  w.u16(0);
  w.u64(body_size);
  props.encode(w);
}

bool content_assembler::on_header(bytes_view payload, std::error_code& ec) {
  if (state_ != state::want_header) {
    ec = errc::unexpected_frame;
    return false;
  }
  ec = decode_content_header(payload, header_);
  if (ec) return false;
  if (header_.body_size > max_body_size_) {
    ec = errc::message_too_large;
    return false;
  }
  body_.clear();
  // Trust the declared size only as far as a modest bound; beyond that the
  // string grows with the bytes that really arrive.
  body_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(header_.body_size, 1u << 20)));
  if (header_.body_size == 0) {
    state_ = state::idle;
    return true;
  }
  state_ = state::want_body;
  return false;
}

bool content_assembler::on_body(bytes_view payload, std::error_code& ec) {
  if (state_ != state::want_body) {
    ec = errc::unexpected_frame;
    return false;
  }
  if (payload.size() > header_.body_size - body_.size()) {
    ec = errc::body_size_mismatch;
    return false;
  }
  body_.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (body_.size() == header_.body_size) {
    state_ = state::idle;
    return true;
  }
  return false;
}

std::string content_assembler::take_body() noexcept {
  std::string b = std::move(body_);
  body_ = std::string();
  return b;
}

void content_assembler::reset() noexcept {
  state_ = state::idle;
  body_.clear();
}

std::error_code encode_publish(byte_buffer& out, const publish_frame_args& args,
                               const basic_properties& props, bytes_view body,
                               std::uint32_t frame_max) {
  if (args.exchange.size() > 255 || args.routing_key.size() > 255) return errc::string_too_long;
  const std::size_t max_payload = std::max(frame_max, frame_min_size) - frame_overhead;
  const std::size_t method_payload = 4 + 2 + 1 + args.exchange.size() + 1 +
                                     args.routing_key.size() + 1;
  const std::size_t header_payload = 12 + props.encoded_size();
  if (header_payload > max_payload || method_payload > max_payload) return errc::frame_too_large;
  const std::size_t body_frames = (body.size() + max_payload - 1) / max_payload;
  const std::size_t total = 2 * frame_overhead + method_payload + header_payload +
                            body_frames * frame_overhead + body.size();

  const std::size_t start = out.size();
  std::uint8_t* p = out.extend(total);
  const std::uint16_t ch = args.channel;

  // Method frame.
  p[0] = static_cast<std::uint8_t>(frame_type::method);
  detail::store16(p + 1, ch);
  detail::store32(p + 3, static_cast<std::uint32_t>(method_payload));
  p += frame_header_size;
  detail::store32(p, basic_publish::key);
  detail::store16(p + 4, 0);
  p += 6;
  *p++ = static_cast<std::uint8_t>(args.exchange.size());
  std::memcpy(p, args.exchange.data(), args.exchange.size());
  p += args.exchange.size();
  *p++ = static_cast<std::uint8_t>(args.routing_key.size());
  std::memcpy(p, args.routing_key.data(), args.routing_key.size());
  p += args.routing_key.size();
  *p++ = static_cast<std::uint8_t>((args.mandatory ? 1 : 0) | (args.immediate ? 2 : 0));
  *p++ = frame_end_octet;

  // Content header frame. Properties go through the generic writer, which
  // appends; rewind the buffer to this point so it writes in place.
  p[0] = static_cast<std::uint8_t>(frame_type::header);
  detail::store16(p + 1, ch);
  detail::store32(p + 3, static_cast<std::uint32_t>(header_payload));
  p += frame_header_size;
  detail::store16(p, basic_class_id);
  detail::store16(p + 2, 0);
  detail::store64(p + 4, body.size());
  p += 12;
  const std::uint16_t flags = props.flags();
  if (flags == 0) {
    detail::store16(p, 0);
    p += 2;
  } else {
    const std::size_t at = static_cast<std::size_t>(p - out.data());
    const std::size_t end = out.size();
    out.resize(at);
    writer w(out);
    props.encode(w);
    if (!w.ok()) {
      out.resize(start);
      return w.error();
    }
    out.resize(end);
    p = out.data() + at + (header_payload - 12);
  }
  *p++ = frame_end_octet;

  // Body frames.
  const std::uint8_t* src = body.data();
  std::size_t left = body.size();
  while (left != 0) {
    const std::size_t n = std::min(left, max_payload);
    p[0] = static_cast<std::uint8_t>(frame_type::body);
    detail::store16(p + 1, ch);
    detail::store32(p + 3, static_cast<std::uint32_t>(n));
    std::memcpy(p + frame_header_size, src, n);
    p[frame_header_size + n] = frame_end_octet;
    p += frame_overhead + n;
    src += n;
    left -= n;
  }
  return {};
}

}  // namespace warren
