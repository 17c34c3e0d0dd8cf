#include "tools/warren/json.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>

namespace warren::cli {

const char* json_value::kind() const noexcept {
  static constexpr const char* names[] = {"null", "boolean", "number", "string", "array", "object"};
  return names[index()];
}

const json_value* json_value::find(std::string_view name) const noexcept {
  const auto* o = std::get_if<json_object>(this);
  if (o == nullptr) return nullptr;
  for (const auto& m : *o)
    if (m.name == name) return &m.value;
  return nullptr;
}

json_error::json_error(std::size_t line, std::size_t column, const std::string& reason)
    : std::runtime_error("line " + std::to_string(line) + ", column " + std::to_string(column) +
                         ": " + reason),
      line_(line),
      column_(column) {}

std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

namespace {

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class parser {
 public:
  explicit parser(std::string_view text) : s_(text) {}

  json_value parse_document() {
    skip_space();
    json_value v = parse_value(0);
    skip_space();
    if (i_ != s_.size()) fail("unexpected " + describe_here() + " after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& reason) const { fail_at(i_, reason); }

  [[noreturn]] void fail_at(std::size_t at, const std::string& reason) const {
    std::size_t line = 1, column = 1;
    for (std::size_t k = 0; k < at && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(s_[k]) & 0xC0) != 0x80) {
        ++column;  // count characters, not UTF-8 continuation bytes
      }
    }
    throw json_error(line, column, reason);
  }

  std::string describe_here() const {
    if (i_ >= s_.size()) return "end of input";
    const unsigned char c = static_cast<unsigned char>(s_[i_]);
    if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
    return buf;
  }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  json_value parse_value(int depth) {
    if (i_ >= s_.size()) fail("expected a JSON value, found end of input");
    switch (s_[i_]) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return json_value(parse_string());
      case 't': literal("true"); return json_value(true);
      case 'f': literal("false"); return json_value(false);
      case 'n': literal("null"); return json_value(nullptr);
      default:
        if (s_[i_] == '-' || (s_[i_] >= '0' && s_[i_] <= '9')) return json_value(parse_number());
        fail("expected a JSON value, found " + describe_here());
    }
  }

  void literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) fail("expected a JSON value, found " + describe_here());
    i_ += word.size();
    // "truex" is not "true" followed by garbage we could report better later.
    if (i_ < s_.size() && std::isalnum(static_cast<unsigned char>(s_[i_])))
      fail("unexpected " + describe_here() + " after '" + std::string(word) + "'");
  }

  void enter(int depth) const {
    if (depth >= max_json_depth)
      fail("arrays and objects nested deeper than " + std::to_string(max_json_depth));
  }

  json_value parse_object(int depth) {
    enter(depth);
    ++i_;  // '{'
    json_object members;
    skip_space();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return json_value(std::move(members));
    }
    for (;;) {
      skip_space();
      if (i_ >= s_.size() || s_[i_] != '"')
        fail("expected a member name (a string) in an object, found " + describe_here());
      const std::size_t name_at = i_;
      std::string name = parse_string();
      for (const auto& m : members)
        if (m.name == name) fail_at(name_at, "duplicate member name \"" + name + "\"");
      skip_space();
      if (i_ >= s_.size() || s_[i_] != ':')
        fail("expected ':' after a member name, found " + describe_here());
      ++i_;
      skip_space();
      json_value v = parse_value(depth + 1);
      members.push_back({std::move(name), std::move(v)});
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        skip_space();
        if (i_ < s_.size() && s_[i_] == '}') fail("trailing ',' before '}'");
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return json_value(std::move(members));
      }
      fail("expected ',' or '}' in an object, found " + describe_here());
    }
  }

  json_value parse_array(int depth) {
    enter(depth);
    ++i_;  // '['
    json_array items;
    skip_space();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return json_value(std::move(items));
    }
    for (;;) {
      skip_space();
      items.push_back(parse_value(depth + 1));
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        skip_space();
        if (i_ < s_.size() && s_[i_] == ']') fail("trailing ',' before ']'");
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return json_value(std::move(items));
      }
      fail("expected ',' or ']' in an array, found " + describe_here());
    }
  }

  json_number parse_number() {
    const std::size_t start = i_;
    const auto digit = [&] { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; };
    if (s_[i_] == '-') ++i_;
    if (!digit()) fail("expected a digit in a number, found " + describe_here());
    if (s_[i_] == '0') {
      ++i_;
      if (digit()) fail_at(start, "a number must not have a leading zero");
    } else {
      while (digit()) ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digit()) fail("expected a digit after '.' in a number, found " + describe_here());
      while (digit()) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digit()) fail("expected a digit in a number's exponent, found " + describe_here());
      while (digit()) ++i_;
    }
    return json_number{std::string(s_.substr(start, i_ - start))};
  }

  unsigned hex4() {
    unsigned v = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
      if (i_ >= s_.size()) fail("unterminated \\u escape");
      const char c = s_[i_];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<unsigned>(c - 'A' + 10);
      else
        fail("expected 4 hex digits after \\u, found " + describe_here());
    }
    return v;
  }

  std::string parse_string() {
    ++i_;  // '"'
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) fail("unescaped control character (" + describe_here() + ") in a string");
      if (c != '\\') {
        const std::size_t n = utf8_sequence(s_, i_);
        if (n == 0) fail("invalid UTF-8 (" + describe_here() + ") in a string");
        out.append(s_.substr(i_, n));
        i_ += n;
        continue;
      }
      const std::size_t escape_at = i_;
      ++i_;
      if (i_ >= s_.size()) fail("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          const unsigned u = hex4();
          if (u >= 0xD800 && u <= 0xDBFF) {
            if (s_.substr(i_, 2) != "\\u") fail_at(escape_at, "unpaired high surrogate escape");
            i_ += 2;
            const unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail_at(escape_at, "unpaired high surrogate escape");
            append_utf8(out, 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00));
          } else if (u >= 0xDC80 && u <= 0xDCFF) {
            out.push_back(static_cast<char>(u - 0xDC00));  // an escaped raw byte
          } else if (u >= 0xDC00 && u <= 0xDFFF) {
            fail_at(escape_at, "unpaired low surrogate escape");
          } else {
            append_utf8(out, u);
          }
          break;
        }
        default: i_ = escape_at; fail("invalid escape sequence in a string");
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

