#include "warren/codec/field.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "alloc_probe.hpp"
#include "test_bytes.hpp"

using namespace warren;
using namespace warren::test;

namespace {

// A table with one entry of every type letter RabbitMQ uses, in the order
// t b B s u I i l f d D S x A T F V; each entry is named after its letter.
field_table every_type_table() {
  field_table t;
  t.add("t", true);
  t.add("b", std::int8_t{-5});
  t.add("B", std::uint8_t{200});
  t.add("s", std::int16_t{-300});
  t.add("u", std::uint16_t{60000});
  t.add("I", std::int32_t{-100000});
  t.add("i", std::uint32_t{3000000000u});
  t.add("l", std::int64_t{-2});
  t.add("f", 1.5f);
  t.add("d", -2.5);
  t.add("D", decimal{2, 12345});
  t.add("S", "hi");
  t.add("x", byte_array{std::string("\x00\xff", 2)});
  t.add("A", field_array{{std::int32_t{1}, "a", void_value{}}});
  t.add("T", timestamp{1705032704});
  t.add("F", field_table{}.add("n", field_table{}.add("z", void_value{})));
  t.add("V", void_value{});
  return t;
}

// The same table, worked out by hand. Each entry: name length, name, letter,
// value. 141 bytes of entries after the 4-byte length.
const byte_vec every_type_bytes = {
    0x00, 0x00, 0x00, 0x8D,                                // table length 141
    0x01, 't',  't',  0x01,                                // bool true
    0x01, 'b',  'b',  0xFB,                                // int8 -5
    0x01, 'B',  'B',  0xC8,                                // uint8 200
    0x01, 's',  's',  0xFE, 0xD4,                          // int16 -300
    0x01, 'u',  'u',  0xEA, 0x60,                          // uint16 60000
    0x01, 'I',  'I',  0xFF, 0xFE, 0x79, 0x60,              // int32 -100000
    0x01, 'i',  'i',  0xB2, 0xD0, 0x5E, 0x00,              // uint32 3000000000
    0x01, 'l',  'l',  0xFF, 0xFF, 0xFF, 0xFF,              // int64 -2 ...
    0xFF, 0xFF, 0xFF, 0xFE,                                // ... low half
    0x01, 'f',  'f',  0x3F, 0xC0, 0x00, 0x00,              // float 1.5
    0x01, 'd',  'd',  0xC0, 0x04, 0x00, 0x00,              // double -2.5 ...
    0x00, 0x00, 0x00, 0x00,                                // ... low half
    0x01, 'D',  'D',  0x02, 0x00, 0x00, 0x30, 0x39,        // decimal scale 2, value 12345
    0x01, 'S',  'S',  0x00, 0x00, 0x00, 0x02, 'h',  'i',   // longstr "hi"
    0x01, 'x',  'x',  0x00, 0x00, 0x00, 0x02, 0x00, 0xFF,  // byte array 00 ff
    0x01, 'A',  'A',  0x00, 0x00, 0x00, 0x0C,              // array, 12 bytes of items:
    'I',  0x00, 0x00, 0x00, 0x01,                          //   int32 1
    'S',  0x00, 0x00, 0x00, 0x01, 'a',                     //   longstr "a"
    'V',                                                   //   void
    0x01, 'T',  'T',  0x00, 0x00, 0x00, 0x00,              // timestamp 1705032704 ...
    0x65, 0xA0, 0xBC, 0x00,                                // ... = 0x65A0BC00
    0x01, 'F',  'F',  0x00, 0x00, 0x00, 0x0A,              // table, 10 bytes:
    0x01, 'n',  'F',  0x00, 0x00, 0x00, 0x03,              //   "n": table, 3 bytes:
    0x01, 'z',  'V',                                       //     "z": void
    0x01, 'V',  'V',                                       // void
};

byte_vec encode(const field_table& t) {
  byte_buffer buf;
  writer w(buf);
  encode_table(w, t);
  REQUIRE(w.ok());
  return to_vec(buf.view());
}

std::error_code decode(const byte_vec& b, field_table& out, std::size_t* left = nullptr) {
  reader r(view(b));
  decode_table(r, out);
  if (left) *left = r.remaining();
  return r.error();
}

// A table nested `depth` levels deep: {"a": {"a": ... {} }}, written forward
// so building 10,000 levels stays linear. Level k (0 outermost) is 7*(depth-1-k)+4
// bytes long.
byte_vec nested_tables(int depth) {
  byte_vec b;
  b.reserve(static_cast<std::size_t>(depth) * 7);
  for (int k = 0; k < depth - 1; ++k) {
    const std::uint32_t body = 7u * static_cast<std::uint32_t>(depth - 1 - k);
    b.insert(b.end(), {static_cast<std::uint8_t>(body >> 24), static_cast<std::uint8_t>(body >> 16),
                       static_cast<std::uint8_t>(body >> 8), static_cast<std::uint8_t>(body), 0x01,
                       'a', 'F'});
  }
  b.insert(b.end(), {0, 0, 0, 0});
  return b;
}

// The same with arrays inside a table: {"a": [[[...[]...]]]}, `depth` levels
// counting the table.
byte_vec nested_arrays(int depth) {
  byte_vec b;
  auto u32 = [&b](std::uint32_t v) {
    b.insert(b.end(), {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                       static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)});
  };
  // Array level j (1..depth-1) holds one 'A' item unless innermost: 5*(depth-1-j) bytes.
  u32(3 + 4 + 5u * static_cast<std::uint32_t>(depth - 2));
  b.insert(b.end(), {0x01, 'a', 'A'});
  for (int j = 1; j < depth; ++j) {
    u32(5u * static_cast<std::uint32_t>(depth - 1 - j));
    if (j < depth - 1) b.push_back('A');
  }
  return b;
}

}  // namespace

