#include "warren/client/wire.hpp"

#include <algorithm>

namespace warren {

static_assert(detail::publish_method_key == basic_publish::key);
static_assert(detail::publish_class_id == basic_class_id);

namespace {

// Both decode_content_header()s: the fixed part read in place, one test for
// its length, then the properties.
[[gnu::always_inline]] inline std::error_code decode_header(bytes_view payload,
                                                            std::uint16_t& class_id,
                                                            std::uint64_t& body_size,
                                                            basic_properties& props) {
  // class-id, weight (unused), body size
  constexpr std::size_t fixed = 2 + 2 + 8;
  if (payload.size() < fixed) return errc::truncated;
  class_id = detail::load16(payload.data());
  body_size = detail::load64(payload.data() + 4);
  if (class_id != basic_class_id) return errc::bad_content_header;
  reader r(payload.data() + fixed, payload.size() - fixed);
  props.decode(r);
  if (!r.ok()) return r.error();
  if (!r.empty()) return errc::trailing_bytes;
  return detail::no_error;
}

}  // namespace

std::error_code decode_content_header(bytes_view payload, content_header& out) {
  return decode_header(payload, out.class_id, out.body_size, out.properties);
}

std::error_code decode_content_header(bytes_view payload, std::uint16_t& class_id,
                                      std::uint64_t& body_size, basic_properties& props) {
  return decode_header(payload, class_id, body_size, props);
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
  ec = decode_content_header(payload, header_.class_id, header_.body_size, *props_);
  if (ec) return false;
  if (header_.body_size > max_body_size_) {
    ec = errc::message_too_large;
    return false;
  }
  std::string& body = *body_;
  body.clear();
  // Storage left from an earlier message is reused, but a big buffer is not
  // kept for small bodies.
  if (body.capacity() > (1u << 20) && header_.body_size < body.capacity() / 4)
    std::string().swap(body);
  // Trust the declared size only as far as a modest bound; beyond that the
  // string grows with the bytes that really arrive.
  if (body.capacity() < header_.body_size)
    body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(header_.body_size, 1u << 20)));
  if (header_.body_size == 0) {
    state_ = state::idle;
    return true;
  }
  state_ = state::want_body;
  return false;
}

void content_assembler::skip_body() noexcept {
  body_->clear();
  skipped_ = 0;
  skipping_ = true;
  state_ = state::want_body;
}

bool content_assembler::on_body(bytes_view payload, std::error_code& ec) {
  if (state_ != state::want_body) {
    ec = errc::unexpected_frame;
    return false;
  }
  if (skipping_) {
    if (payload.size() > header_.body_size - skipped_) {
      ec = errc::body_size_mismatch;
      return false;
    }
    skipped_ += payload.size();
    if (skipped_ != header_.body_size) return false;
    skipping_ = false;
    state_ = state::idle;
    return true;
  }
  std::string& body = *body_;
  if (payload.size() > header_.body_size - body.size()) {
    ec = errc::body_size_mismatch;
    return false;
  }
  body.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (body.size() == header_.body_size) {
    state_ = state::idle;
    return true;
  }
  return false;
}

std::string content_assembler::take_body() noexcept {
  std::string b = std::move(*body_);
  *body_ = std::string();
  return b;
}

void content_assembler::reset() noexcept {
  state_ = state::idle;
  skipping_ = false;
  body_->clear();
}

namespace detail {

// Properties without a table always fit a content header frame, so the inline
// path needs no size check for them.
static_assert(12 + basic_properties::max_flat_size <= frame_min_size - frame_overhead);

std::error_code encode_publish_general(byte_buffer& out, const publish_frame_args& args,
                                       const basic_properties& props, bytes_view body,
                                       std::uint32_t frame_max) {
  if (args.exchange.size() > 255 || args.routing_key.size() > 255) return errc::string_too_long;
  const std::size_t max_payload = std::max(frame_max, frame_min_size) - frame_overhead;
  const std::size_t method_payload =
      4 + 2 + 1 + args.exchange.size() + 1 + args.routing_key.size() + 1;
  const std::size_t fixed = 2 * frame_overhead + method_payload + 12 +
                            body_frame_count(body.size(), max_payload) * frame_overhead +
                            body.size();
  const std::size_t start = out.size();

  // The properties, a table among them, sized exactly, then written in place
  // by the generic writer, which appends.
  const std::size_t header_payload = 12 + props.encoded_size();
  if (header_payload > max_payload) return errc::frame_too_large;
  out.reserve(start + fixed - 12);
  std::uint8_t* const props_at =
      put_publish_head(out.data() + start, args, method_payload, body.size());
  const std::size_t at = start + static_cast<std::size_t>(props_at - (out.data() + start));
  out.resize(at);
  writer w(out);
  props.encode(w);
  if (!w.ok()) {
    out.resize(start);
    return w.error();
  }
  out.reserve(start + fixed + header_payload - 12);
  std::uint8_t* const props_begin = out.data() + at;
  store32(props_begin - 12 - 4, static_cast<std::uint32_t>(header_payload));
  std::uint8_t* end =
      put_publish_tail(props_begin + (header_payload - 12), args.channel, body, max_payload);
  out.resize(start + static_cast<std::size_t>(end - (out.data() + start)));
  return {};
}

std::error_code encode_publish_frames(byte_buffer& out, const publish_frame_args& args,
                                      const basic_properties& props, bytes_view body,
                                      std::uint32_t frame_max) {
  if (args.exchange.size() > 255 || args.routing_key.size() > 255) [[unlikely]]
    return detail::encode_publish_general(out, args, props, body, frame_max);
  const std::size_t max_payload =
      (frame_max > frame_min_size ? frame_max : frame_min_size) - frame_overhead;
  const std::size_t body_room =
      detail::body_frame_count(body.size(), max_payload) * frame_overhead + body.size();
  const std::uint16_t ch = args.channel;
  return encode_publish_flat(out, args, props, body, frame_max, body_room,
                             [ch, body, max_payload](std::uint8_t* p) {
                               return put_publish_tail(p, ch, body, max_payload);
                             });
}

}  // namespace detail

std::error_code prepared_publish::prepare(const publish_frame_args& args,
                                          const basic_properties& props, std::uint32_t frame_max) {
  prefix_.clear();
  // The frames of an empty body are exactly the prefix every message starts
  // with: method frame, then the header frame whose body size is patched in.
  if (auto ec = encode_publish(prefix_, args, props, {}, frame_max)) {
    prefix_ = byte_buffer();
    return ec;
  }
  body_size_at_ = frame_overhead + 4 + 2 + 1 + args.exchange.size() + 1 + args.routing_key.size() +
                  1 + frame_header_size + 4;
  max_payload_ = std::max(frame_max, frame_min_size) - frame_overhead;
  body_frame_word_ = (std::uint64_t{frame_end_octet} << 56) |
                     (std::uint64_t{static_cast<std::uint8_t>(frame_type::body)} << 48) |
                     (std::uint64_t{args.channel} << 32);
  frame_max_ = frame_max;
  channel_ = args.channel;
  mandatory_ = args.mandatory;
  exchange_ = std::string(args.exchange);
  routing_key_ = std::string(args.routing_key);
  return {};
}

}  // namespace warren
