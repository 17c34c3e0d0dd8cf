// What the client's parts share to report to connect_options::log. Private to
// the library.
#pragma once

#include <string>
#include <string_view>

#include "warren/client/types.hpp"

namespace warren::detail {

// Calls `sink` when it is set; what it throws is dropped (a log line must
// never fail the connection).
void emit(const log_sink& sink, log_level level, std::string_view text) noexcept;

// Text from the broker made fit for one log line: control characters
// (C0 and DEL) and backslashes escaped as \xHH and \\.
std::string escaped(std::string_view text);

}  // namespace warren::detail
