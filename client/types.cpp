#include "warren/client/types.hpp"

#include "warren/client/log.hpp"

#include "warren/proto/methods.hpp"

namespace warren {

std::string error_info::describe() const {
  std::string s;
  if (const std::uint16_t rc = reply_code(); rc != 0) {
    s = std::to_string(rc) + " ";
    // RabbitMQ's reply text already starts with the upper-case code name.
    s += text.empty() ? code.message() : text;
  } else {
    s = text.empty() ? code.message() : text;
  }
  if (class_id != 0 || method_id != 0) s += " (" + method_name(class_id, method_id) + ")";
  return s;
}

error::error(error_info info) : std::system_error(info.code, info.describe()), info_(std::move(info)) {}

}  // namespace warren

namespace warren {

std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warning: return "warning";
    case log_level::error: return "error";
  }
  return "?";
}

connection_counters& connection_counters::operator+=(const connection_counters& o) noexcept {
  frames_in += o.frames_in;
  frames_out += o.frames_out;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  publishes += o.publishes;
  acks += o.acks;
  nacks += o.nacks;
  returns += o.returns;
  deliveries += o.deliveries;
  heartbeats_sent += o.heartbeats_sent;
  heartbeats_missed += o.heartbeats_missed;
  recoveries += o.recoveries;
  return *this;
}

namespace detail {

void emit(const log_sink& sink, log_level level, std::string_view text) noexcept {
  if (!sink) return;
  try {
    sink(level, text);
  } catch (...) {
  }
}

std::string escaped(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

}  // namespace detail
}  // namespace warren
