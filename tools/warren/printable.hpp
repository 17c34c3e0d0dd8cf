// Text from the broker (reply texts, message bodies, names it chose) made safe
// to write to a terminal, and the one-line diagnostics the command prints.
//
// A broker can put newlines, ESC sequences and other control bytes in any of
// that text, to forge output lines or drive the terminal. printable() keeps
// printable ASCII and well-formed UTF-8; it writes \n, \r, \t and \\ as those
// escapes, any other control character (C0, DEL, and C1 U+0080..U+009F) and
// every byte that is not part of well-formed UTF-8 as \xHH, so its result is
// always one line that names every byte it was given.
//
// Header-only so that the command and tests/tools share it without another
// source in tools/meson.build.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "tools/redact.hpp"
#include "tools/warren/json.hpp"

namespace warren::cli {

inline std::string printable(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  const auto escape = [&out](std::string_view bytes) {
    for (const char b : bytes) {
      const auto c = static_cast<unsigned char>(b);
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  };
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence(s, i);
      if (n == 0) {
        escape(s.substr(i, 1));
        ++i;
        continue;
      }
      // C1 controls are commands to some terminals even when encoded as UTF-8.
      const bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;
      if (c1)
        escape(s.substr(i, n));
      else
        out.append(s.substr(i, n));
      i += n;
      continue;
    }
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F)
          escape(s.substr(i, 1));
        else
          out.push_back(static_cast<char>(c));
    }
    ++i;
  }
  return out;
}

// "warren COMMAND: TEXT\n" with TEXT made printable and any password in it
// hidden. Every diagnostic goes through here: error texts carry reply texts
// and names from the broker, and usage errors what was typed.
inline std::string diagnostic(std::string_view command, std::string_view text) {
  std::string line = "warren ";
  line += printable(command);
  line += ": ";
  line += printable(tools::redact_passwords(text));
  line += '\n';
  return line;
}

}  // namespace warren::cli
