#include "tools/warren/json.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

using namespace warren::cli;

namespace {

std::string parse_error(std::string_view text) {
  try {
    parse_json(text);
  } catch (const json_error& e) {
    return e.what();
  }
  return "no error";
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("json: parses every kind of value and keeps member order") {
  json_value v = parse_json(" {\"b\": [1, -2.5e3, true, false, null], \"a\": \"x\", \"c\": {}} \n");
  REQUIRE(v.is_object());
  const auto& o = std::get<json_object>(v);
  REQUIRE(o.size() == 3);
  CHECK(o[0].name == "b");
  CHECK(o[1].name == "a");
  CHECK(o[2].name == "c");
  const auto& arr = std::get<json_array>(o[0].value);
  REQUIRE(arr.size() == 5);
  CHECK(std::get<json_number>(arr[0]).text == "1");
  CHECK(std::get<json_number>(arr[1]).text == "-2.5e3");
  CHECK(arr[2] == json_value(true));
  CHECK(arr[3] == json_value(false));
  CHECK(arr[4].is_null());
  CHECK(*v.find("a") == json_value("x"));
  CHECK(v.find("zz") == nullptr);
  CHECK(std::get<json_object>(o[2].value).empty());
  CHECK(parse_json("[]") == json_value(json_array{}));
  CHECK(parse_json("0") == json_value(json_number{"0"}));
  CHECK(parse_json("-0") == json_value(json_number{"-0"}));
}

TEST_CASE("json: prints compactly and reads its own output back") {
  const std::string text = R"({"a":[1,true,null,"s"],"b":{"c":-0.5}})";
  json_value v = parse_json(text);
  CHECK(to_json(v) == text);
  CHECK(parse_json(to_json(v)) == v);
}

TEST_CASE("json: string escapes") {
  CHECK(parse_json(R"("\"\\\/\b\f\n\r\t")") == json_value("\"\\/\b\f\n\r\t"));
  CHECK(parse_json(R"("\u00e9\u20AC")") == json_value("\xC3\xA9\xE2\x82\xAC"));
  // A surrogate pair is one code point, U+1F600.
  CHECK(parse_json(R"("\ud83d\ude00")") == json_value("\xF0\x9F\x98\x80"));
  // Raw UTF-8 passes through.
  CHECK(parse_json("\"\xC3\xA9\"") == json_value("\xC3\xA9"));
  // A lone low surrogate \udc80..\udcff is the raw byte 0x80..0xff.
  CHECK(parse_json(R"("a\udcff\udc80")") == json_value(std::string("a\xFF\x80")));

  std::string out;
  write_json_string(out, std::string("q\"b\\n\n\x01\x1F\x7F", 9));
  CHECK(out == "\"q\\\"b\\\\n\\n\\u0001\\u001f\\u007f\"");
  out.clear();
  // C1 controls (U+0080..U+009F) are escaped too; U+00A0 is not.
  write_json_string(out, "\xC2\x9B\xC2\x85\xC2\xA0");
  CHECK(out == "\"\\u009b\\u0085\xC2\xA0\"");
  CHECK(parse_json(out) == json_value("\xC2\x9B\xC2\x85\xC2\xA0"));
  out.clear();
  write_json_string(out, "\xC3\xA9\xF0\x9F\x98\x80");
  CHECK(out == "\"\xC3\xA9\xF0\x9F\x98\x80\"");
  out.clear();
  write_json_string(out, std::string("\xFF\xC3", 2));  // invalid, and a truncated sequence
  CHECK(out == "\"\\udcff\\udcc3\"");
}

TEST_CASE("json: every byte string survives printing and parsing") {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  std::string text;
  write_json_string(text, all);
  CHECK(std::get<std::string>(parse_json(text)) == all);

  std::mt19937 rng(7);
  for (int round = 0; round < 500; ++round) {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) {
      // Mostly bytes that make or break UTF-8 sequences.
      static constexpr unsigned char pool[] = {'a',  0x00, 0x7F, 0x80, 0xBF, 0xC2, 0xC3, 0xE0,
                                               0xED, 0xA0, 0xF0, 0x90, 0xF4, 0x8F, 0xFF, '"'};
      s.push_back(static_cast<char>(pool[rng() % sizeof pool]));
    }
    std::string t;
    write_json_string(t, s);
    INFO(t);
    CHECK(std::get<std::string>(parse_json(t)) == s);
  }
}

