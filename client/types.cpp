#include "warren/client/types.hpp"

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
