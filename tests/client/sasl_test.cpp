#include "warren/client/sasl.hpp"

#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "warren/codec/bytes.hpp"
#include "warren/codec/error.hpp"
#include "warren/codec/field.hpp"

using namespace warren;

namespace {

template <std::size_t N>
std::string bytes(const char (&s)[N]) {
  return std::string(s, N - 1);  // keeps embedded NULs, drops the literal's own
}

}  // namespace

TEST_CASE("sasl: mechanism names") {
  CHECK(sasl_mechanism_name(sasl_mechanism::plain) == "PLAIN");
  CHECK(sasl_mechanism_name(sasl_mechanism::amqplain) == "AMQPLAIN");
  CHECK(sasl_mechanism_name(sasl_mechanism::external) == "EXTERNAL");

  sasl_mechanism m = sasl_mechanism::external;
  CHECK(parse_sasl_mechanism("PLAIN", m));
  CHECK(m == sasl_mechanism::plain);
  CHECK(parse_sasl_mechanism("amqplain", m));
  CHECK(m == sasl_mechanism::amqplain);
  CHECK(parse_sasl_mechanism("External", m));
  CHECK(m == sasl_mechanism::external);
  CHECK_FALSE(parse_sasl_mechanism("CRAM-MD5", m));
  CHECK_FALSE(parse_sasl_mechanism("", m));
  CHECK_FALSE(parse_sasl_mechanism("PLAIN ", m));
  CHECK(m == sasl_mechanism::external);
}

TEST_CASE("sasl: PLAIN response") {
  CHECK(sasl_response(sasl_mechanism::plain, "guest", "guest") == bytes("\0guest\0guest"));
  CHECK(sasl_response(sasl_mechanism::plain, "guest", "guest").size() == 12);
  CHECK(sasl_response(sasl_mechanism::plain, "", "") == bytes("\0\0"));
  CHECK(sasl_response(sasl_mechanism::plain, "u", "") == bytes("\0u\0"));
  CHECK(sasl_response(sasl_mechanism::plain, "", "p") == bytes("\0\0p"));
  CHECK(sasl_response(sasl_mechanism::plain, "\xC3\xA9", "a b") == bytes("\0\xC3\xA9\0a b"));
}

TEST_CASE("sasl: AMQPLAIN response") {
  // name: shortstr (length octet, bytes); type 'S'; longstr (u32 BE length, bytes).
  CHECK(sasl_response(sasl_mechanism::amqplain, "guest", "guest") ==
        bytes("\x05LOGIN"
              "S\x00\x00\x00\x05guest"
              "\x08PASSWORD"
              "S\x00\x00\x00\x05guest"));
  CHECK(sasl_response(sasl_mechanism::amqplain, "guest", "guest").size() == 35);

  CHECK(sasl_response(sasl_mechanism::amqplain, "u", "") == bytes("\x05LOGIN"
                                                                  "S\x00\x00\x00\x01u"
                                                                  "\x08PASSWORD"
                                                                  "S\x00\x00\x00\x00"));

  std::string long_pw(300, 'p');
  CHECK(sasl_response(sasl_mechanism::amqplain, "", long_pw) == bytes("\x05LOGIN"
                                                                      "S\x00\x00\x00\x00"
                                                                      "\x08PASSWORD"
                                                                      "S\x00\x00\x01\x2C") +
                                                                    long_pw);
}

TEST_CASE("sasl: AMQPLAIN response decodes as table entries") {
  std::string r = sasl_response(sasl_mechanism::amqplain, "alice", bytes("p\0w"));
  byte_buffer buf;
  writer w(buf);
  w.u32(static_cast<std::uint32_t>(r.size()));
  w.bytes(r.data(), r.size());
  reader rd(buf.view());
  field_table t;
  decode_table(rd, t);
  REQUIRE(rd.ok());
  CHECK(rd.empty());
  REQUIRE(t.size() == 2);
  CHECK(t.entries[0].name == "LOGIN");
  CHECK(t.entries[1].name == "PASSWORD");
  CHECK(t.entries[0].value == field_value(std::string("alice")));
  CHECK(t.entries[1].value == field_value(bytes("p\0w")));
}

TEST_CASE("sasl: EXTERNAL response is empty") {
  CHECK(sasl_response(sasl_mechanism::external, "guest", "guest").empty());
  CHECK(sasl_response(sasl_mechanism::external, "", "").empty());
}

TEST_CASE("sasl: choosing a mechanism") {
  auto choose = [](std::string_view offered, std::string_view wanted) {
    sasl_mechanism m = sasl_mechanism::external;
    auto ec = choose_mechanism(offered, wanted, m);
    REQUIRE_FALSE(ec);
    return m;
  };
  auto refuse = [](std::string_view offered, std::string_view wanted) {
    sasl_mechanism m = sasl_mechanism::amqplain;
    CHECK(choose_mechanism(offered, wanted, m) == errc::no_common_mechanism);
    CHECK(m == sasl_mechanism::amqplain);
  };

  // No preference: PLAIN over AMQPLAIN, whatever the broker's order.
  CHECK(choose("AMQPLAIN PLAIN", "") == sasl_mechanism::plain);
  CHECK(choose("PLAIN AMQPLAIN", "") == sasl_mechanism::plain);
  CHECK(choose("AMQPLAIN", "") == sasl_mechanism::amqplain);
  CHECK(choose("EXTERNAL AMQPLAIN", "") == sasl_mechanism::amqplain);
  CHECK(choose("  AMQPLAIN\t PLAIN  ", "") == sasl_mechanism::plain);
  refuse("EXTERNAL", "");
  refuse("", "");
  refuse("CRAM-MD5 SCRAM-SHA-256", "");
  refuse("XPLAIN PLAINX AMQPLAINX", "");
  refuse("plain amqplain", "");  // SASL names are matched exactly

  // An explicit choice must be offered; any case is accepted for it.
  CHECK(choose("PLAIN AMQPLAIN EXTERNAL", "EXTERNAL") == sasl_mechanism::external);
  CHECK(choose("PLAIN AMQPLAIN", "amqplain") == sasl_mechanism::amqplain);
  CHECK(choose("AMQPLAIN PLAIN", "plain") == sasl_mechanism::plain);
  refuse("PLAIN", "external");
  refuse("PLAIN", "AMQPLAIN");
  refuse("AMQPLAIN", "PLAIN");
  refuse("PLAIN CRAM-MD5", "CRAM-MD5");
  refuse("PLAIN", "PLAI");
}
