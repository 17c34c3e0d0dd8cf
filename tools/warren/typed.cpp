#include "tools/warren/typed.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>

namespace warren::cli {

namespace {

constexpr const char* names[] = {"void",   "bool",   "int8",      "uint8", "int16",  "uint16",
                                 "int32",  "uint32", "int64",     "float", "double", "decimal",
                                 "string", "bytes",  "timestamp", "array", "table"};
static_assert(std::size(names) == std::variant_size_v<field_variant>);

// The variant index for a type name, or -1.
int type_index(std::string_view name) noexcept {
  for (std::size_t k = 0; k < std::size(names); ++k)
    if (name == names[k]) return static_cast<int>(k);
  return -1;
}

[[noreturn]] void fail(const std::string& where, const std::string& why) {
  throw value_error(where.empty() ? why : where + ": " + why);
}

std::string member_path(const std::string& where, std::string_view name) {
  return where.empty() ? std::string(name) : where + "." + std::string(name);
}

std::string quoted(std::string_view s) {
  std::string out;
  write_json_string(out, s);
  return out;
}

// "a" or "an", for a type or JSON kind name.
std::string with_article(std::string_view word) {
  const bool vowel =
      !word.empty() && std::string_view("aeio").find(word[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + std::string(word);
}

// An integer literal: an optional '-', then digits without a leading zero.
bool integer_literal(std::string_view t) noexcept {
  std::size_t i = t.starts_with('-') ? 1 : 0;
  if (i == t.size()) return false;
  if (t[i] == '0' && t.size() > i + 1) return false;
  for (; i < t.size(); ++i)
    if (t[i] < '0' || t[i] > '9') return false;
  return true;
}

template <class F>
using bits_t = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>;

template <class F>
bits_t<F> bits(F f) {
  bits_t<F> b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

template <class F>
bool is_default_nan(F f) {
  return bits(f) == bits(std::numeric_limits<F>::quiet_NaN());
}

template <class F>
json_value floating_json(F f) {
  if (std::isfinite(f)) {
    if constexpr (std::is_same_v<F, float>)
      return json_value(json_float(f));
    else
      return json_value(json_double(f));
  }
  if (std::isinf(f)) return json_value(f > 0 ? "Infinity" : "-Infinity");
  if (is_default_nan(f)) return json_value("NaN");
  char buf[40];
  std::snprintf(buf, sizeof buf, "NaN:0x%0*llx", static_cast<int>(sizeof(F) * 2),
                static_cast<unsigned long long>(bits(f)));
  return json_value(buf);
}

// NaN, Infinity, -Infinity or NaN:0x<bits>; false for anything else.
template <class F>
bool special_floating(std::string_view s, F& out) {
  if (s == "Infinity") {
    out = std::numeric_limits<F>::infinity();
    return true;
  }
  if (s == "-Infinity") {
    out = -std::numeric_limits<F>::infinity();
    return true;
  }
  if (s == "NaN") {
    out = std::numeric_limits<F>::quiet_NaN();
    return true;
  }
  if (!s.starts_with("NaN:0x") || s.size() != 6 + sizeof(F) * 2) return false;
  bits_t<F> b = 0;
  const char* begin = s.data() + 6;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(begin, end, b, 16);
  if (ec != std::errc() || p != end) return false;
  F f;
  std::memcpy(&f, &b, sizeof f);
  if (!std::isnan(f)) return false;
  out = f;
  return true;
}

template <class F>
F floating_from(const json_value& v, const std::string& where, const char* type) {
  F out{};
  if (const auto* n = std::get_if<json_number>(&v); n && is_json_number(n->text)) {
    bool ok;
    if constexpr (std::is_same_v<F, float>)
      ok = read_float(*n, out);
    else
      ok = read_double(*n, out);
    if (!ok) fail(where, std::string(type) + " value " + n->text + " is out of range");
    return out;
  }
  if (const auto* s = std::get_if<std::string>(&v); s && special_floating(*s, out)) return out;
  std::string found = with_article(v.kind());
  if (const auto* s = std::get_if<std::string>(&v)) found = quoted(*s);
  if (const auto* n = std::get_if<json_number>(&v)) found = quoted(n->text);
  fail(where, with_article(type) +
                  " value must be a number or \"NaN\", \"Infinity\", \"-Infinity\", "
                  "\"NaN:0x<bits>\"; found " +
                  found);
}

template <class I>
I integer_from(const json_value& v, const std::string& where, const char* type) {
  const auto* n = std::get_if<json_number>(&v);
  if (n == nullptr)
    fail(where, with_article(type) + " value must be an integer, found " + with_article(v.kind()));
  const std::string range = "(" + std::to_string(std::numeric_limits<I>::min()) + ".." +
                            std::to_string(std::numeric_limits<I>::max()) + ")";
  if (!integer_literal(n->text))
    fail(where, with_article(type) + " value must be an integer, found " + quoted(n->text));
  if constexpr (std::is_signed_v<I>) {
    std::int64_t x;
    if (!read_int(*n, x) || x < std::numeric_limits<I>::min() || x > std::numeric_limits<I>::max())
      fail(where, std::string(type) + " value " + n->text + " is out of range " + range);
    return static_cast<I>(x);
  } else {
    std::uint64_t x;
    if (!read_uint(*n, x) || x > std::numeric_limits<I>::max())
      fail(where, std::string(type) + " value " + n->text + " is out of range " + range);
    return static_cast<I>(x);
  }
}

// Integer text of a TYPE:VALUE argument, as strict as JSON's integers.
template <class I>
I integer_text(std::string_view text, const std::string& where, const char* type) {
  json_number n{std::string(text)};
  return integer_from<I>(json_value(n), where, type);
}

const json_value& member(const json_value& obj, std::string_view name, const std::string& where) {
  const json_value* v = obj.find(name);
  if (v == nullptr) fail(where, "missing \"" + std::string(name) + "\"");
  return *v;
}

void only_members(const json_object& obj, std::initializer_list<std::string_view> allowed,
                  const std::string& where) {
  for (const auto& m : obj) {
    bool ok = false;
    for (auto a : allowed) ok = ok || m.name == a;
    if (!ok) fail(where, "unexpected member " + quoted(m.name));
  }
}

decimal decimal_from(const json_value& v, const std::string& where) {
  const auto* obj = std::get_if<json_object>(&v);
  if (obj == nullptr)
    fail(where,
         "a decimal value must be {\"scale\": S, \"value\": N}, found " + with_article(v.kind()));
  only_members(*obj, {"scale", "value"}, where);
  decimal d;
  d.scale = integer_from<std::uint8_t>(member(v, "scale", where), where + ".scale", "scale");
  d.value = integer_from<std::uint32_t>(member(v, "value", where), where + ".value", "decimal");
  return d;
}

std::string string_from(const json_value& v, const std::string& where, const char* type) {
  const auto* s = std::get_if<std::string>(&v);
  if (s == nullptr)
    fail(where, with_article(type) + " value must be a string, found " + with_article(v.kind()));
  return *s;
}

std::string bytes_from_base64(std::string_view text, const std::string& where) {
  std::string out;
  if (!base64_decode(text, out))
    fail(where, "a bytes value must be base64 (standard alphabet, '=' padding): " + quoted(text));
  return out;
}

// Decimal digits with an optional point: "12.50" -> scale 2, value 1250.
decimal decimal_text(std::string_view text, const std::string& where) {
  const std::size_t point = text.find('.');
  std::string digits(text.substr(0, point));
  std::size_t scale = 0;
  if (point != std::string_view::npos) {
    std::string_view frac = text.substr(point + 1);
    digits += frac;
    scale = frac.size();
    if (frac.empty()) digits.clear();  // "12." is malformed
  }
  bool ok = !digits.empty() && (point != 0);
  for (char c : digits) ok = ok && c >= '0' && c <= '9';
  if (!ok)
    fail(where,
         "a decimal value must be digits with an optional point (12.50), not " + quoted(text));
  if (scale > 255) fail(where, "a decimal value has at most 255 digits after the point");
  std::uint64_t value = 0;
  for (char c : digits) {
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 0xFFFFFFFFu)
      fail(where, "decimal value " + std::string(text) +
                      " has more significant digits than fit in 32 bits (4294967295)");
  }
  return decimal{static_cast<std::uint8_t>(scale), static_cast<std::uint32_t>(value)};
}

template <class F>
F floating_text(std::string_view text, const std::string& where, const char* type) {
  F out{};
  if (special_floating(text, out)) return out;
  json_number n{std::string(text)};
  return floating_from<F>(json_value(n), where, type);
}

}  // namespace

const char* type_name(const field_value& v) noexcept { return names[v.index()]; }

std::string_view type_names() noexcept {
  return "bool, int8, uint8, int16, uint16, int32, uint32, int64, float, double, decimal, "
         "string, bytes, timestamp, table, array, void";
}

json_value typed_json(const field_value& v) {
  json_value value = std::visit(
      [](const auto& x) -> json_value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, void_value>)
          return json_value(nullptr);
        else if constexpr (std::is_same_v<T, bool>)
          return json_value(x);
        else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
          return floating_json(x);
        else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>)
          return json_value(json_int(x));
        else if constexpr (std::is_integral_v<T>)
          return json_value(json_uint(x));
        else if constexpr (std::is_same_v<T, decimal>)
          return json_value(json_object{{"scale", json_value(json_uint(x.scale))},
                                        {"value", json_value(json_uint(x.value))}});
        else if constexpr (std::is_same_v<T, std::string>)
          return json_value(x);
        else if constexpr (std::is_same_v<T, byte_array>)
          return json_value(base64_encode(x.bytes));
        else if constexpr (std::is_same_v<T, timestamp>)
          return json_value(json_uint(x.seconds));
        else if constexpr (std::is_same_v<T, field_array>) {
          json_array items;
          items.reserve(x.items.size());
          for (const auto& item : x.items) items.push_back(typed_json(item));
          return json_value(std::move(items));
        } else {
          return typed_json(x);
        }
      },
      v.variant());
  json_object obj;
  obj.push_back({"type", json_value(type_name(v))});
  obj.push_back({"value", std::move(value)});
  return json_value(std::move(obj));
}

