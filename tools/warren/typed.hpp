// AMQP field values, properties and messages as JSON, and the command line's
// NAME=TYPE:VALUE and NAME=VALUE forms.
//
// A field value is written {"type": T, "value": V}; T names exactly one
// RabbitMQ type letter, so a table printed from the wire and read back encodes
// to the same bytes:
//
//   bool      t  true / false          float      f  number (*)
//   int8      b  integer               double     d  number (*)
//   uint8     B  integer               decimal    D  {"scale": S, "value": N}
//   int16     s  integer                             (N / 10^S, N unsigned 32-bit)
//   uint16    u  integer               string     S  string
//   int32     I  integer               bytes      x  base64 string
//   uint32    i  integer               timestamp  T  integer seconds since the epoch
//   int64     l  integer               table      F  object of typed values
//                                      array      A  list of typed values
//                                      void       V  null
//
// (*) Printed as the shortest decimal that reads back as the same float or
// double. JSON has no NaN or infinity: those are the strings "NaN",
// "Infinity" and "-Infinity"; a NaN other than the default quiet NaN is
// "NaN:0x" followed by its bits in hex (8 digits for float, 16 for double).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "tools/warren/json.hpp"
#include "warren/client/types.hpp"

namespace warren::cli {

// A value that does not fit its type, an unknown type or property name,
// malformed base64... `what()` names where ("headers.a[2]: ...").
class value_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "bool", "int8", ... "void": the type name of the held alternative.
const char* type_name(const field_value& v) noexcept;
// Every type name, comma-separated, for help and error texts.
std::string_view type_names() noexcept;

json_value typed_json(const field_value& v);
// An object whose members are the table's entries as typed values, in order.
// Duplicate names (which RabbitMQ never sends) are printed as they come.
json_value typed_json(const field_table& t);

// The reverse. `where` prefixes error messages (may be empty).
field_value typed_value_from_json(const json_value& j, const std::string& where);
field_table typed_table_from_json(const json_value& j, const std::string& where);
field_array typed_array_from_json(const json_value& j, const std::string& where);
// parse_json + typed_table_from_json; JSON syntax errors become value_error.
field_table parse_typed_table(std::string_view json_text, const std::string& where);

// The VALUE of a TYPE:VALUE argument: bool true|false; integers in decimal;
// float/double as a JSON number or NaN/Infinity/-Infinity; decimal as digits
// with an optional point ("12.50" is scale 2, value 1250); string verbatim;
// bytes in base64; timestamp in seconds; table/array as typed JSON (an object
// / a list of typed values); void with an empty VALUE.
field_value parse_typed_text(std::string_view type, std::string_view text,
                             const std::string& where);
// NAME=TYPE:VALUE (or NAME=void), as --header and --argument take it.
field_entry parse_typed_assignment(std::string_view arg);

// The properties present, in wire order, headers as typed values; timestamp
// as integer seconds, delivery_mode and priority as integers.
json_value properties_json(const basic_properties& p);
// One --property NAME=VALUE (NAME as in properties_json; '-' may stand for '_').
// headers are refused: they have options of their own.
void set_property(basic_properties& p, std::string_view assignment);
// The property names set_property accepts, comma-separated.
std::string_view property_names() noexcept;

// exchange, routing_key, redelivered, delivery_tag, properties, then body
// (when valid UTF-8) or body_base64.
json_value message_json(const message& m);

std::string base64_encode(std::string_view bytes);
// Strict: the standard alphabet, '=' padding to a multiple of 4, no
// whitespace, zero unused bits. Returns false on anything else.
bool base64_decode(std::string_view text, std::string& out);

}  // namespace warren::cli
