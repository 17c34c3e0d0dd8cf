// Method frames worked out by hand from the AMQP 0-9-1 spec, and method
// payloads the decoder must refuse.
#include <doctest/doctest.h>

#include <string>

#include "../codec/alloc_probe.hpp"
#include "../codec/test_bytes.hpp"
#include "warren/codec/frame.hpp"
#include "warren/proto/constants.hpp"
#include "warren/proto/methods.hpp"

using namespace warren;
using namespace warren::test;

namespace {

// The whole frame for method m on channel ch.
template <class M>
byte_vec method_frame(std::uint16_t ch, const M& m) {
  byte_buffer buf;
  writer w(buf);
  const auto at = begin_frame(w, frame_type::method, ch);
  m.encode(w);
  finish_frame(w, at);
  REQUIRE(w.ok());
  return to_vec(buf.view());
}

// Parses one method frame and decodes its payload.
std::error_code parse_method_frame(const byte_vec& frame, std::uint16_t& ch, any_method& out) {
  frame_parser p;
  p.feed(view(frame));
  frame_view f;
  std::error_code ec;
  REQUIRE(p.next(f, ec) == frame_parser::status::frame);
  REQUIRE(f.type == frame_type::method);
  CHECK(p.buffered() == 0);
  ch = f.channel;
  return decode_method(f.payload, out);
}

const byte_vec publish_frame = {
    0x01,                    // frame type: method
    0x00, 0x01,              // channel 1
    0x00, 0x00, 0x00, 0x0D,  // payload size 13
    0x00, 0x3C,              // class 60 basic
    0x00, 0x28,              // method 40 publish
    0x00, 0x00,              // reserved-1 (ticket)
    0x02, 'e',  'x',         // exchange "ex"
    0x02, 'r',  'k',         // routing-key "rk"
    0x01,                    // bit 0 mandatory = 1, bit 1 immediate = 0
    0xCE,                    // frame-end
};

const byte_vec deliver_frame = {
    0x01,                                            // frame type: method
    0x00, 0x02,                                      // channel 2
    0x00, 0x00, 0x00, 0x19,                          // payload size 25
    0x00, 0x3C,                                      // class 60 basic
    0x00, 0x3C,                                      // method 60 deliver
    0x04, 'c',  't',  'a',  'g',                     // consumer-tag "ctag"
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // delivery-tag
    0x01,                                            // redelivered
    0x02, 'e',  'x',                                 // exchange "ex"
    0x03, 'k',  'e',  'y',                           // routing-key "key"
    0xCE,
};

const byte_vec start_ok_frame = {
    0x01,                                              // frame type: method
    0x00, 0x00,                                        // channel 0
    0x00, 0x00, 0x00, 0x56,                            // payload size 86
    0x00, 0x0A,                                        // class 10 connection
    0x00, 0x0B,                                        // method 11 start-ok
    0x00, 0x00, 0x00, 0x32,                            // client-properties: 50 bytes
    0x07, 'p',  'r',  'o',  'd',  'u', 'c', 't',       //   "product"
    'S',  0x00, 0x00, 0x00, 0x06,                      //   longstr, 6 bytes
    'w',  'a',  'r',  'r',  'e',  'n',                 //   "warren"
    0x0C, 'c',  'a',  'p',  'a',  'b', 'i', 'l', 'i',  //   "capabilities"
    't',  'i',  'e',  's',                             //
    'F',  0x00, 0x00, 0x00, 0x0D,                      //   table, 13 bytes
    0x0A, 'b',  'a',  's',  'i',  'c', '.', 'n', 'a',  //     "basic.nack"
    'c',  'k',                                         //
    't',  0x01,                                        //     true
    0x05, 'P',  'L',  'A',  'I',  'N',                 // mechanism "PLAIN"
    0x00, 0x00, 0x00, 0x0C,                            // response, 12 bytes:
    0x00, 'g',  'u',  'e',  's',  't',                 //   NUL user
    0x00, 'g',  'u',  'e',  's',  't',                 //   NUL password
    0x05, 'e',  'n',  '_',  'U',  'S',                 // locale "en_US"
    0xCE,
};

}  // namespace

TEST_CASE("basic.publish matches the bytes worked out by hand") {
  basic_publish m;
  m.exchange = "ex";
  m.routing_key = "rk";
  m.mandatory = true;
  CHECK(hex(method_frame(1, m)) == hex(publish_frame));

  std::uint16_t ch = 0;
  any_method out;
  REQUIRE_FALSE(parse_method_frame(publish_frame, ch, out));
  CHECK(ch == 1);
  REQUIRE(std::holds_alternative<basic_publish>(out));
  CHECK(std::get<basic_publish>(out) == m);
  CHECK_FALSE(std::get<basic_publish>(out).immediate);
}

TEST_CASE("basic.publish: immediate is bit 1") {
  basic_publish m;
  m.immediate = true;
  byte_buffer buf;
  writer w(buf);
  m.encode(w);
  // ids, ticket, two empty shortstrs, then the bit octet.
  CHECK(hex(buf) == "00 3c 00 28 00 00 00 00 02");
}

