#include "warren/codec/field.hpp"

#include <cstring>
#include <type_traits>
#include <variant>

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

// The alternative index of T in field_variant.
template <class T, std::size_t I = 0>
constexpr std::size_t index_of() {
  if constexpr (std::is_same_v<std::variant_alternative_t<I, field_variant>, T>)
    return I;
  else
    return index_of<T, I + 1>();
}

// Unchecked access to the alternative the index says is held. The codec
// switches on index() instead of calling std::visit: with this many
// alternatives, libstdc++'s visit dispatches through a table of function
// pointers, a call per value that nothing can inline.
template <class T>
const T& held(const field_value& v) noexcept {
  return *std::get_if<T>(&v.variant());
}

// ---------------------------------------------------------------------------
// Encoding, in two passes: the exact size first (which also finds what cannot
// be encoded), then the bytes written through one pointer into room made
// once. A writer call per field would load and store the buffer's size at
// every step, and each store would stand in the way of the next load.

struct size_check {
  bool name_too_long = false;   // a table entry name over 255 bytes
  bool value_too_large = false;  // a longstr, table or array over 2^32 - 1 bytes
  bool valueless = false;        // a value an exception left without one
};

std::size_t array_body_size(const field_array& a, size_check& c) noexcept;
std::size_t table_body_size(const field_table& t, size_check& c) noexcept;

// What follows the type letter.
[[gnu::always_inline]] inline std::size_t value_body_size(const field_value& v,
                                                          size_check& c) noexcept {
  switch (v.index()) {
    case index_of<void_value>(): return 0;
    case index_of<bool>():
    case index_of<std::int8_t>():
    case index_of<std::uint8_t>(): return 1;
    case index_of<std::int16_t>():
    case index_of<std::uint16_t>(): return 2;
    case index_of<std::int32_t>():
    case index_of<std::uint32_t>():
    case index_of<float>(): return 4;
    case index_of<decimal>(): return 5;
    case index_of<std::int64_t>():
    case index_of<double>():
    case index_of<timestamp>(): return 8;
    case index_of<std::string>(): {
      const std::size_t n = held<std::string>(v).size();
      c.value_too_large |= n > 0xFFFFFFFFu;
      return 4 + n;
    }
    case index_of<byte_array>(): {
      const std::size_t n = held<byte_array>(v).bytes.size();
      c.value_too_large |= n > 0xFFFFFFFFu;
      return 4 + n;
    }
    case index_of<field_array>(): return 4 + array_body_size(held<field_array>(v), c);
    case index_of<field_table>(): return 4 + table_body_size(held<field_table>(v), c);
  }
  // valueless_by_exception (an emplace whose construction threw): room()
  // throws before anything is written, as std::visit would.
  c.valueless = true;
  return 0;
}

std::size_t table_body_size(const field_table& t, size_check& c) noexcept {
  std::size_t n = 0;
  for (const auto& e : t.entries) {
    c.name_too_long |= e.name.size() > 255;
    n += 2 + e.name.size() + value_body_size(e.value, c);
  }
  c.value_too_large |= n > 0xFFFFFFFFu;
  return n;
}

std::size_t array_body_size(const field_array& a, size_check& c) noexcept {
  std::size_t n = 0;
  for (const auto& v : a.items) n += 1 + value_body_size(v, c);
  c.value_too_large |= n > 0xFFFFFFFFu;
  return n;
}

[[gnu::always_inline]] inline std::uint8_t* put_longstr(std::uint8_t* p,
                                                       std::string_view s) noexcept {
  detail::store32(p, static_cast<std::uint32_t>(s.size()));
  detail::copy_bytes(p + 4, s.data(), s.size());
  return p + 4 + s.size();
}

std::uint8_t* put_table(std::uint8_t* p, const field_table& t) noexcept;
std::uint8_t* put_array(std::uint8_t* p, const field_array& a) noexcept;

