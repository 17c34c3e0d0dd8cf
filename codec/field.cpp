#include "warren/codec/field.hpp"

#include <type_traits>

namespace warren {

const field_value* field_table::find(std::string_view name) const noexcept {
  for (const auto& e : entries)
    if (e.name == name) return &e.value;
  return nullptr;
}

field_value* field_table::find(std::string_view name) noexcept {
  for (auto& e : entries)
    if (e.name == name) return &e.value;
  return nullptr;
}

field_table& field_table::set(std::string name, field_value value) {
  if (field_value* v = find(name))
    *v = std::move(value);
  else
    entries.push_back({std::move(name), std::move(value)});
  return *this;
}

field_table& field_table::add(std::string name, field_value value) {
  entries.push_back({std::move(name), std::move(value)});
  return *this;
}

char field_value::type_letter() const noexcept {
  static constexpr char letters[] = {'V', 't', 'b', 'B', 's', 'u', 'I', 'i', 'l',
                                     'f', 'd', 'D', 'S', 'x', 'T', 'A', 'F'};
  static_assert(sizeof(letters) == std::variant_size_v<field_variant>);
  return letters[index()];
}

namespace {

// Writes a u32 length placeholder, runs body, then patches in the length.
template <class F>
void length_prefixed(writer& w, F&& body) {
  std::size_t at = w.size();
  w.u32(0);
  body();
  std::size_t n = w.size() - at - 4;
  if (n > 0xFFFFFFFFu) {
    w.fail(errc::value_too_large);
    return;
  }
  w.patch_u32(at, static_cast<std::uint32_t>(n));
}

std::size_t value_size(const field_value& v);

std::size_t table_body_size(const field_table& t) {
  std::size_t n = 0;
  for (const auto& e : t.entries) n += 1 + e.name.size() + value_size(e.value);
  return n;
}

std::size_t value_size(const field_value& v) {
  return 1 + std::visit(
                 [](const auto& x) -> std::size_t {
                   using T = std::decay_t<decltype(x)>;
                   if constexpr (std::is_same_v<T, void_value>)
                     return 0;
                   else if constexpr (std::is_same_v<T, bool>)
                     return 1;
                   else if constexpr (std::is_arithmetic_v<T>)
                     return sizeof(T);
                   else if constexpr (std::is_same_v<T, decimal>)
                     return 5;
                   else if constexpr (std::is_same_v<T, timestamp>)
                     return 8;
                   else if constexpr (std::is_same_v<T, std::string>)
                     return 4 + x.size();
                   else if constexpr (std::is_same_v<T, byte_array>)
                     return 4 + x.bytes.size();
                   else if constexpr (std::is_same_v<T, field_array>) {
                     std::size_t n = 4;
                     for (const auto& i : x.items) n += value_size(i);
                     return n;
                   } else
                     return 4 + table_body_size(x);
                 },
                 v.variant());
}

}  // namespace

std::size_t encoded_size(const field_table& t) { return 4 + table_body_size(t); }

void encode_value(writer& w, const field_value& v) {
  w.u8(static_cast<std::uint8_t>(v.type_letter()));
  std::visit(
      [&w](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, void_value>) {
        } else if constexpr (std::is_same_v<T, bool>)
          w.u8(x ? 1 : 0);
        else if constexpr (std::is_same_v<T, std::int8_t>)
          w.i8(x);
        else if constexpr (std::is_same_v<T, std::uint8_t>)
          w.u8(x);
        else if constexpr (std::is_same_v<T, std::int16_t>)
          w.i16(x);
        else if constexpr (std::is_same_v<T, std::uint16_t>)
          w.u16(x);
        else if constexpr (std::is_same_v<T, std::int32_t>)
          w.i32(x);
        else if constexpr (std::is_same_v<T, std::uint32_t>)
          w.u32(x);
        else if constexpr (std::is_same_v<T, std::int64_t>)
          w.i64(x);
        else if constexpr (std::is_same_v<T, float>)
          w.f32(x);
        else if constexpr (std::is_same_v<T, double>)
          w.f64(x);
        else if constexpr (std::is_same_v<T, decimal>) {
          w.u8(x.scale);
          w.u32(x.value);
        } else if constexpr (std::is_same_v<T, timestamp>)
          w.u64(x.seconds);
        else if constexpr (std::is_same_v<T, std::string>)
          w.longstr(x);
        else if constexpr (std::is_same_v<T, byte_array>)
          w.longstr(x.bytes);
        else if constexpr (std::is_same_v<T, field_array>)
          encode_array(w, x);
        else
          encode_table(w, x);
      },
      v.variant());
}