TEST_CASE("a table of every type encodes to the bytes worked out by hand") {
  REQUIRE(every_type_bytes.size() == 145);
  const field_table t = every_type_table();
  CHECK(hex(encode(t)) == hex(every_type_bytes));
  CHECK(encoded_size(t) == every_type_bytes.size());
}

TEST_CASE("the hand-written table of every type decodes to the same values") {
  field_table t;
  std::size_t left = 99;
  REQUIRE_FALSE(decode(every_type_bytes, t, &left));
  CHECK(left == 0);
  CHECK(t == every_type_table());
  // Spot-check alternatives, so equality is not just comparing two wrongs.
  REQUIRE(t.size() == 17);
  CHECK(std::get<std::int8_t>(*t.find("b")) == -5);
  CHECK(std::get<std::uint32_t>(*t.find("i")) == 3000000000u);
  CHECK(std::get<decimal>(*t.find("D")) == decimal{2, 12345});
  CHECK(std::get<byte_array>(*t.find("x")).bytes == std::string("\x00\xff", 2));
  CHECK(std::get<std::string>(*t.find("S")) == "hi");
  const auto& arr = std::get<field_array>(*t.find("A"));
  REQUIRE(arr.items.size() == 3);
  CHECK(std::holds_alternative<void_value>(arr.items[2]));
  const auto& inner = std::get<field_table>(*t.find("F"));
  CHECK(std::holds_alternative<void_value>(*std::get<field_table>(*inner.find("n")).find("z")));
  const char letters[] = "tbBsuIilfdDSxATFV";
  for (std::size_t i = 0; i < t.size(); ++i) {
    CAPTURE(i);
    CHECK(t.entries[i].name == std::string(1, letters[i]));
    CHECK(t.entries[i].value.type_letter() == letters[i]);
  }
}

TEST_CASE("an empty table is four zero bytes") {
  CHECK(hex(encode(field_table{})) == "00 00 00 00");
  field_table t;
  t.add("stale", 1);
  const byte_vec b = {0, 0, 0, 0};
  CHECK_FALSE(decode(b, t));
  CHECK(t.empty());
}

TEST_CASE("'L' decodes as a signed 64-bit integer and encodes back as 'l'") {
  const byte_vec b = {0x00, 0x00, 0x00, 0x0B, 0x01, 'n',  'L', 0xFF,
                      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x9C};  // -100
  field_table t;
  REQUIRE_FALSE(decode(b, t));
  REQUIRE(t.size() == 1);
  CHECK(std::get<std::int64_t>(*t.find("n")) == -100);
  byte_vec back = b;
  back[6] = 'l';
  CHECK(hex(encode(t)) == hex(back));
}

TEST_CASE("any letter outside RabbitMQ's set is an unknown field type") {
  // Value sizes by letter, from the wire table; all-zero bytes of that size
  // are a valid value for each (an empty string, array or table included).
  const std::string known = "tbBsuIilLfdDSxATFV";
  const int sizes[] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 4, 8, 5, 4, 4, 4, 8, 4, 0};
  for (int c = 0; c < 256; ++c) {
    const auto at = known.find(static_cast<char>(c));
    const int value_size = at == std::string::npos ? 16 : sizes[at];
    byte_vec b = {0x00,
                  0x00,
                  0x00,
                  static_cast<std::uint8_t>(3 + value_size),
                  0x01,
                  'k',
                  static_cast<std::uint8_t>(c)};
    b.resize(b.size() + static_cast<std::size_t>(value_size), 0);
    field_table t;
    CAPTURE(c);
    if (at == std::string::npos) {
      CHECK(decode(b, t) == errc::unknown_field_type);
    } else {
      CHECK_FALSE(decode(b, t));
      CHECK(t.size() == 1);
    }
  }
  // 'U' is in the 0-9-1 spec's own table but RabbitMQ never sends it.
  const byte_vec u = {0x00, 0x00, 0x00, 0x05, 0x01, 'k', 'U', 0x00, 0x01};
  field_table t;
  CHECK(decode(u, t) == errc::unknown_field_type);
}