json_value typed_json(const field_table& t) {
  json_object obj;
  obj.reserve(t.entries.size());
  for (const auto& e : t.entries) obj.push_back({e.name, typed_json(e.value)});
  return json_value(std::move(obj));
}

field_value typed_value_from_json(const json_value& j, const std::string& where) {
  const auto* obj = std::get_if<json_object>(&j);
  if (obj == nullptr)
    fail(where,
         "expected a typed value {\"type\": T, \"value\": V}, found " + with_article(j.kind()));
  only_members(*obj, {"type", "value"}, where);
  const json_value& t = member(j, "type", where);
  const auto* tname = std::get_if<std::string>(&t);
  if (tname == nullptr) fail(where, "\"type\" must be a string, found " + with_article(t.kind()));
  const int index = type_index(*tname);
  if (index < 0)
    fail(where, "unknown type " + quoted(*tname) + " (one of " + std::string(type_names()) + ")");
  const json_value* vp = j.find("value");
  static const json_value null_value;
  if (vp == nullptr) {
    if (index != 0) fail(where, "missing \"value\"");
    vp = &null_value;
  }
  const json_value& v = *vp;
  const std::string vwhere = where;
  switch (index) {
    case 0:
      if (!v.is_null()) fail(where, "a void value must be null, found " + with_article(v.kind()));
      return void_value{};
    case 1:
      if (!v.is_bool())
        fail(where, "a bool value must be true or false, found " + with_article(v.kind()));
      return std::get<bool>(v);
    case 2: return integer_from<std::int8_t>(v, vwhere, "int8");
    case 3: return integer_from<std::uint8_t>(v, vwhere, "uint8");
    case 4: return integer_from<std::int16_t>(v, vwhere, "int16");
    case 5: return integer_from<std::uint16_t>(v, vwhere, "uint16");
    case 6: return integer_from<std::int32_t>(v, vwhere, "int32");
    case 7: return integer_from<std::uint32_t>(v, vwhere, "uint32");
    case 8: return integer_from<std::int64_t>(v, vwhere, "int64");
    case 9: return floating_from<float>(v, vwhere, "float");
    case 10: return floating_from<double>(v, vwhere, "double");
    case 11: return decimal_from(v, vwhere);
    case 12: return string_from(v, vwhere, "string");
    case 13: return byte_array{bytes_from_base64(string_from(v, vwhere, "bytes"), vwhere)};
    case 14: return timestamp{integer_from<std::uint64_t>(v, vwhere, "timestamp")};
    case 15: return typed_array_from_json(v, vwhere);
    default: return typed_table_from_json(v, vwhere);
  }
}