TEST_CASE("json: syntax errors name the place and the reason") {
  CHECK(parse_error("") == "line 1, column 1: expected a JSON value, found end of input");
  CHECK(parse_error("[1,]") == "line 1, column 4: trailing ',' before ']'");
  CHECK(parse_error("{\"a\":1,}") == "line 1, column 8: trailing ',' before '}'");
  CHECK(parse_error("{\n  \"a\": 01}") ==
        "line 2, column 8: a number must not have a leading zero");
  CHECK(parse_error("{\"a\":1 \"b\":2}") ==
        "line 1, column 8: expected ',' or '}' in an object, found '\"'");
  CHECK(parse_error("{\"a\":1,\"a\":2}") == "line 1, column 8: duplicate member name \"a\"");
  CHECK(parse_error("{a:1}") ==
        "line 1, column 2: expected a member name (a string) in an object, found 'a'");
  CHECK(parse_error("[1] x") == "line 1, column 5: unexpected 'x' after the JSON value");
  CHECK(parse_error("\"abc") == "line 1, column 5: unterminated string");
  CHECK(parse_error("\"a\nb\"") ==
        "line 1, column 3: unescaped control character (byte 0x0A) in a string");
  CHECK(parse_error(R"("\x")") == "line 1, column 2: invalid escape sequence in a string");
  CHECK(parse_error(R"("\u12g4")") ==
        "line 1, column 6: expected 4 hex digits after \\u, found 'g'");
  CHECK(parse_error(R"("\ud83d")") == "line 1, column 2: unpaired high surrogate escape");
  CHECK(parse_error(R"("\ud83d\u0041")") == "line 1, column 2: unpaired high surrogate escape");
  CHECK(parse_error(R"("\ude00")") == "line 1, column 2: unpaired low surrogate escape");
  CHECK(parse_error("\"\xFF\"") == "line 1, column 2: invalid UTF-8 (byte 0xFF) in a string");
  CHECK(parse_error("\"\xC0\x80\"") == "line 1, column 2: invalid UTF-8 (byte 0xC0) in a string");
  CHECK(parse_error("truex") == "line 1, column 5: unexpected 'x' after 'true'");
  CHECK(parse_error("nul") == "line 1, column 1: expected a JSON value, found 'n'");
  CHECK(parse_error("NaN") == "line 1, column 1: expected a JSON value, found 'N'");
  CHECK(parse_error("1.") ==
        "line 1, column 3: expected a digit after '.' in a number, found end of input");
  CHECK(parse_error("-") == "line 1, column 2: expected a digit in a number, found end of input");
  CHECK(parse_error("1e") ==
        "line 1, column 3: expected a digit in a number's exponent, found end of input");
  CHECK(parse_error("+1") == "line 1, column 1: expected a JSON value, found '+'");
  CHECK(parse_error("[1 // no comments\n]") ==
        "line 1, column 4: expected ',' or ']' in an array, found '/'");
  // Columns count characters, not bytes.
  CHECK(parse_error("\"\xC3\xA9\" x") == "line 1, column 5: unexpected 'x' after the JSON value");
}

TEST_CASE("json: nesting depth is bounded") {
  std::string ok(max_json_depth, '[');
  ok += std::string(max_json_depth, ']');
  CHECK_NOTHROW(parse_json(ok));
  std::string deep(max_json_depth + 1, '[');
  deep += std::string(max_json_depth + 1, ']');
  CHECK(contains(parse_error(deep), "nested deeper than"));
  // Far past the limit fails the same way, without exhausting the stack.
  CHECK(contains(parse_error(std::string(100000, '[')), "nested deeper than"));
}

