// Small helpers shared by the codec and proto tests: byte vectors written as
// literals, and a hex rendering so a mismatch shows where the bytes differ.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "warren/codec/bytes.hpp"

namespace warren::test {

using byte_vec = std::vector<std::uint8_t>;

inline bytes_view view(const byte_vec& v) noexcept { return {v.data(), v.size()}; }

inline byte_vec to_vec(bytes_view b) { return byte_vec(b.begin(), b.end()); }

// Space-separated lowercase hex, 16 bytes to a line.
inline std::string hex(bytes_view b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i != 0) s += (i % 16 == 0) ? '\n' : ' ';
    s += digits[b[i] >> 4];
    s += digits[b[i] & 15];
  }
  return s;
}
inline std::string hex(const byte_vec& v) { return hex(view(v)); }
inline std::string hex(const byte_buffer& b) { return hex(b.view()); }

inline byte_vec concat(std::initializer_list<byte_vec> parts) {
  byte_vec out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace warren::test
