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

namespace {

// Writes the method frame and the start of the content header frame (all but
// its size, which the caller patches in at offset 3) at p; returns where the
// properties go.
std::uint8_t* put_publish_head(std::uint8_t* p, const publish_frame_args& args,
                               std::size_t method_payload, std::uint64_t body_size) {
  const std::uint16_t ch = args.channel;
  p[0] = static_cast<std::uint8_t>(frame_type::method);
  detail::store16(p + 1, ch);
  detail::store32(p + 3, static_cast<std::uint32_t>(method_payload));
  p += frame_header_size;
  detail::store32(p, basic_publish::key);
  detail::store16(p + 4, 0);
  p += 6;
  *p++ = static_cast<std::uint8_t>(args.exchange.size());
  detail::copy_bytes(p, args.exchange.data(), args.exchange.size());
  p += args.exchange.size();
  *p++ = static_cast<std::uint8_t>(args.routing_key.size());
  detail::copy_bytes(p, args.routing_key.data(), args.routing_key.size());
  p += args.routing_key.size();
  *p++ = static_cast<std::uint8_t>((args.mandatory ? 1 : 0) | (args.immediate ? 2 : 0));
  *p++ = frame_end_octet;

  p[0] = static_cast<std::uint8_t>(frame_type::header);
  detail::store16(p + 1, ch);
  p += frame_header_size;
  detail::store16(p, basic_class_id);
  detail::store16(p + 2, 0);
  detail::store64(p + 4, body_size);
  return p + 12;
}

// Ends the content header frame and writes the body frames; returns the end.
std::uint8_t* put_publish_tail(std::uint8_t* p, std::uint16_t ch, bytes_view body,
                               std::size_t max_payload) {
  *p++ = frame_end_octet;
  const std::uint8_t* src = body.data();
  std::size_t left = body.size();
  while (left != 0) {
    const std::size_t n = std::min(left, max_payload);
    p[0] = static_cast<std::uint8_t>(frame_type::body);
    detail::store16(p + 1, ch);
    detail::store32(p + 3, static_cast<std::uint32_t>(n));
    detail::copy_bytes(p + frame_header_size, src, n);
    p[frame_header_size + n] = frame_end_octet;
    p += frame_overhead + n;
    src += n;
    left -= n;
  }
  return p;
}

// Properties without a table always fit a content header frame, so the fast
// path below needs no size check for them.
static_assert(12 + basic_properties::max_flat_size <= frame_min_size - frame_overhead);

}  // namespace

std::error_code encode_publish(byte_buffer& out, const publish_frame_args& args,
                               const basic_properties& props, bytes_view body,
                               std::uint32_t frame_max) {
  if (args.exchange.size() > 255 || args.routing_key.size() > 255) return errc::string_too_long;
  const std::size_t max_payload = std::max(frame_max, frame_min_size) - frame_overhead;
  // At most 4 + 2 + 256 + 256 + 1, always below max_payload.
  const std::size_t method_payload =
      4 + 2 + 1 + args.exchange.size() + 1 + args.routing_key.size() + 1;
  // Most bodies fit one frame: skip the division (tens of cycles) for them.
  const std::size_t body_frames = body.size() <= max_payload
                                      ? (body.empty() ? 0 : 1)
                                      : (body.size() + max_payload - 1) / max_payload;
  const std::size_t fixed =
      2 * frame_overhead + method_payload + 12 + body_frames * frame_overhead + body.size();
  const std::size_t start = out.size();

  // Fast path: properties without a table are written in one pass straight
  // into room reserved for the largest they could be, and measured after.
  out.reserve(start + fixed + basic_properties::max_flat_size);
  std::uint8_t* const base = out.data() + start;
  std::uint8_t* const props_at = put_publish_head(base, args, method_payload, body.size());
  if (std::uint8_t* props_end = props.encode_flat(props_at)) {
    const std::size_t header_payload = 12 + static_cast<std::size_t>(props_end - props_at);
    detail::store32(props_at - 12 - 4, static_cast<std::uint32_t>(header_payload));
    std::uint8_t* end = put_publish_tail(props_end, args.channel, body, max_payload);
    out.resize(start + static_cast<std::size_t>(end - base));
    return {};
  }

  // A headers table (or a string too long to encode): size it exactly, then
  // let the generic writer, which appends, write it in place.
  const std::size_t header_payload = 12 + props.encoded_size();
  if (header_payload > max_payload) return errc::frame_too_large;
  const std::size_t at = start + static_cast<std::size_t>(props_at - base);
  out.resize(at);
  writer w(out);
  props.encode(w);
  if (!w.ok()) {
    out.resize(start);
    return w.error();
  }
  out.reserve(start + fixed + header_payload - 12);
  std::uint8_t* const props_begin = out.data() + at;
  detail::store32(props_begin - 12 - 4, static_cast<std::uint32_t>(header_payload));
  std::uint8_t* end =
      put_publish_tail(props_begin + (header_payload - 12), args.channel, body, max_payload);
  out.resize(start + static_cast<std::size_t>(end - (out.data() + start)));
  return {};
}

}  // namespace warren
