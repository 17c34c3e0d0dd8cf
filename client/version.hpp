// The library's version, as advertised to the broker in client-properties.
#pragma once

#include <string_view>

namespace warren {
inline constexpr std::string_view version_string = "0.1.0";
}  // namespace warren
