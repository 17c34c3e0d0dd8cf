#include "tools/warren/typed.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "warren/codec/bytes.hpp"
#include "warren/codec/field.hpp"

using namespace warren;
using namespace warren::cli;

namespace {

std::string wire(const field_table& t) {
  byte_buffer buf;
  writer w(buf);
  encode_table(w, t);
  REQUIRE(w.ok());
  return std::string(buf.str());
}

field_table from_wire(const std::string& bytes) {
  reader r(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  field_table t;
  decode_table(r, t);
  REQUIRE(r.ok());
  return t;
}

std::string typed_text(const field_value& v) { return to_json(typed_json(v)); }

field_value from_text(std::string_view text) {
  return typed_value_from_json(parse_json(text), "v");
}

std::string value_error_of(std::string_view text) {
  try {
    from_text(text);
  } catch (const value_error& e) {
    return e.what();
  }
  return "no error";
}

std::string assignment_error_of(std::string_view text) {
  try {
    parse_typed_assignment(text);
  } catch (const value_error& e) {
    return e.what();
  }
  return "no error";
}

template <class F>
F from_bits(std::uint64_t b) {
  F f;
  if constexpr (sizeof(F) == 4) {
    const auto b32 = static_cast<std::uint32_t>(b);
    std::memcpy(&f, &b32, 4);
  } else {
    std::memcpy(&f, &b, 8);
  }
  return f;
}

// Every type, nested tables and arrays, extreme values.
field_table every_type() {
  field_table inner;
  inner.add("deep", field_array{{field_table{}.add("x", std::int8_t{-1}), field_array{}}});
  field_table t;
  t.add("bool", false);
  t.add("int8", std::int8_t{-128});
  t.add("uint8", std::uint8_t{255});
  t.add("int16", std::int16_t{-32768});
  t.add("uint16", std::uint16_t{65535});
  t.add("int32", std::int32_t{-2147483647 - 1});
  t.add("uint32", std::uint32_t{4294967295u});
  t.add("int64", std::numeric_limits<std::int64_t>::min());
  t.add("float", 3.14159274f);
  t.add("double", 2.718281828459045);
  t.add("float-denorm", std::numeric_limits<float>::denorm_min());
  t.add("double-neg-zero", -0.0);
  t.add("float-nan", std::numeric_limits<float>::quiet_NaN());
  t.add("double-nan-payload", from_bits<double>(0xFFF8000000000123ull));
  t.add("float-inf", -std::numeric_limits<float>::infinity());
  t.add("decimal", decimal{255, 4294967295u});
  t.add("string", std::string("caf\xC3\xA9 \"q\"\n\x01", 12));
  t.add("string-binary", std::string("\xFF\x00\xFE", 3));
  t.add("bytes", byte_array{std::string("\x00\x01\xFF", 3)});
  t.add("timestamp", timestamp{18446744073709551615ull});
  t.add("void", void_value{});
  t.add("array", field_array{{std::int32_t{1}, "two", void_value{}, field_array{{true}}}});
  t.add("table", inner);
  t.add("", std::string());                    // an empty name
  t.add("n\xC3\xA4me \xFF", std::int16_t{7});  // names need not be valid UTF-8
  return t;
}

}  // namespace

TEST_CASE("typed json: each type prints as {type, value}") {
  CHECK(typed_text(true) == R"({"type":"bool","value":true})");
  CHECK(typed_text(std::int8_t{-5}) == R"({"type":"int8","value":-5})");
  CHECK(typed_text(std::uint8_t{200}) == R"({"type":"uint8","value":200})");
  CHECK(typed_text(std::int16_t{-300}) == R"({"type":"int16","value":-300})");
  CHECK(typed_text(std::uint16_t{60000}) == R"({"type":"uint16","value":60000})");
  CHECK(typed_text(std::int32_t{-100000}) == R"({"type":"int32","value":-100000})");
  CHECK(typed_text(std::uint32_t{3000000000u}) == R"({"type":"uint32","value":3000000000})");
  CHECK(typed_text(std::int64_t{-2}) == R"({"type":"int64","value":-2})");
  CHECK(typed_text(0.1f) == R"({"type":"float","value":0.1})");
  CHECK(typed_text(0.1) == R"({"type":"double","value":0.1})");
  CHECK(typed_text(decimal{2, 12345}) == R"({"type":"decimal","value":{"scale":2,"value":12345}})");
  CHECK(typed_text("hi") == R"({"type":"string","value":"hi"})");
  CHECK(typed_text(byte_array{"hello"}) == R"({"type":"bytes","value":"aGVsbG8="})");
  CHECK(typed_text(timestamp{1705032704}) == R"({"type":"timestamp","value":1705032704})");
  CHECK(typed_text(void_value{}) == R"({"type":"void","value":null})");
  CHECK(typed_text(field_array{{std::int32_t{1}, "a"}}) ==
        R"({"type":"array","value":[{"type":"int32","value":1},{"type":"string","value":"a"}]})");
  CHECK(typed_text(field_table{}.add("k", void_value{})) ==
        R"({"type":"table","value":{"k":{"type":"void","value":null}}})");
}

TEST_CASE("typed json: floating-point specials") {
  CHECK(typed_text(std::numeric_limits<double>::quiet_NaN()) ==
        R"({"type":"double","value":"NaN"})");
  CHECK(typed_text(std::numeric_limits<float>::infinity()) ==
        R"({"type":"float","value":"Infinity"})");
  CHECK(typed_text(-std::numeric_limits<double>::infinity()) ==
        R"({"type":"double","value":"-Infinity"})");
  CHECK(typed_text(from_bits<double>(0xFFF8000000000000ull)) ==
        R"({"type":"double","value":"NaN:0xfff8000000000000"})");
  CHECK(typed_text(from_bits<float>(0x7FA00001u)) ==
        R"({"type":"float","value":"NaN:0x7fa00001"})");
  const field_value back = from_text(R"({"type":"float","value":"NaN:0x7fa00001"})");
  std::uint32_t bits;
  std::memcpy(&bits, &std::get<float>(back), 4);
  CHECK(bits == 0x7FA00001u);
  CHECK(std::isinf(std::get<double>(from_text(R"({"type":"double","value":"-Infinity"})"))));
  CHECK(value_error_of(R"({"type":"double","value":"NaN:0x0000000000000001"})") ==
        "v: a double value must be a number or \"NaN\", \"Infinity\", \"-Infinity\", "
        "\"NaN:0x<bits>\"; found \"NaN:0x0000000000000001\"");
  CHECK(value_error_of(R"({"type":"float","value":"NaN:0x7ff8000000000000"})") ==
        "v: a float value must be a number or \"NaN\", \"Infinity\", \"-Infinity\", "
        "\"NaN:0x<bits>\"; found \"NaN:0x7ff8000000000000\"");
}

TEST_CASE("typed json: a table round-trips to the same wire bytes") {
  const field_table t = every_type();
  const std::string bytes = wire(t);
  // wire -> table -> JSON text -> JSON -> table -> wire
  const std::string text = to_json(typed_json(from_wire(bytes)));
  const field_table back = parse_typed_table(text, "headers");
  CHECK(wire(back) == bytes);
  // The JSON text itself is stable.
  CHECK(to_json(typed_json(back)) == text);
  CHECK(text.find(R"("string-binary":{"type":"string","value":"\udcff\u0000\udcfe"})") !=
        std::string::npos);
}

TEST_CASE("typed json: every letter RabbitMQ uses maps to exactly one type") {
  const field_table t = every_type();
  std::string letters;
  for (const auto& e : from_wire(wire(t)).entries) letters.push_back(e.value.type_letter());
  CHECK(letters == "tbBsuIilfdfdfdfDSSxTVAFSs");
  // 'L' from the wire reads as int64 and prints as int64 (RabbitMQ's letter is 'l').
  const std::string l_table(
      "\x00\x00\x00\x0B\x01n"
      "L\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFE",
      15);
  CHECK(to_json(typed_json(from_wire(l_table))) == R"({"n":{"type":"int64","value":-2}})");
}

TEST_CASE("typed json: errors name the place and the reason") {
  CHECK(value_error_of("5") ==
        R"(v: expected a typed value {"type": T, "value": V}, found a number)");
  CHECK(value_error_of(R"({"type":"int128","value":1})") ==
        "v: unknown type \"int128\" (one of bool, int8, uint8, int16, uint16, int32, uint32, "
        "int64, float, double, decimal, string, bytes, timestamp, table, array, void)");
  CHECK(value_error_of(R"({"type":"int8","value":128})") ==
        "v: int8 value 128 is out of range (-128..127)");
  CHECK(value_error_of(R"({"type":"uint8","value":-1})") ==
        "v: uint8 value -1 is out of range (0..255)");
  CHECK(value_error_of(R"({"type":"int32","value":1.0})") ==
        "v: an int32 value must be an integer, found \"1.0\"");
  CHECK(value_error_of(R"({"type":"int32","value":"1"})") ==
        "v: an int32 value must be an integer, found a string");
  CHECK(value_error_of(R"({"type":"int64","value":9223372036854775808})") ==
        "v: int64 value 9223372036854775808 is out of range "
        "(-9223372036854775808..9223372036854775807)");
  CHECK(value_error_of(R"({"type":"timestamp","value":-1})") ==
        "v: timestamp value -1 is out of range (0..18446744073709551615)");
  CHECK(value_error_of(R"({"type":"float","value":1e39})") ==
        "v: float value 1e39 is out of range");
  CHECK(value_error_of(R"({"type":"bool","value":1})") ==
        "v: a bool value must be true or false, found a number");
  CHECK(value_error_of(R"({"type":"string"})") == "v: missing \"value\"");
  CHECK(value_error_of(R"({"value":1})") == "v: missing \"type\"");
  CHECK(value_error_of(R"({"type":"int8","value":1,"extra":2})") ==
        "v: unexpected member \"extra\"");
  CHECK(value_error_of(R"({"type":"bytes","value":"abc"})") ==
        "v: a bytes value must be base64 (standard alphabet, '=' padding): \"abc\"");
  CHECK(value_error_of(R"({"type":"decimal","value":{"scale":256,"value":1}})") ==
        "v.scale: scale value 256 is out of range (0..255)");
  CHECK(value_error_of(R"({"type":"decimal","value":{"scale":1,"value":-1}})") ==
        "v.value: decimal value -1 is out of range (0..4294967295)");
  CHECK(value_error_of(R"({"type":"decimal","value":{"scale":1}})") == "v: missing \"value\"");
  CHECK(value_error_of(R"({"type":"decimal","value":1.5})") ==
        "v: a decimal value must be {\"scale\": S, \"value\": N}, found a number");
  CHECK(value_error_of(R"({"type":"void","value":0})") ==
        "v: a void value must be null, found a number");
  CHECK(value_error_of(R"({"type":"table","value":[]})") ==
        "v: a table must be a JSON object of typed values, found an array");
  CHECK(
      value_error_of(
          R"({"type":"table","value":{"a":{"type":"array","value":[{"type":"int8","value":1},5]}}})") ==
      R"(v.a[1]: expected a typed value {"type": T, "value": V}, found a number)");
  // void may leave out its value.
  CHECK(from_text(R"({"type":"void"})") == field_value(void_value{}));
  try {
    parse_typed_table("{\"a\": }", "--headers-json");
    FAIL("no error");
  } catch (const value_error& e) {
    CHECK(std::string(e.what()) ==
          "--headers-json: invalid JSON: line 1, column 7: expected a JSON value, found '}'");
  }
}

TEST_CASE("typed text: NAME=TYPE:VALUE") {
  const auto value_of = [](std::string_view arg) { return parse_typed_assignment(arg).value; };
  CHECK(parse_typed_assignment("x-match=string:all").name == "x-match");
  CHECK(value_of("a=string:b=c:d") == field_value("b=c:d"));
  CHECK(value_of("a=string:") == field_value(""));
  CHECK(value_of("a=bool:true") == field_value(true));
  CHECK(value_of("a=int8:-128") == field_value(std::int8_t{-128}));
  CHECK(value_of("a=uint8:255") == field_value(std::uint8_t{255}));
  CHECK(value_of("a=int16:-2") == field_value(std::int16_t{-2}));
  CHECK(value_of("a=uint16:2") == field_value(std::uint16_t{2}));
  CHECK(value_of("a=int32:60000") == field_value(std::int32_t{60000}));
  CHECK(value_of("a=uint32:4294967295") == field_value(std::uint32_t{4294967295u}));
  CHECK(value_of("a=int64:-9000000000") == field_value(std::int64_t{-9000000000}));
  CHECK(value_of("a=float:0.1") == field_value(0.1f));
  CHECK(value_of("a=double:-1e-300") == field_value(-1e-300));
  CHECK(std::isnan(std::get<double>(value_of("a=double:NaN"))));
  CHECK(value_of("a=decimal:12.50") == field_value(decimal{2, 1250}));
  CHECK(value_of("a=decimal:7") == field_value(decimal{0, 7}));
  CHECK(value_of("a=bytes:AAE=") == field_value(byte_array{std::string("\x00\x01", 2)}));
  CHECK(value_of("a=timestamp:1700000000") == field_value(timestamp{1700000000}));
  CHECK(value_of("a=void") == field_value(void_value{}));
  CHECK(value_of("a=void:") == field_value(void_value{}));
  CHECK(value_of(R"(a=table:{"b":{"type":"int8","value":1}})") ==
        field_value(field_table{}.add("b", std::int8_t{1})));
  CHECK(value_of(R"(a=array:[{"type":"void","value":null}])") ==
        field_value(field_array{{void_value{}}}));

  CHECK(assignment_error_of("novalue") == "expected NAME=TYPE:VALUE, not \"novalue\"");
  CHECK(assignment_error_of("=int8:1") == "expected NAME=TYPE:VALUE, not \"=int8:1\"");
  CHECK(assignment_error_of("a=5") ==
        "a: expected NAME=TYPE:VALUE (TYPE one of bool, int8, uint8, int16, uint16, int32, uint32, "
        "int64, float, double, decimal, string, bytes, timestamp, table, array, void), not "
        "\"a=5\"");
  CHECK(assignment_error_of("a=int:5").starts_with("a: unknown type \"int\""));
  CHECK(assignment_error_of("a=int8:x") == "a: an int8 value must be an integer, found \"x\"");
  CHECK(assignment_error_of("a=int8:-129") == "a: int8 value -129 is out of range (-128..127)");
  CHECK(assignment_error_of("a=int8: 1") == "a: an int8 value must be an integer, found \" 1\"");
  CHECK(assignment_error_of("a=bool:yes") == "a: a bool value must be true or false, not \"yes\"");
  CHECK(assignment_error_of("a=decimal:1.2.3") ==
        "a: a decimal value must be digits with an optional point (12.50), not \"1.2.3\"");
  CHECK(assignment_error_of("a=decimal:-1") ==
        "a: a decimal value must be digits with an optional point (12.50), not \"-1\"");
  CHECK(assignment_error_of("a=decimal:42949672.96") ==
        "a: decimal value 42949672.96 has more significant digits than fit in 32 bits "
        "(4294967295)");
  CHECK(assignment_error_of("a=void:x") == "a: a void value takes no VALUE, found \"x\"");
  CHECK(assignment_error_of("a=bytes:!!!!") ==
        "a: a bytes value must be base64 (standard alphabet, '=' padding): \"!!!!\"");
  CHECK(assignment_error_of("a=table:{") ==
        "a: invalid JSON: line 1, column 2: expected a member name (a string) in an object, "
        "found end of input");
  CHECK(assignment_error_of("a=float:1e40") == "a: float value 1e40 is out of range");
  CHECK(assignment_error_of("a=double:1,5") ==
        "a: a double value must be a number or \"NaN\", \"Infinity\", \"-Infinity\", "
        "\"NaN:0x<bits>\"; found \"1,5\"");
  CHECK(assignment_error_of("a=int16:01") == "a: an int16 value must be an integer, found \"01\"");
}

TEST_CASE("properties: --property NAME=VALUE and their JSON") {
  basic_properties p;
  set_property(p, "content_type=application/json");
  set_property(p, "content-encoding=gzip");
  set_property(p, "delivery_mode=persistent");
  set_property(p, "priority=9");
  set_property(p, "correlation_id=c=1");
  set_property(p, "reply_to=amq.rabbitmq.reply-to");
  set_property(p, "expiration=60000");
  set_property(p, "message_id=m1");
  set_property(p, "timestamp=1700000000");
  set_property(p, "type=t");
  set_property(p, "user_id=guest");
  set_property(p, "app_id=warren");
  set_property(p, "cluster_id=");
  CHECK(p.delivery_mode == std::uint8_t{2});
  CHECK(p.correlation_id == "c=1");
  CHECK(p.cluster_id == "");
  p.headers = field_table{}.add("h", std::int8_t{1});
  CHECK(to_json(properties_json(p)) ==
        R"({"content_type":"application/json","content_encoding":"gzip",)"
        R"("headers":{"h":{"type":"int8","value":1}},"delivery_mode":2,"priority":9,)"
        R"("correlation_id":"c=1","reply_to":"amq.rabbitmq.reply-to","expiration":"60000",)"
        R"("message_id":"m1","timestamp":1700000000,"type":"t","user_id":"guest",)"
        R"("app_id":"warren","cluster_id":""})");
  CHECK(to_json(properties_json(basic_properties{})) == "{}");

  set_property(p, "delivery_mode=transient");
  CHECK(p.delivery_mode == std::uint8_t{1});
  const auto error_of = [](std::string_view arg) -> std::string {
    basic_properties q;
    try {
      set_property(q, arg);
    } catch (const value_error& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(error_of("priority=256") == "priority: priority value 256 is out of range (0..255)");
  CHECK(error_of("timestamp=soon") ==
        "timestamp: a timestamp value must be an integer, found \"soon\"");
  CHECK(error_of("headers=x") ==
        "headers: headers are set with --header NAME=TYPE:VALUE or --headers-json");
  CHECK(error_of("colour=red").starts_with("unknown property \"colour\" (one of content_type,"));
  CHECK(error_of("content_type") == "expected --property NAME=VALUE, not \"content_type\"");
  CHECK(error_of("message_id=" + std::string(256, 'x')) ==
        "message_id: a property value is at most 255 bytes");
}

TEST_CASE("message json: body or body_base64") {
  message m;
  m.exchange = "ex";
  m.routing_key = "rk";
  m.redelivered = true;
  m.delivery_tag = 18446744073709551615ull;
  m.body = "h\xC3\xA9llo\n";
  m.properties.content_type = "text/plain";
  CHECK(to_json(message_json(m)) ==
        R"({"exchange":"ex","routing_key":"rk","redelivered":true,)"
        R"("delivery_tag":18446744073709551615,"properties":{"content_type":"text/plain"},)"
        "\"body\":\"h\xC3\xA9llo\\n\"}");
  m.body = std::string("\x00\xFF", 2);
  m.properties = {};
  CHECK(to_json(message_json(m)) ==
        R"({"exchange":"ex","routing_key":"rk","redelivered":true,)"
        R"("delivery_tag":18446744073709551615,"properties":{},"body_base64":"AP8="})");
}

TEST_CASE("base64: RFC 4648 vectors and strictness") {
  const char* vectors[][2] = {{"", ""},
                              {"f", "Zg=="},
                              {"fo", "Zm8="},
                              {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="},
                              {"fooba", "Zm9vYmE="},
                              {"foobar", "Zm9vYmFy"}};
  for (auto& v : vectors) {
    CHECK(base64_encode(v[0]) == v[1]);
    std::string out;
    CHECK(base64_decode(v[1], out));
    CHECK(out == v[0]);
  }
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  std::string back;
  CHECK(base64_decode(base64_encode(all), back));
  CHECK(back == all);
  CHECK(base64_encode("\xFB\xFF") == "+/8=");

  std::string out;
  CHECK_FALSE(base64_decode("Zg", out));        // no padding
  CHECK_FALSE(base64_decode("Zg=", out));       // short padding
  CHECK_FALSE(base64_decode("Zh==", out));      // unused bits set
  CHECK_FALSE(base64_decode("Zm9=", out));      // unused bits set
  CHECK_FALSE(base64_decode("Z===", out));      // too much padding
  CHECK_FALSE(base64_decode("Zg==Zg==", out));  // padding in the middle
  CHECK_FALSE(base64_decode("Zm9v\n", out));    // whitespace
  CHECK_FALSE(base64_decode("Zm-v", out));      // URL-safe alphabet
  CHECK_FALSE(base64_decode("Z=g=", out));
}