field_table typed_table_from_json(const json_value& j, const std::string& where) {
  const auto* obj = std::get_if<json_object>(&j);
  if (obj == nullptr)
    fail(where, "a table must be a JSON object of typed values, found " + with_article(j.kind()));
  field_table t;
  t.entries.reserve(obj->size());
  for (const auto& m : *obj) {
    if (m.name.size() > 255)
      fail(member_path(where, m.name.substr(0, 20) + "..."),
           "a table entry's name is longer than 255 bytes");
    t.entries.push_back({m.name, typed_value_from_json(m.value, member_path(where, m.name))});
  }
  return t;
}

field_array typed_array_from_json(const json_value& j, const std::string& where) {
  const auto* items = std::get_if<json_array>(&j);
  if (items == nullptr)
    fail(where, "an array must be a JSON list of typed values, found " + with_article(j.kind()));
  field_array a;
  a.items.reserve(items->size());
  for (std::size_t k = 0; k < items->size(); ++k)
    a.items.push_back(typed_value_from_json((*items)[k], where + "[" + std::to_string(k) + "]"));
  return a;
}

field_table parse_typed_table(std::string_view json_text, const std::string& where) {
  json_value j;
  try {
    j = parse_json(json_text);
  } catch (const json_error& e) {
    fail(where, std::string("invalid JSON: ") + e.what());
  }
  return typed_table_from_json(j, where);
}