TEST_CASE("an unknown letter inside an array is an error too") {
  const byte_vec b = {0x00, 0x00, 0x00, 0x08, 0x01, 'a', 'A', 0x00, 0x00, 0x00, 0x01, 'Z'};
  field_table t;
  CHECK(decode(b, t) == errc::unknown_field_type);
}

TEST_CASE("every strict prefix of a valid table is truncated") {
  for (std::size_t n = 0; n < every_type_bytes.size(); ++n) {
    byte_vec prefix(every_type_bytes.begin(), every_type_bytes.begin() + n);
    field_table t;
    CAPTURE(n);
    CHECK(decode(prefix, t) == errc::truncated);
  }
}

TEST_CASE("lengths that run past the end are truncated, without allocating for them") {
  SUBCASE("table length past the end of the input") {
    const byte_vec b = {0x00, 0x00, 0x00, 0x10, 0x01, 'k', 'V'};
    field_table t;
    CHECK(decode(b, t) == errc::truncated);
  }
  SUBCASE("an entry's value runs past the end of its table") {
    // The table says 5 bytes; the int32 needs 3 + 4.
    const byte_vec b = {0x00, 0x00, 0x00, 0x05, 0x01, 'k', 'I', 0x00, 0x00, 0x00, 0x01};
    field_table t;
    CHECK(decode(b, t) == errc::truncated);
  }
  SUBCASE("a name length past the end of its table") {
    const byte_vec b = {0x00, 0x00, 0x00, 0x03, 0x09, 'k', 'V'};
    field_table t;
    CHECK(decode(b, t) == errc::truncated);
  }
  SUBCASE("a longstr value claiming 4 GiB") {
    const byte_vec b = {0x00, 0x00, 0x00, 0x08, 0x01, 'k', 'S', 0xFF, 0xFF, 0xFF, 0xFF, 'x'};
    field_table t;
    reset_largest_allocation();
    CHECK(decode(b, t) == errc::truncated);
    CHECK(largest_allocation() < 4096);
  }
  SUBCASE("an array claiming 4 GiB") {
    const byte_vec b = {0x00, 0x00, 0x00, 0x08, 0x01, 'k', 'A', 0xFF, 0xFF, 0xFF, 0xFF, 'V'};
    field_table t;
    reset_largest_allocation();
    CHECK(decode(b, t) == errc::truncated);
    CHECK(largest_allocation() < 4096);
  }
  SUBCASE("a table claiming 4 GiB") {
    const byte_vec b = {0xFF, 0xFF, 0xFF, 0xFF, 0x01, 'k', 'V'};
    field_table t;
    reset_largest_allocation();
    CHECK(decode(b, t) == errc::truncated);
    CHECK(largest_allocation() < 4096);
  }
}

TEST_CASE("nesting is bounded at max_field_depth levels") {
  SUBCASE("exactly the limit decodes") {
    const byte_vec b = nested_tables(max_field_depth);
    field_table t;
    std::size_t left = 1;
    REQUIRE_FALSE(decode(b, t, &left));
    CHECK(left == 0);
    int levels = 1;
    const field_table* p = &t;
    while (!p->empty()) {
      p = &std::get<field_table>(*p->find("a"));
      ++levels;
    }
    CHECK(levels == max_field_depth);
  }
  SUBCASE("one more level is too deep") {
    field_table t;
    CHECK(decode(nested_tables(max_field_depth + 1), t) == errc::nesting_too_deep);
  }
  SUBCASE("arrays count as levels too") {
    field_table t;
    CHECK_FALSE(decode(nested_arrays(max_field_depth), t));
    CHECK(decode(nested_arrays(max_field_depth + 1), t) == errc::nesting_too_deep);
  }
}

TEST_CASE("tables nested 10,000 deep fail cleanly instead of overflowing the stack") {
  field_table t;
  const byte_vec tables = nested_tables(10000);
  CHECK(tables.size() == 7u * 9999 + 4);
  CHECK(decode(tables, t) == errc::nesting_too_deep);
  CHECK(decode(nested_arrays(10000), t) == errc::nesting_too_deep);
}

TEST_CASE("decode stops at the table's end, leaving what follows") {
  byte_vec b = every_type_bytes;
  b.push_back(0xAB);
  reader r(view(b));
  field_table t;
  decode_table(r, t);
  CHECK(r.ok());
  CHECK(r.remaining() == 1);
  CHECK(r.u8() == 0xAB);
}