template <class T>
std::uint8_t* put_bits(std::uint8_t* p, T x) noexcept {
  if constexpr (sizeof(T) == 1) {
    *p = static_cast<std::uint8_t>(x);
  } else if constexpr (sizeof(T) == 2) {
    std::uint16_t b;
    std::memcpy(&b, &x, 2);
    detail::store16(p, b);
  } else if constexpr (sizeof(T) == 4) {
    std::uint32_t b;
    std::memcpy(&b, &x, 4);
    detail::store32(p, b);
  } else {
    std::uint64_t b;
    std::memcpy(&b, &x, 8);
    detail::store64(p, b);
  }
  return p + sizeof(T);
}

// The type letter and the value, at p, which has room for both.
[[gnu::always_inline]] inline std::uint8_t* put_value(std::uint8_t* p,
                                                     const field_value& v) noexcept {
  *p++ = static_cast<std::uint8_t>(v.type_letter());
  switch (v.index()) {
    case index_of<void_value>(): return p;
    case index_of<bool>(): *p = held<bool>(v) ? 1 : 0; return p + 1;
    case index_of<std::int8_t>(): return put_bits(p, held<std::int8_t>(v));
    case index_of<std::uint8_t>(): return put_bits(p, held<std::uint8_t>(v));
    case index_of<std::int16_t>(): return put_bits(p, held<std::int16_t>(v));
    case index_of<std::uint16_t>(): return put_bits(p, held<std::uint16_t>(v));
    case index_of<std::int32_t>(): return put_bits(p, held<std::int32_t>(v));
    case index_of<std::uint32_t>(): return put_bits(p, held<std::uint32_t>(v));
    case index_of<std::int64_t>(): return put_bits(p, held<std::int64_t>(v));
    case index_of<float>(): return put_bits(p, held<float>(v));
    case index_of<double>(): return put_bits(p, held<double>(v));
    case index_of<decimal>():
      *p = held<decimal>(v).scale;
      return put_bits(p + 1, held<decimal>(v).value);
    case index_of<timestamp>(): return put_bits(p, held<timestamp>(v).seconds);
    case index_of<std::string>(): return put_longstr(p, held<std::string>(v));
    case index_of<byte_array>(): return put_longstr(p, held<byte_array>(v).bytes);
    case index_of<field_array>(): return put_array(p, held<field_array>(v));
    case index_of<field_table>(): return put_table(p, held<field_table>(v));
  }
  return p;
}

std::uint8_t* put_table(std::uint8_t* p, const field_table& t) noexcept {
  std::uint8_t* const length_at = p;
  p += 4;
  for (const auto& e : t.entries) {
    const std::size_t n = e.name.size();
    *p = static_cast<std::uint8_t>(n);
    detail::copy_bytes(p + 1, e.name.data(), n);
    p = put_value(p + 1 + n, e.value);
  }
  detail::store32(length_at, static_cast<std::uint32_t>(p - length_at - 4));
  return p;
}

std::uint8_t* put_array(std::uint8_t* p, const field_array& a) noexcept {
  std::uint8_t* const length_at = p;
  p += 4;
  for (const auto& v : a.items) p = put_value(p, v);
  detail::store32(length_at, static_cast<std::uint32_t>(p - length_at - 4));
  return p;
}

// Makes room for `size` bytes in w, or fails w with what the check found
// (throws std::bad_variant_access for a valueless value, which has no type
// letter to write).
std::uint8_t* room(writer& w, std::size_t size, const size_check& c) {
  if (c.valueless) throw std::bad_variant_access();
  if (c.name_too_long) {
    w.fail(errc::string_too_long);
    return nullptr;
  }
  if (c.value_too_large) {
    w.fail(errc::value_too_large);
    return nullptr;
  }
  return w.buffer().extend(size);
}

}  // namespace

std::size_t encoded_size(const field_table& t) {
  size_check c;
  return 4 + table_body_size(t, c);
}

void encode_value(writer& w, const field_value& v) {
  size_check c;
  const std::size_t n = 1 + value_body_size(v, c);
  if (std::uint8_t* p = room(w, n, c)) put_value(p, v);
}

void encode_table(writer& w, const field_table& t) {
  size_check c;
  const std::size_t n = 4 + table_body_size(t, c);
  if (std::uint8_t* p = room(w, n, c)) put_table(p, t);
}

