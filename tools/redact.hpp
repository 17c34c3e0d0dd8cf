// Passwords kept out of what the tools print. The library's own errors never
// carry one, but a diagnostic can echo what was typed ("unexpected argument
// 'amqp://user:secret@host/'"), so every line the warren command and
// warren-perf write to stderr passes through here.
//
// Header-only so that both programs and tests/tools share it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace warren::tools {

// `text` with the password of every "scheme://user:password@host" in it
// written as "***", as to_uri(params, true) writes it. Only the authority is
// looked at (up to the first '/', '?', '#' or white space after "://");
// anything else is left as it is.
inline std::string redact_passwords(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t done = 0;
  for (std::size_t at = text.find("://"); at != std::string_view::npos;
       at = text.find("://", at + 3)) {
    const std::size_t start = at + 3;
    std::size_t end = text.find_first_of("/?# \t\n'\"", start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view authority = text.substr(start, end - start);
    const std::size_t at_sign = authority.rfind('@');
    if (at_sign == std::string_view::npos) continue;
    const std::size_t colon = authority.substr(0, at_sign).find(':');
    if (colon == std::string_view::npos) continue;
    out.append(text.substr(done, start + colon + 1 - done));
    out += "***";
    done = start + at_sign;
  }
  out.append(text.substr(done));
  return out;
}

}  // namespace warren::tools