TEST_CASE("basic.deliver matches the bytes worked out by hand") {
  basic_deliver m;
  m.consumer_tag = "ctag";
  m.delivery_tag = 0x0102030405060708ull;
  m.redelivered = true;
  m.exchange = "ex";
  m.routing_key = "key";
  CHECK(hex(method_frame(2, m)) == hex(deliver_frame));

  std::uint16_t ch = 0;
  any_method out;
  REQUIRE_FALSE(parse_method_frame(deliver_frame, ch, out));
  CHECK(ch == 2);
  REQUIRE(std::holds_alternative<basic_deliver>(out));
  CHECK(std::get<basic_deliver>(out) == m);
}

TEST_CASE("connection.start-ok matches the bytes worked out by hand") {
  connection_start_ok m;
  m.client_properties.add("product", "warren");
  m.client_properties.add("capabilities", field_table{}.add("basic.nack", true));
  m.mechanism = "PLAIN";
  m.response = std::string("\0guest\0guest", 12);
  m.locale = "en_US";
  CHECK(hex(method_frame(0, m)) == hex(start_ok_frame));

  std::uint16_t ch = 9;
  any_method out;
  REQUIRE_FALSE(parse_method_frame(start_ok_frame, ch, out));
  CHECK(ch == 0);
  REQUIRE(std::holds_alternative<connection_start_ok>(out));
  CHECK(std::get<connection_start_ok>(out) == m);
}

TEST_CASE("bits pack into one octet, least significant first") {
  // queue.declare: reserved short, queue, then passive durable exclusive
  // auto-delete no-wait in bits 0..4, then arguments.
  queue_declare m;
  m.queue = "q";
  m.durable = true;
  m.auto_delete = true;
  byte_buffer buf;
  writer w(buf);
  m.encode(w);
  // class, method, ticket, "q", bits (durable 0x02 | auto-delete 0x08), empty arguments
  CHECK(hex(buf) == "00 32 00 0a 00 00 01 71 0a 00 00 00 00");
  m = {};
  m.no_wait = true;
  buf.clear();
  m.encode(w);
  CHECK(hex(buf) == "00 32 00 0a 00 00 00 10 00 00 00 00");
}

TEST_CASE("reserved fields encode as zero and are ignored on decode") {
  // connection.open: virtual-host, reserved shortstr (capabilities), reserved bit (insist).
  connection_open m;
  m.virtual_host = "/";
  byte_buffer buf;
  writer w(buf);
  m.encode(w);
  CHECK(hex(buf) == "00 0a 00 28 01 2f 00 00");
  // An old server or client may fill the reserved ones in.
  const byte_vec filled = {0x00, 0x0A, 0x00, 0x28, 0x01, '/', 0x03, 'a', 'b', 'c', 0x01};
  any_method out;
  REQUIRE_FALSE(decode_method(view(filled), out));
  CHECK(std::get<connection_open>(out) == m);
}

TEST_CASE("connection.tune carries channel-max, frame-max, heartbeat") {
  const byte_vec payload = {0x00, 0x0A, 0x00, 0x1E,  // connection.tune
                            0x07, 0xFF,              // channel-max 2047
                            0x00, 0x02, 0x00, 0x00,  // frame-max 131072
                            0x00, 0x3C};             // heartbeat 60
  any_method out;
  REQUIRE_FALSE(decode_method(view(payload), out));
  const auto& t = std::get<connection_tune>(out);
  CHECK(t.channel_max == 2047);
  CHECK(t.frame_max == 131072);
  CHECK(t.heartbeat == 60);
}

TEST_CASE("a method of an unknown class is refused") {
  const byte_vec payload = {0x00, 0x0B, 0x00, 0x0A};  // class 11
  any_method out;
  CHECK(decode_method(view(payload), out) == errc::unknown_class);
  const byte_vec zero = {0x00, 0x00, 0x00, 0x00};
  CHECK(decode_method(view(zero), out) == errc::unknown_class);
}

TEST_CASE("an unknown method of a known class is refused") {
  for (std::uint16_t cls : {10, 20, 40, 50, 60, 85, 90}) {
    const byte_vec payload = {static_cast<std::uint8_t>(cls >> 8), static_cast<std::uint8_t>(cls),
                              0x00, 0xFF};
    any_method out;
    CAPTURE(cls);
    CHECK(decode_method(view(payload), out) == errc::unknown_method);
  }
  const byte_vec basic_41 = {0x00, 0x3C, 0x00, 0x29};
  any_method out;
  CHECK(decode_method(view(basic_41), out) == errc::unknown_method);
}

TEST_CASE("a payload too short for the ids is truncated") {
  const byte_vec three = {0x00, 0x3C, 0x00};
  any_method out;
  CHECK(decode_method(view(three), out) == errc::truncated);
  CHECK(decode_method(bytes_view{}, out) == errc::truncated);
  CHECK(peek_method_key(view(three)) == 0);
}