void encode_array(writer& w, const field_array& a) {
  size_check c;
  const std::size_t n = 4 + array_body_size(a, c);
  if (std::uint8_t* p = room(w, n, c)) put_array(p, a);
}

namespace {

// ---------------------------------------------------------------------------
// Decoding, through two local pointers rather than a reader's members: the
// strings written on the way may alias any memory, so a member would be
// reloaded after every one of them.

// The alternative T of `out`, kept (with its storage) when `out` already
// holds one: decoding into a table decoded before reuses its strings and
// vectors, so a message's headers cost no allocation once warm.
template <class T>
T& reuse(field_value& out) {
  if (auto* p = std::get_if<T>(&out.variant())) return *p;
  return out.variant().template emplace<T>();
}

template <class T>
void set(field_value& out, T x) {
  reuse<T>(out) = x;
}

template <class T>
T get_bits(const std::uint8_t* p) noexcept {
  if constexpr (sizeof(T) == 1) {
    return static_cast<T>(*p);
  } else if constexpr (sizeof(T) == 2) {
    const std::uint16_t b = detail::load16(p);
    T x;
    std::memcpy(&x, &b, 2);
    return x;
  } else if constexpr (sizeof(T) == 4) {
    const std::uint32_t b = detail::load32(p);
    T x;
    std::memcpy(&x, &b, 4);
    return x;
  } else {
    const std::uint64_t b = detail::load64(p);
    T x;
    std::memcpy(&x, &b, 8);
    return x;
  }
}

struct decode_error {
  errc code{};
};

const std::uint8_t* get_table(const std::uint8_t* p, const std::uint8_t* end, field_table& out,
                              int depth, decode_error& err);
const std::uint8_t* get_array(const std::uint8_t* p, const std::uint8_t* end, field_array& out,
                              int depth, decode_error& err);

template <class T>
const std::uint8_t* get_fixed(const std::uint8_t* p, const std::uint8_t* end, field_value& out,
                              decode_error& err) {
  if (static_cast<std::size_t>(end - p) < sizeof(T)) {
    err.code = errc::truncated;
    return nullptr;
  }
  set(out, get_bits<T>(p));
  return p + sizeof(T);
}

// What a u32 length prefix at p announces: returns where it starts and sets
// body_end, or nullptr with err set when [p, end) does not hold it all.
const std::uint8_t* length_prefixed(const std::uint8_t* p, const std::uint8_t* end,
                                    const std::uint8_t*& body_end, decode_error& err) {
  if (end - p < 4) {
    err.code = errc::truncated;
    return nullptr;
  }
  const std::uint32_t n = detail::load32(p);
  p += 4;
  if (static_cast<std::size_t>(end - p) < n) {
    err.code = errc::truncated;
    return nullptr;
  }
  body_end = p + n;
  return p;
}

const std::uint8_t* get_longstr(const std::uint8_t* p, const std::uint8_t* end, std::string& out,
                                decode_error& err) {
  const std::uint8_t* body_end = nullptr;
  p = length_prefixed(p, end, body_end, err);
  if (p == nullptr) return nullptr;
  detail::assign_chars(
      out, {reinterpret_cast<const char*>(p), static_cast<std::size_t>(body_end - p)});
  return body_end;
}

// The value after its type letter, into `out`; the position after it, or
// nullptr with err set.
const std::uint8_t* get_value(const std::uint8_t* p, const std::uint8_t* end, char letter,
                              field_value& out, int depth, decode_error& err) {
  switch (letter) {
    case 't':
      if (p == end) break;
      set(out, *p != 0);
      return p + 1;
    case 'b': return get_fixed<std::int8_t>(p, end, out, err);
    case 'B': return get_fixed<std::uint8_t>(p, end, out, err);
    case 's': return get_fixed<std::int16_t>(p, end, out, err);
    case 'u': return get_fixed<std::uint16_t>(p, end, out, err);
    case 'I': return get_fixed<std::int32_t>(p, end, out, err);
    case 'i': return get_fixed<std::uint32_t>(p, end, out, err);
    case 'l':
    case 'L': return get_fixed<std::int64_t>(p, end, out, err);
    case 'f': return get_fixed<float>(p, end, out, err);
    case 'd': return get_fixed<double>(p, end, out, err);
    case 'D':
      if (end - p < 5) break;
      set(out, decimal{*p, detail::load32(p + 1)});
      return p + 5;
    case 'S': return get_longstr(p, end, reuse<std::string>(out), err);
    case 'x': return get_longstr(p, end, reuse<byte_array>(out).bytes, err);
    case 'T':
      if (end - p < 8) break;
      set(out, timestamp{detail::load64(p)});
      return p + 8;
    case 'V': set(out, void_value{}); return p;
    case 'A': return get_array(p, end, reuse<field_array>(out), depth + 1, err);
    case 'F': return get_table(p, end, reuse<field_table>(out), depth + 1, err);
    default: err.code = errc::unknown_field_type; return nullptr;
  }
  err.code = errc::truncated;
  return nullptr;
}

// The body of a nested table or array, as length_prefixed(), one level deeper.
const std::uint8_t* enter(const std::uint8_t* p, const std::uint8_t* end, int depth,
                          const std::uint8_t*& body_end, decode_error& err) {
  if (depth >= max_field_depth) {
    err.code = errc::nesting_too_deep;
    return nullptr;
  }
  return length_prefixed(p, end, body_end, err);
}

// A table's entries or an array's items: each decoded by get_one over the
// ones `items` already has, then the surplus dropped; on an error, those
// decoded before it are kept. get_one(p, body_end, item) returns the position
// after the item, or nullptr with err set.
template <class T, class GetOne>
const std::uint8_t* get_sequence(const std::uint8_t* p, const std::uint8_t* end,
                                 std::vector<T>& items, int depth, decode_error& err,
                                 GetOne get_one) {
  const std::uint8_t* body_end = nullptr;
  p = enter(p, end, depth, body_end, err);
  if (p == nullptr) {
    items.clear();
    return nullptr;
  }
  std::size_t n = 0;
  while (p != body_end) {
    if (n == items.size()) items.emplace_back();
    p = get_one(p, body_end, items[n]);
    if (p == nullptr) break;
    ++n;
  }
  items.resize(n);
  return p;
}

const std::uint8_t* get_table(const std::uint8_t* p, const std::uint8_t* end, field_table& out,
                              int depth, decode_error& err) {
  return get_sequence(
      p, end, out.entries, depth, err,
      [depth, &err](const std::uint8_t* q, const std::uint8_t* body_end,
                    field_entry& e) -> const std::uint8_t* {
        const std::size_t len = *q++;
        // The name and the type letter after it.
        if (static_cast<std::size_t>(body_end - q) < len + 1) {
          err.code = errc::truncated;
          return nullptr;
        }
        detail::assign_chars(e.name, {reinterpret_cast<const char*>(q), len});
        q += len;
        const char letter = static_cast<char>(*q++);
        return get_value(q, body_end, letter, e.value, depth, err);
      });
}

const std::uint8_t* get_array(const std::uint8_t* p, const std::uint8_t* end, field_array& out,
                              int depth, decode_error& err) {
  return get_sequence(p, end, out.items, depth, err,
                      [depth, &err](const std::uint8_t* q, const std::uint8_t* body_end,
                                    field_value& v) -> const std::uint8_t* {
                        const char letter = static_cast<char>(*q++);
                        return get_value(q, body_end, letter, v, depth, err);
                      });
}

// Runs get (get_table or get_array) on what r has left and moves r past what
// it read, or fails r.
template <class Out, class Get>
void decode_with(reader& r, Out& out, int depth, Get get) {
  const std::uint8_t* const start = r.position();
  decode_error err;
  const std::uint8_t* const after = get(start, start + r.remaining(), out, depth, err);
  if (after == nullptr)
    r.fail(err.code);
  else
    r.bytes(static_cast<std::size_t>(after - start));
}

}  // namespace

void decode_table(reader& r, field_table& out, int depth) {
  if (!r.ok()) {
    out.entries.clear();
    return;
  }
  decode_with(r, out, depth, get_table);
}

void decode_array(reader& r, field_array& out, int depth) {
  if (!r.ok()) {
    out.items.clear();
    return;
  }
  decode_with(r, out, depth, get_array);
}

}  // namespace warren