TEST_CASE("json: integers read back only when they fit") {
  std::int64_t i = 0;
  std::uint64_t u = 0;
  CHECK(read_int(json_number{"-9223372036854775808"}, i));
  CHECK(i == std::numeric_limits<std::int64_t>::min());
  CHECK_FALSE(read_int(json_number{"9223372036854775808"}, i));
  CHECK(read_uint(json_number{"18446744073709551615"}, u));
  CHECK(u == std::numeric_limits<std::uint64_t>::max());
  CHECK_FALSE(read_uint(json_number{"18446744073709551616"}, u));
  CHECK_FALSE(read_uint(json_number{"-1"}, u));
  CHECK_FALSE(read_int(json_number{"1.0"}, i));
  CHECK_FALSE(read_int(json_number{"1e2"}, i));
  CHECK_FALSE(read_int(json_number{"01"}, i));
  CHECK_FALSE(read_int(json_number{""}, i));
  CHECK(json_int(-42).text == "-42");
  CHECK(json_uint(18446744073709551615ull).text == "18446744073709551615");
}

TEST_CASE("json: floats and doubles print shortest and read back exactly") {
  CHECK(json_double(0.1).text == "0.1");
  CHECK(json_float(0.1f).text == "0.1");
  CHECK(json_double(1.0).text == "1");
  CHECK(json_double(-0.0).text == "-0");
  CHECK(json_double(1e300).text == "1e+300");
  double d = 0;
  float f = 0;
  CHECK(read_double(json_number{"-0"}, d));
  CHECK(std::signbit(d));
  CHECK(read_double(json_number{"1E-2"}, d));
  CHECK(d == 0.01);
  CHECK_FALSE(read_double(json_number{"1e999"}, d));
  CHECK_FALSE(read_float(json_number{"1e39"}, f));
  CHECK_FALSE(read_double(json_number{"inf"}, d));
  CHECK_FALSE(read_double(json_number{".5"}, d));
  CHECK_FALSE(read_double(json_number{"0x10"}, d));
  // A float read directly, not through a double (no double rounding).
  CHECK(read_float(json_number{"16777217"}, f));
  CHECK(f == 16777216.0f);

  const double doubles[] = {std::numeric_limits<double>::denorm_min(),
                            std::numeric_limits<double>::min(),
                            std::numeric_limits<double>::max(),
                            std::numeric_limits<double>::lowest(),
                            std::numeric_limits<double>::epsilon(),
                            5e-324,
                            2.2250738585072009e-308,
                            0.30000000000000004,
                            123456789.0};
  for (double x : doubles) {
    double back = 0;
    REQUIRE(read_double(json_double(x), back));
    CHECK(back == x);
  }
  const float floats[] = {std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::lowest(),
                          3.4028235e38f,
                          1.17549435e-38f};
  for (float x : floats) {
    float back = 0;
    REQUIRE(read_float(json_float(x), back));
    CHECK(back == x);
  }

  std::mt19937_64 rng(1);
  for (int k = 0; k < 20000; ++k) {
    const std::uint64_t b64 = rng();
    double x;
    std::memcpy(&x, &b64, 8);
    if (!std::isfinite(x)) continue;
    double back = 0;
    REQUIRE(read_double(json_double(x), back));
    REQUIRE(std::memcmp(&back, &x, 8) == 0);

    const std::uint32_t b32 = static_cast<std::uint32_t>(b64 >> 32);
    float y;
    std::memcpy(&y, &b32, 4);
    if (!std::isfinite(y)) continue;
    float yback = 0;
    REQUIRE(read_float(json_float(y), yback));
    REQUIRE(std::memcmp(&yback, &y, 4) == 0);
  }
}

TEST_CASE("json: UTF-8 validation") {
  CHECK(is_utf8(""));
  CHECK(is_utf8("plain ascii"));
  CHECK(is_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF"));
  CHECK_FALSE(is_utf8("\x80"));
  CHECK_FALSE(is_utf8("\xC0\x80"));          // overlong NUL
  CHECK_FALSE(is_utf8("\xE0\x80\x80"));      // overlong
  CHECK_FALSE(is_utf8("\xED\xA0\x80"));      // a surrogate
  CHECK_FALSE(is_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(is_utf8("\xF5\x80\x80\x80"));
  CHECK_FALSE(is_utf8("\xE2\x82"));  // truncated
  CHECK(is_utf8(std::string("a\0b", 3)));
}
