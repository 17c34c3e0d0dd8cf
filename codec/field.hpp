// AMQP field values, tables and arrays, with RabbitMQ's type letters.
//
// Each C++ alternative of field_value maps to exactly one wire letter, so a
// table decoded from the wire encodes back to the same bytes:
//
//   t bool          b int8_t       B uint8_t      s int16_t     u uint16_t
//   I int32_t       i uint32_t     l int64_t      f float       d double
//   D decimal       S std::string  x byte_array   A field_array T timestamp
//   F field_table   V void_value
//
// On decode, 'L' (the spec's letter for a signed 64-bit integer, which some
// clients send) is also accepted as int64_t. Decoding bounds nesting depth.
// Tables keep their entries in wire order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "warren/codec/bytes.hpp"

namespace warren {

struct void_value {
  bool operator==(const void_value&) const = default;
};

// A scaled decimal: value / 10^scale. RabbitMQ reads the value as unsigned.
struct decimal {
  std::uint8_t scale = 0;
  std::uint32_t value = 0;
  bool operator==(const decimal&) const = default;
};

// Seconds since the Unix epoch, distinct from a plain int64 on the wire ('T').
struct timestamp {
  std::uint64_t seconds = 0;
  bool operator==(const timestamp&) const = default;
};

// Opaque bytes ('x'), distinct from a text longstr ('S').
struct byte_array {
  std::string bytes;
  bool operator==(const byte_array&) const = default;
};

struct field_value;
struct field_entry;

struct field_array {
  std::vector<field_value> items;
  bool operator==(const field_array&) const;
};

// An ordered list of named values. Names are unique in what RabbitMQ sends;
// set() replaces an existing name, add() appends unconditionally.
struct field_table {
  std::vector<field_entry> entries;

  bool empty() const noexcept;
  std::size_t size() const noexcept;
  const field_value* find(std::string_view name) const noexcept;
  field_value* find(std::string_view name) noexcept;
  field_table& set(std::string name, field_value value);
  field_table& add(std::string name, field_value value);
  bool operator==(const field_table&) const;
};

using field_variant =
    std::variant<void_value, bool, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t,
                 std::int32_t, std::uint32_t, std::int64_t, float, double, decimal, std::string,
                 byte_array, timestamp, field_array, field_table>;

struct field_value : field_variant {
  using field_variant::field_variant;
  field_value() = default;
  // Defined below, once field_entry is complete.
  field_value(const char* s);
  field_value(std::string_view s);

  const field_variant& variant() const noexcept { return *this; }
  field_variant& variant() noexcept { return *this; }
  // The wire letter of the held alternative.
  char type_letter() const noexcept;
  bool operator==(const field_value& o) const { return variant() == o.variant(); }
};

struct field_entry {
  std::string name;
  field_value value;
  bool operator==(const field_entry&) const = default;
};

// These need field_entry complete (clang instantiates vector members eagerly).
inline bool field_table::empty() const noexcept { return entries.empty(); }
inline std::size_t field_table::size() const noexcept { return entries.size(); }
inline field_value::field_value(const char* s) : field_variant(std::string(s)) {}
inline field_value::field_value(std::string_view s) : field_variant(std::string(s)) {}

inline bool field_array::operator==(const field_array& o) const { return items == o.items; }
inline bool field_table::operator==(const field_table& o) const { return entries == o.entries; }

// Deepest nesting of tables/arrays the decoder accepts before failing with
// errc::nesting_too_deep. RabbitMQ itself nests far less than this.
inline constexpr int max_field_depth = 64;

// Table encoding (length-prefixed). Fails the writer on a name over 255 bytes
// or a value too large for its length prefix.
void encode_table(writer& w, const field_table& t);
void encode_array(writer& w, const field_array& a);
void encode_value(writer& w, const field_value& v);

// Table decoding. Fails the reader (truncated, unknown_field_type,
// nesting_too_deep) and leaves `out` partially filled on error.
void decode_table(reader& r, field_table& out, int depth = 0);
void decode_array(reader& r, field_array& out, int depth = 0);

// The encoded size of a table including its 4-byte length prefix.
std::size_t encoded_size(const field_table& t);

}  // namespace warren