template <class T>
bool read_integer(const json_number& n, T& out) noexcept {
  const std::string& t = n.text;
  if (t.empty() || t.find_first_of(".eE") != std::string::npos) return false;
  if (t.size() > 1 && (t[0] == '0' || (t[0] == '-' && t[1] == '0' && t.size() > 2))) return false;
  const char* end = t.data() + t.size();
  auto [p, ec] = std::from_chars(t.data(), end, out);
  return ec == std::errc() && p == end;
}

template <class T>
bool read_floating(const json_number& n, T& out) noexcept {
  // from_chars is laxer than JSON ("inf", "1.", ".5"); check the grammar first.
  const std::string& t = n.text;
  if (!is_json_number(t)) return false;
  const char* end = t.data() + t.size();
  auto [p, ec] = std::from_chars(t.data(), end, out, std::chars_format::general);
  return ec == std::errc() && p == end && std::isfinite(out);
}

template <class T>
json_number print_number(T v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;  // 64 bytes hold any int64, uint64, float or double
  return json_number{std::string(buf, p)};
}

}  // namespace

json_value parse_json(std::string_view text) { return parser(text).parse_document(); }

void write_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out += "\\udc";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
        ++i;
      } else if (const auto c1 = static_cast<unsigned char>(s[i + 1]);
                 n == 2 && c == 0xC2 && c1 < 0xA0) {
        // A C1 control (U+0080..U+009F): some terminals obey it even as UTF-8.
        out += "\\u00";
        out.push_back(hex[c1 >> 4]);
        out.push_back(hex[c1 & 0xF]);
        i += 2;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

void write_json(std::string& out, const json_value& v) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::nullptr_t>) {
          out += "null";
        } else if constexpr (std::is_same_v<T, bool>) {
          out += x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, json_number>) {
          out += x.text;
        } else if constexpr (std::is_same_v<T, std::string>) {
          write_json_string(out, x);
        } else if constexpr (std::is_same_v<T, json_array>) {
          out.push_back('[');
          for (std::size_t k = 0; k < x.size(); ++k) {
            if (k != 0) out.push_back(',');
            write_json(out, x[k]);
          }
          out.push_back(']');
        } else {
          out.push_back('{');
          for (std::size_t k = 0; k < x.size(); ++k) {
            if (k != 0) out.push_back(',');
            write_json_string(out, x[k].name);
            out.push_back(':');
            write_json(out, x[k].value);
          }
          out.push_back('}');
        }
      },
      static_cast<const json_variant&>(v));
}

std::string to_json(const json_value& v) {
  std::string out;
  write_json(out, v);
  return out;
}

json_number json_int(std::int64_t v) { return print_number(v); }
json_number json_uint(std::uint64_t v) { return print_number(v); }
json_number json_double(double v) { return print_number(v); }
json_number json_float(float v) { return print_number(v); }

bool read_int(const json_number& n, std::int64_t& out) noexcept { return read_integer(n, out); }
bool read_uint(const json_number& n, std::uint64_t& out) noexcept { return read_integer(n, out); }
bool read_double(const json_number& n, double& out) noexcept { return read_floating(n, out); }
bool read_float(const json_number& n, float& out) noexcept { return read_floating(n, out); }

bool is_json_number(std::string_view t) noexcept {
  std::size_t i = 0;
  const auto digit = [&] { return i < t.size() && t[i] >= '0' && t[i] <= '9'; };
  if (i < t.size() && t[i] == '-') ++i;
  if (!digit()) return false;
  if (t[i] == '0') {
    ++i;
  } else {
    while (digit()) ++i;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digit()) return false;
    while (digit()) ++i;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digit()) return false;
    while (digit()) ++i;
  }
  return i == t.size();
}

bool is_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace warren::cli