TEST_CASE("lengths that run past the end are truncated") {
  any_method out;
  SUBCASE("a shortstr") {
    const byte_vec p = {0x00, 0x3C, 0x00, 0x15, 0x09, 'c', 't'};  // consume-ok, tag of 9
    CHECK(decode_method(view(p), out) == errc::truncated);
  }
  SUBCASE("a longstr claiming 4 GiB, without allocating for it") {
    const byte_vec p = {0x00, 0x0A, 0x00, 0x14, 0xFF, 0xFF, 0xFF, 0xFF, 'x'};  // secure
    reset_largest_allocation();
    CHECK(decode_method(view(p), out) == errc::truncated);
    CHECK(largest_allocation() < 4096);
  }
  SUBCASE("a table") {
    const byte_vec p = {0x00, 0x0A, 0x00, 0x0A, 0x00, 0x09,        // start 0-9
                        0x00, 0x00, 0x10, 0x00, 0x01, 'k',  'V'};  // table of 4096
    CHECK(decode_method(view(p), out) == errc::truncated);
  }
}

TEST_CASE("bytes after the last field are refused") {
  const byte_vec p = {0x00, 0x3C, 0x00, 0x50,                          // basic.ack
                      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A,  // delivery-tag 42
                      0x01,                                            // multiple
                      0x00};                                           // stray
  any_method out;
  CHECK(decode_method(view(p), out) == errc::trailing_bytes);
  const byte_vec ok(p.begin(), p.end() - 1);
  REQUIRE_FALSE(decode_method(view(ok), out));
  CHECK(std::get<basic_ack>(out).delivery_tag == 42);
  CHECK(std::get<basic_ack>(out).multiple);
}

TEST_CASE("a field table error inside a method surfaces") {
  any_method out;
  SUBCASE("unknown type letter") {
    const byte_vec p = {0x00, 0x0A, 0x00, 0x0A, 0x00, 0x09, 0x00, 0x00, 0x00, 0x04, 0x01,
                        'k',  'U',  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    CHECK(decode_method(view(p), out) == errc::unknown_field_type);
  }
  SUBCASE("tables nested 10,000 deep in server-properties") {
    byte_vec p = {0x00, 0x0A, 0x00, 0x0A, 0x00, 0x09};
    const int depth = 10000;
    for (int k = 0; k < depth - 1; ++k) {
      const std::uint32_t body = 7u * static_cast<std::uint32_t>(depth - 1 - k);
      p.insert(
          p.end(),
          {static_cast<std::uint8_t>(body >> 24), static_cast<std::uint8_t>(body >> 16),
           static_cast<std::uint8_t>(body >> 8), static_cast<std::uint8_t>(body), 0x01, 'a', 'F'});
    }
    p.insert(p.end(), {0, 0, 0, 0});
    p.insert(p.end(), {0, 0, 0, 0, 0, 0, 0, 0});  // mechanisms, locales
    CHECK(decode_method(view(p), out) == errc::nesting_too_deep);
  }
}

TEST_CASE("decoding into the same struct again leaves exactly the new values") {
  // Decoders may reuse a string's storage; nothing of the longer old value may
  // show through a shorter new one.
  basic_deliver first;
  first.consumer_tag = std::string(200, 'c');
  first.delivery_tag = 1;
  first.exchange = "a-rather-long-exchange-name-of-more-than-sixty-four-bytes-for-the-heap-path";
  first.routing_key = "rk";
  basic_deliver second;
  second.consumer_tag = "t";
  second.delivery_tag = 2;
  second.routing_key = "0123456789abcdef0123";
  basic_deliver target;
  for (const basic_deliver* m : {&first, &second, &first, &second}) {
    byte_buffer buf;
    writer w(buf);
    m->encode(w);
    REQUIRE_FALSE(decode_method_as(buf.view(), target));
    CHECK(target == *m);
  }
}

TEST_CASE("decode_method_as checks the ids") {
  basic_ack ack;
  ack.delivery_tag = 1;
  byte_buffer buf;
  writer w(buf);
  ack.encode(w);
  basic_nack nack;
  CHECK(decode_method_as(buf.view(), nack) == errc::unexpected_frame);
  basic_ack back;
  CHECK_FALSE(decode_method_as(buf.view(), back));
  CHECK(back == ack);
}

TEST_CASE("reply codes know soft from hard") {
  CHECK(is_hard_error(320));  // connection-forced
  CHECK(is_hard_error(501));  // frame-error
  CHECK(is_hard_error(541));  // internal-error
  CHECK(is_soft_error(403));  // access-refused
  CHECK(is_soft_error(404));  // not-found
  CHECK(is_soft_error(406));  // precondition-failed
  CHECK_FALSE(is_hard_error(200));
  CHECK_FALSE(is_soft_error(200));
  CHECK_FALSE(is_hard_error(404));
  CHECK(reply_code_name(404) == "not-found");
  std::error_code ec = reply_code::precondition_failed;
  CHECK(ec.value() == 406);
  CHECK(std::string(ec.category().name()) == "amqp");
  CHECK(ec.message() == "precondition-failed");
}