field_value parse_typed_text(std::string_view type, std::string_view text,
                             const std::string& where) {
  const int index = type_index(type);
  if (index < 0)
    fail(where, "unknown type " + quoted(type) + " (one of " + std::string(type_names()) + ")");
  const auto parsed_json = [&]() -> json_value {
    try {
      return parse_json(text);
    } catch (const json_error& e) {
      fail(where, std::string("invalid JSON: ") + e.what());
    }
  };
  switch (index) {
    case 0:
      if (!text.empty()) fail(where, "a void value takes no VALUE, found " + quoted(text));
      return void_value{};
    case 1:
      if (text == "true") return true;
      if (text == "false") return false;
      fail(where, "a bool value must be true or false, not " + quoted(text));
    case 2: return integer_text<std::int8_t>(text, where, "int8");
    case 3: return integer_text<std::uint8_t>(text, where, "uint8");
    case 4: return integer_text<std::int16_t>(text, where, "int16");
    case 5: return integer_text<std::uint16_t>(text, where, "uint16");
    case 6: return integer_text<std::int32_t>(text, where, "int32");
    case 7: return integer_text<std::uint32_t>(text, where, "uint32");
    case 8: return integer_text<std::int64_t>(text, where, "int64");
    case 9: return floating_text<float>(text, where, "float");
    case 10: return floating_text<double>(text, where, "double");
    case 11: return decimal_text(text, where);
    case 12: return std::string(text);
    case 13: return byte_array{bytes_from_base64(text, where)};
    case 14: return timestamp{integer_text<std::uint64_t>(text, where, "timestamp")};
    case 15: return typed_array_from_json(parsed_json(), where);
    default: return typed_table_from_json(parsed_json(), where);
  }
}

field_entry parse_typed_assignment(std::string_view arg) {
  const std::size_t eq = arg.find('=');
  if (eq == std::string_view::npos || eq == 0)
    fail("", "expected NAME=TYPE:VALUE, not " + quoted(arg));
  std::string name(arg.substr(0, eq));
  if (name.size() > 255) fail("", "a table entry's name is longer than 255 bytes");
  std::string_view rest = arg.substr(eq + 1);
  const std::size_t colon = rest.find(':');
  std::string_view type = rest.substr(0, colon);
  std::string_view text =
      colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
  if (colon == std::string_view::npos && type != "void")
    fail(name, "expected NAME=TYPE:VALUE (TYPE one of " + std::string(type_names()) + "), not " +
                   quoted(arg));
  field_value v = parse_typed_text(type, text, name);
  return field_entry{std::move(name), std::move(v)};
}

namespace {

enum class prop_kind { text, octet, time };
struct prop_desc {
  const char* name;
  prop_kind kind;
  std::optional<std::string> basic_properties::*text = nullptr;
  std::optional<std::uint8_t> basic_properties::*octet = nullptr;
};

const prop_desc props[] = {
    {"content_type", prop_kind::text, &basic_properties::content_type},
    {"content_encoding", prop_kind::text, &basic_properties::content_encoding},
    {"delivery_mode", prop_kind::octet, nullptr, &basic_properties::delivery_mode},
    {"priority", prop_kind::octet, nullptr, &basic_properties::priority},
    {"correlation_id", prop_kind::text, &basic_properties::correlation_id},
    {"reply_to", prop_kind::text, &basic_properties::reply_to},
    {"expiration", prop_kind::text, &basic_properties::expiration},
    {"message_id", prop_kind::text, &basic_properties::message_id},
    {"timestamp", prop_kind::time},
    {"type", prop_kind::text, &basic_properties::type},
    {"user_id", prop_kind::text, &basic_properties::user_id},
    {"app_id", prop_kind::text, &basic_properties::app_id},
    {"cluster_id", prop_kind::text, &basic_properties::cluster_id},
};

}  // namespace

