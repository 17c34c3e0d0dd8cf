// A small, strict JSON (RFC 8259) value, parser and printer for the warren
// command: enough for typed header values and one-object-per-line output.
//
// Objects keep their members in the order written; the parser rejects
// duplicate names. Numbers keep the literal as written, so a 64-bit integer or
// a float is converted once, at full precision, by whoever knows its type.
//
// Strings are UTF-8. A byte string that is not valid UTF-8 is printed with
// each offending byte as an escaped lone low surrogate \udc80..\udcff (the
// "surrogateescape" convention), and the parser turns such an escape back into
// that byte, so any byte string survives a print/parse round trip. Any other
// lone surrogate is an error.
//
// The printer escapes every control character, DEL and the C1 controls
// U+0080..U+009F included, so JSON output is safe to show on a terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace warren::cli {

struct json_value;
struct json_member;

using json_array = std::vector<json_value>;
using json_object = std::vector<json_member>;

// A number as written in the JSON text (or as produced by a printer below).
struct json_number {
  std::string text;
  bool operator==(const json_number&) const = default;
};

using json_variant =
    std::variant<std::nullptr_t, bool, json_number, std::string, json_array, json_object>;

struct json_value : json_variant {
  using json_variant::json_variant;
  json_value() : json_variant(nullptr) {}
  json_value(const char* s) : json_variant(std::string(s)) {}
  json_value(std::string_view s) : json_variant(std::string(s)) {}

  bool is_null() const noexcept { return std::holds_alternative<std::nullptr_t>(*this); }
  bool is_bool() const noexcept { return std::holds_alternative<bool>(*this); }
  bool is_number() const noexcept { return std::holds_alternative<json_number>(*this); }
  bool is_string() const noexcept { return std::holds_alternative<std::string>(*this); }
  bool is_array() const noexcept { return std::holds_alternative<json_array>(*this); }
  bool is_object() const noexcept { return std::holds_alternative<json_object>(*this); }
  // "null", "boolean", "number", "string", "array" or "object".
  const char* kind() const noexcept;

  // The member named `name` of an object; nullptr if absent or not an object.
  const json_value* find(std::string_view name) const noexcept;
  bool operator==(const json_value& o) const {
    return static_cast<const json_variant&>(*this) == static_cast<const json_variant&>(o);
  }
};

struct json_member {
  std::string name;
  json_value value;
  bool operator==(const json_member&) const = default;
};

// Thrown by parse_json: `what()` reads "line L, column C: reason".
class json_error : public std::runtime_error {
 public:
  json_error(std::size_t line, std::size_t column, const std::string& reason);
  std::size_t line() const noexcept { return line_; }
  std::size_t column() const noexcept { return column_; }

 private:
  std::size_t line_;
  std::size_t column_;
};

// Deepest nesting of arrays and objects parse_json accepts.
inline constexpr int max_json_depth = 200;

// Parses exactly one JSON value, with optional whitespace around it.
json_value parse_json(std::string_view text);

// Compact JSON text (no whitespace between tokens).
std::string to_json(const json_value& v);
void write_json(std::string& out, const json_value& v);
// Appends `s` as a JSON string literal, quotes included.
void write_json_string(std::string& out, std::string_view s);

// Number helpers. The printers give the shortest text that reads back as the
// same value; the readers accept only what fits the type exactly (integers:
// no fraction or exponent; floating point: any JSON number, rounded once to
// the nearest value of that type, overflow is an error).
json_number json_int(std::int64_t v);
json_number json_uint(std::uint64_t v);
json_number json_double(double v);  // finite values only
json_number json_float(float v);    // finite values only
bool read_int(const json_number& n, std::int64_t& out) noexcept;
bool read_uint(const json_number& n, std::uint64_t& out) noexcept;
bool read_double(const json_number& n, double& out) noexcept;
bool read_float(const json_number& n, float& out) noexcept;

// Whether `t` is a number as JSON writes it.
bool is_json_number(std::string_view t) noexcept;

// Whether `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_utf8(std::string_view s) noexcept;
// Length of the well-formed UTF-8 sequence at s[i], or 0 if there is none.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept;

}  // namespace warren::cli