TEST_CASE("arrays encode and decode on their own") {
  const field_array a{{std::uint8_t{7}, true, "s"}};
  byte_buffer buf;
  writer w(buf);
  encode_array(w, a);
  const byte_vec expected = {0x00, 0x00, 0x00, 0x0A,              // 10 bytes of items
                             'B',  0x07,                          // uint8 7
                             't',  0x01,                          // true
                             'S',  0x00, 0x00, 0x00, 0x01, 's'};  // "s"
  CHECK(hex(buf) == hex(expected));
  reader r(buf.view());
  field_array back;
  decode_array(r, back);
  CHECK(r.ok());
  CHECK(back == a);
}

namespace {

byte_buffer encoded(const field_table& t) {
  byte_buffer buf;
  writer w(buf);
  encode_table(w, t);
  REQUIRE(w.ok());
  return buf;
}

}  // namespace

TEST_CASE("decoding over a table already filled gives what a fresh decode gives") {
  // Shapes that grow, shrink and change the type of entries of the same name,
  // at the top level and nested, decoded one after another into one table.
  field_table long_strings;
  long_strings.add("S", std::string(100, 's')).add("x", byte_array{std::string(50, 'x')});
  field_table shapes[] = {
      every_type_table(),
      field_table{}.add("t", "now a string").add("F", std::int32_t{1}),
      long_strings,
      field_table{},
      field_table{}.add("A", field_array{{field_table{}.add("deep", "er"), std::int8_t{1}}}),
      every_type_table(),
      field_table{}.add("A", field_array{}).add("S", "short"),
      long_strings,
  };
  field_table reused;
  for (const field_table& want : shapes) {
    const byte_buffer buf = encoded(want);
    reader r(buf.view());
    decode_table(r, reused);
    CHECK(r.ok());
    CHECK(r.empty());
    CHECK(reused == want);
    CHECK(hex(encoded(reused)) == hex(buf));
  }
}

TEST_CASE("decoding the same table again into the same object allocates nothing") {
  const byte_buffer buf = encoded(every_type_table());
  field_table t;
  for (int warm = 0; warm < 2; ++warm) {
    reader r(buf.view());
    decode_table(r, t);
    REQUIRE(r.ok());
  }
  const std::size_t before = allocation_count();
  for (int i = 0; i < 100; ++i) {
    reader r(buf.view());
    decode_table(r, t);
  }
  CHECK(allocation_count() == before);
  CHECK(t == every_type_table());
}

TEST_CASE("a failed decode over a filled table keeps only the entries decoded") {
  field_table t = every_type_table();
  // "a" -> int32 1, then "b" with an unknown letter.
  const byte_vec b = {0x00, 0x00, 0x00, 0x0E, 0x01, 'a', 'I', 0x00, 0x00, 0x00, 0x01,
                      0x01, 'b', '?', 0x00, 0x00, 0x00, 0x00};
  reader r(view(b));
  decode_table(r, t);
  CHECK(r.error() == errc::unknown_field_type);
  REQUIRE(t.size() == 1);
  CHECK(t.entries[0].name == "a");
  CHECK(t.entries[0].value == field_value(std::int32_t{1}));
}

TEST_CASE("a name over 255 bytes fails the writer") {
  field_table t;
  t.add(std::string(256, 'n'), 1);
  byte_buffer buf;
  writer w(buf);
  encode_table(w, t);
  CHECK(w.error() == errc::string_too_long);
}

TEST_CASE("set replaces, add appends, find looks up by name") {
  field_table t;
  t.set("a", 1).set("b", 2).set("a", 3);
  REQUIRE(t.size() == 2);
  CHECK(t.entries[0].name == "a");
  CHECK(std::get<int>(*t.find("a")) == 3);
  t.add("a", 4);
  CHECK(t.size() == 3);
  CHECK(std::get<int>(*t.find("a")) == 3);  // the first one wins
  CHECK(t.find("missing") == nullptr);
}

namespace {
// Converts to a table's entries by throwing: emplacing a field_table from it
// throws after the variant gave up its old value, leaving it valueless.
struct throws_on_conversion {
  operator std::vector<field_entry>() const { throw std::runtime_error("no entries"); }
};
}  // namespace

TEST_CASE("a value left valueless by an exception throws on encode and writes nothing") {
  field_value broken("before");
  CHECK_THROWS(broken.variant().emplace<field_table>(throws_on_conversion{}));
  REQUIRE(broken.valueless_by_exception());
  field_table t;
  t.add("ok", std::int32_t{1}).add("broken", broken);
  field_array a;
  a.items.push_back(broken);
  byte_buffer out;
  writer w(out);
  CHECK_THROWS_AS(encode_table(w, t), std::bad_variant_access);
  CHECK_THROWS_AS(encode_array(w, a), std::bad_variant_access);
  CHECK_THROWS_AS(encode_value(w, broken), std::bad_variant_access);
  CHECK(out.size() == 0);
}