std::string_view property_names() noexcept {
  return "content_type, content_encoding, delivery_mode, priority, correlation_id, reply_to, "
         "expiration, message_id, timestamp, type, user_id, app_id, cluster_id";
}

json_value properties_json(const basic_properties& p) {
  json_object o;
  const auto text = [&o](const char* name, const std::optional<std::string>& v) {
    if (v) o.push_back({name, json_value(*v)});
  };
  const auto octet = [&o](const char* name, const std::optional<std::uint8_t>& v) {
    if (v) o.push_back({name, json_value(json_uint(*v))});
  };
  text("content_type", p.content_type);
  text("content_encoding", p.content_encoding);
  if (p.headers) o.push_back({"headers", typed_json(*p.headers)});
  octet("delivery_mode", p.delivery_mode);
  octet("priority", p.priority);
  text("correlation_id", p.correlation_id);
  text("reply_to", p.reply_to);
  text("expiration", p.expiration);
  text("message_id", p.message_id);
  if (p.timestamp) o.push_back({"timestamp", json_value(json_uint(p.timestamp->seconds))});
  text("type", p.type);
  text("user_id", p.user_id);
  text("app_id", p.app_id);
  text("cluster_id", p.cluster_id);
  return json_value(std::move(o));
}

void set_property(basic_properties& p, std::string_view assignment) {
  const std::size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0)
    fail("", "expected --property NAME=VALUE, not " + quoted(assignment));
  std::string name(assignment.substr(0, eq));
  for (char& c : name)
    if (c == '-') c = '_';
  const std::string_view value = assignment.substr(eq + 1);
  if (name == "headers")
    fail(name, "headers are set with --header NAME=TYPE:VALUE or --headers-json");
  for (const auto& d : props) {
    if (name != d.name) continue;
    switch (d.kind) {
      case prop_kind::text:
        if (value.size() > 255) fail(name, "a property value is at most 255 bytes");
        p.*d.text = std::string(value);
        return;
      case prop_kind::octet:
        if (name == "delivery_mode" && value == "persistent")
          p.delivery_mode = 2;
        else if (name == "delivery_mode" && value == "transient")
          p.delivery_mode = 1;
        else
          p.*d.octet = integer_text<std::uint8_t>(value, name, d.name);
        return;
      case prop_kind::time:
        p.timestamp = timestamp{integer_text<std::uint64_t>(value, name, "timestamp")};
        return;
    }
  }
  fail("", "unknown property " + quoted(name) + " (one of " + std::string(property_names()) +
               "; headers have --header and --headers-json)");
}

json_value message_json(const message& m) {
  json_object o;
  o.push_back({"exchange", json_value(m.exchange)});
  o.push_back({"routing_key", json_value(m.routing_key)});
  o.push_back({"redelivered", json_value(m.redelivered)});
  o.push_back({"delivery_tag", json_value(json_uint(m.delivery_tag))});
  o.push_back({"properties", properties_json(m.properties)});
  if (is_utf8(m.body))
    o.push_back({"body", json_value(m.body)});
  else
    o.push_back({"body_base64", json_value(base64_encode(m.body))});
  return json_value(std::move(o));
}

namespace {
constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out.push_back(alphabet[n >> 18]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(alphabet[(n >> 6) & 63]);
    out.push_back(alphabet[n & 63]);
  }
  if (bytes.size() - i == 1) {
    const std::uint32_t n = at(i) << 16;
    out.push_back(alphabet[n >> 18]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out += "==";
  } else if (bytes.size() - i == 2) {
    const std::uint32_t n = (at(i) << 16) | (at(i + 1) << 8);
    out.push_back(alphabet[n >> 18]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(alphabet[(n >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

bool base64_decode(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int s[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        s[k] = 0;
        ++pad;
        continue;
      }
      if (pad != 0) return false;  // data after padding
      s[k] = sextet(c);
      if (s[k] < 0) return false;
    }
    const std::uint32_t n =
        (static_cast<std::uint32_t>(s[0]) << 18) | (static_cast<std::uint32_t>(s[1]) << 12) |
        (static_cast<std::uint32_t>(s[2]) << 6) | static_cast<std::uint32_t>(s[3]);
    out.push_back(static_cast<char>(n >> 16));
    if (pad == 2) {
      if ((n & 0xFFFF) != 0) return false;  // unused bits must be zero
      continue;
    }
    out.push_back(static_cast<char>((n >> 8) & 0xFF));
    if (pad == 1) {
      if ((n & 0xFF) != 0) return false;
      continue;
    }
    out.push_back(static_cast<char>(n & 0xFF));
  }
  return true;
}

}  // namespace warren::cli