void encode_table(writer& w, const field_table& t) {
  length_prefixed(w, [&] {
    for (const auto& e : t.entries) {
      w.shortstr(e.name);
      encode_value(w, e.value);
    }
  });
}

void encode_array(writer& w, const field_array& a) {
  length_prefixed(w, [&] {
    for (const auto& v : a.items) encode_value(w, v);
  });
}

namespace {

// The alternative T of `out`, kept (with its storage) when `out` already
// holds one: decoding into a table decoded before reuses its strings and
// vectors, so a message's headers cost no allocation once warm.
template <class T>
T& reuse(field_value& out) {
  if (auto* p = std::get_if<T>(&out.variant())) return *p;
  return out.variant().template emplace<T>();
}

void decode_value(reader& r, char letter, field_value& out, int depth) {
  switch (letter) {
    case 't': out = r.u8() != 0; break;
    case 'b': out = r.i8(); break;
    case 'B': out = r.u8(); break;
    case 's': out = r.i16(); break;
    case 'u': out = r.u16(); break;
    case 'I': out = r.i32(); break;
    case 'i': out = r.u32(); break;
    case 'l':
    case 'L': out = r.i64(); break;
    case 'f': out = r.f32(); break;
    case 'd': out = r.f64(); break;
    case 'D': {
      decimal d;
      d.scale = r.u8();
      d.value = r.u32();
      out = d;
      break;
    }
    case 'S': r.longstr_into(reuse<std::string>(out)); break;
    case 'x': r.longstr_into(reuse<byte_array>(out).bytes); break;
    case 'T': out = timestamp{r.u64()}; break;
    case 'V': out = void_value{}; break;
    case 'A': decode_array(r, reuse<field_array>(out), depth + 1); break;
    case 'F': decode_table(r, reuse<field_table>(out), depth + 1); break;
    default: r.fail(errc::unknown_field_type);
  }
}

// Narrows r to the length-prefixed body that follows, advancing r past it.
bool enter(reader& r, reader& body, int depth) {
  if (depth >= max_field_depth) {
    r.fail(errc::nesting_too_deep);
    return false;
  }
  std::uint32_t n = r.u32();
  bytes_view b = r.bytes(n);
  if (!r.ok()) return false;
  body = reader(b);
  return true;
}

}  // namespace

void decode_table(reader& r, field_table& out, int depth) {
  reader body;
  if (!enter(r, body, depth)) {
    out.entries.clear();
    return;
  }
  // Entries are decoded over the ones `out` already has, then the surplus is
  // dropped.
  std::size_t n = 0;
  while (!body.empty()) {
    if (n == out.entries.size()) out.entries.emplace_back();
    field_entry& e = out.entries[n];
    body.shortstr_into(e.name);
    char letter = static_cast<char>(body.u8());
    if (!body.ok()) break;
    decode_value(body, letter, e.value, depth);
    if (!body.ok()) break;
    ++n;
  }
  out.entries.resize(n);
  if (!body.ok()) r.fail(body.error());
}

void decode_array(reader& r, field_array& out, int depth) {
  reader body;
  if (!enter(r, body, depth)) {
    out.items.clear();
    return;
  }
  std::size_t n = 0;
  while (!body.empty()) {
    char letter = static_cast<char>(body.u8());
    if (n == out.items.size()) out.items.emplace_back();
    decode_value(body, letter, out.items[n], depth);
    if (!body.ok()) break;
    ++n;
  }
  out.items.resize(n);
  if (!body.ok()) r.fail(body.error());
}

}  // namespace warren
