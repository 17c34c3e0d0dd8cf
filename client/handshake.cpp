#include "warren/client/handshake.hpp"

#include <algorithm>

#include "warren/client/sasl.hpp"
#include "warren/client/version.hpp"
#include "warren/codec/frame.hpp"

namespace warren::detail {

namespace {

constexpr std::uint32_t negotiate_limit(std::uint32_t ours, std::uint32_t theirs,
                                        std::uint32_t no_limit) {
  // 0 means "no limit" on either side: the lower of the real limits wins.
  if (ours == 0 && theirs == 0) return no_limit;
  if (ours == 0) return theirs;
  if (theirs == 0) return ours;
  return std::min(ours, theirs);
}

}  // namespace

// The handshake's frames, whose fields it controls, always encode (start-ok,
// which carries the user's properties, is checked before).
template <class M>
void handshake::put(byte_buffer& out, const M& m) {
  write_method_frame(out, 0, m);
  ++frames_written_;
}

void merge_client_properties(field_table& ours, const field_table& theirs) {
  for (const field_entry& e : theirs.entries) {
    if (e.name == "capabilities") {
      const auto* extra = std::get_if<field_table>(&e.value.variant());
      field_value* own = ours.find("capabilities");
      auto* caps = own ? std::get_if<field_table>(&own->variant()) : nullptr;
      if (extra == nullptr || caps == nullptr) continue;
      for (const field_entry& c : extra->entries)
        if (caps->find(c.name) == nullptr) caps->add(c.name, c.value);
      continue;
    }
    if (e.name == "connection_name" && ours.find("connection_name") != nullptr) continue;
    ours.set(e.name, e.value);
  }
}

handshake::handshake(const connection_params& params, std::string connection_name,
                     std::string product)
    : params_(params), connection_name_(std::move(connection_name)), product_(std::move(product)) {}

void handshake::begin(byte_buffer& out) {
  out.append(protocol_header.data(), protocol_header.size());
  state_ = state::start;
}

bool handshake::expects(std::uint32_t key) const noexcept {
  switch (key) {
    case connection_start::key: return state_ == state::start;
    case connection_secure::key: return state_ == state::tune;
    case connection_tune::key: return state_ == state::tune;
    case connection_open_ok::key: return state_ == state::opening;
    default: return false;
  }
}

handshake::step handshake::fail(std::error_code ec, std::string text) {
  state_ = state::failed;
  error_.code = ec;
  error_.text = std::move(text);
  return step::failed;
}

handshake::step handshake::on_method(std::uint32_t key, const any_method& m, byte_buffer& out) {
  if (!expects(key))
    return fail(errc::unexpected_frame, method_name(key >> 16, key & 0xFFFF) + " is not expected now");
  switch (key) {
    case connection_start::key: return on_start(std::get<connection_start>(m), out);
    case connection_secure::key:
      return fail(errc::no_common_mechanism,
                  "the server sent a SASL challenge; the client's mechanisms have none");
    case connection_tune::key: return on_tune(std::get<connection_tune>(m), out);
    default:
      state_ = state::open;
      return step::open;
  }
}

handshake::step handshake::on_start(const connection_start& start, byte_buffer& out) {
  server_properties_ = start.server_properties;
  if (start.version_major != 0 || start.version_minor != 9)
    return fail(errc::protocol_mismatch, "the server offers AMQP " +
                                             std::to_string(start.version_major) + "-" +
                                             std::to_string(start.version_minor));
  sasl_mechanism mech{};
  if (auto ec = choose_mechanism(start.mechanisms, params_.auth_mechanism, mech))
    return fail(ec, "the server offers SASL mechanisms '" + start.mechanisms +
                        "', none of which the client is set to use");
  connection_start_ok ok;
  field_table caps;
  for (const char* cap : {"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                          "consumer_cancel_notify", "connection.blocked",
                          "authentication_failure_close", "per_consumer_qos"})
    caps.add(cap, true);
  ok.client_properties.add("product", product_)
      .add("version", std::string(version_string))
      .add("platform", "C++20, standalone Asio")
      .add("information", "AMQP 0-9-1 client")
      .add("capabilities", std::move(caps));
  if (!connection_name_.empty()) ok.client_properties.add("connection_name", connection_name_);
  field_table own;
  if (!extra_properties_.empty()) own = ok.client_properties;
  merge_client_properties(ok.client_properties, extra_properties_);
  ok.mechanism = std::string(sasl_mechanism_name(mech));
  ok.response = sasl_response(mech, params_.username, params_.password);
  ok.locale = "en_US";
  // Until tune, no frame may exceed frame_min_size. When the user's
  // properties are what takes start-ok over it, nothing is sent; a start-ok
  // too big by itself (a long token as the password) is the broker's to
  // judge, as it always was.
  const std::size_t mark = out.size();
  const std::error_code ec = write_method_frame(out, 0, ok);
  const std::size_t size = out.size() - mark;
  bool too_big = false;
  if (!ec && size > frame_min_size && !extra_properties_.empty()) {
    ok.client_properties = std::move(own);
    byte_buffer without;
    write_method_frame(without, 0, ok);
    too_big = without.size() <= frame_min_size;
  }
  if (ec || too_big) {
    out.resize(mark);
    if (ec)
      return fail(ec, "connection.start-ok cannot be encoded (client_properties): " + ec.message());
    return fail(errc::frame_too_large,
                "connection.start-ok is " + std::to_string(size) + " bytes with the client " +
                    "properties, over the " + std::to_string(frame_min_size) +
                    " bytes a frame may have before tuning");
  }
  ++frames_written_;
  state_ = state::tune;
  return step::more;
}

handshake::step handshake::on_tune(const connection_tune& tune, byte_buffer& out) {
  channel_max_ =
      static_cast<std::uint16_t>(negotiate_limit(params_.channel_max, tune.channel_max, 0xFFFF));
  frame_max_ = negotiate_limit(params_.frame_max, tune.frame_max, 0);
  if (frame_max_ != 0 && frame_max_ < frame_min_size) frame_max_ = frame_min_size;
  // Heartbeats: the client's explicit 0 turns them off; otherwise the lower
  // non-zero interval wins.
  if (params_.heartbeat == 0)
    heartbeat_ = 0;
  else
    heartbeat_ = static_cast<std::uint16_t>(negotiate_limit(params_.heartbeat, tune.heartbeat, 0));
  connection_tune_ok ok;
  ok.channel_max = channel_max_;
  ok.frame_max = frame_max_;
  ok.heartbeat = heartbeat_;
  put(out, ok);
  connection_open open;
  open.virtual_host = params_.vhost;
  put(out, open);
  state_ = state::opening;
  return step::more;
}

}  // namespace warren::detail
