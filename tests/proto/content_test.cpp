// Content headers, the publish encoder and content assembly (client/wire.hpp),
// against bytes worked out by hand from the AMQP 0-9-1 spec.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "../codec/alloc_probe.hpp"
#include "../codec/test_bytes.hpp"
#include "warren/client/wire.hpp"
#include "warren/codec/frame.hpp"

using namespace warren;
using namespace warren::test;

namespace {

basic_properties all_properties() {
  basic_properties p;
  p.content_type = "ct";
  p.content_encoding = "ce";
  p.headers = field_table{}.add("h", std::int32_t{5});
  p.delivery_mode = 2;
  p.priority = 9;
  p.correlation_id = "ci";
  p.reply_to = "rt";
  p.expiration = "60000";
  p.message_id = "mi";
  p.timestamp = timestamp{0x65A0BC00};
  p.type = "ty";
  p.user_id = "guest";
  p.app_id = "ai";
  p.cluster_id = "cl";
  return p;
}

// A content header frame on channel 1 for a 5-byte body with all 14
// properties present.
const byte_vec all_properties_frame = {
    0x02,                                            // frame type: header
    0x00, 0x01,                                      // channel 1
    0x00, 0x00, 0x00, 0x47,                          // payload size 71 = 12 + 2 + 57
    0x00, 0x3C,                                      // class 60 basic
    0x00, 0x00,                                      // weight
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,  // body size 5
    0xFF, 0xFC,                                      // flags: bits 15..2, one per property
    0x02, 'c',  't',                                 // content-type
    0x02, 'c',  'e',                                 // content-encoding
    0x00, 0x00, 0x00, 0x07, 0x01, 'h',  'I',  0x00, 0x00, 0x00, 0x05,  // headers {h: 5}
    0x02,                                                              // delivery-mode
    0x09,                                                              // priority
    0x02, 'c',  'i',                                                   // correlation-id
    0x02, 'r',  't',                                                   // reply-to
    0x05, '6',  '0',  '0',  '0',  '0',                                 // expiration
    0x02, 'm',  'i',                                                   // message-id
    0x00, 0x00, 0x00, 0x00, 0x65, 0xA0, 0xBC, 0x00,                    // timestamp
    0x02, 't',  'y',                                                   // type
    0x05, 'g',  'u',  'e',  's',  't',                                 // user-id
    0x02, 'a',  'i',                                                   // app-id
    0x02, 'c',  'l',                                                   // cluster-id
    0xCE,
};

byte_vec header_payload(std::uint64_t body_size, const basic_properties& props) {
  byte_buffer buf;
  writer w(buf);
  encode_content_header(w, body_size, props);
  REQUIRE(w.ok());
  return to_vec(buf.view());
}

struct owned_frame {
  frame_type type{};
  std::uint16_t channel = 0;
  byte_vec payload;
};

std::vector<owned_frame> parse_all(bytes_view bytes, std::uint32_t frame_max) {
  frame_parser p(frame_max);
  p.feed(bytes);
  std::vector<owned_frame> out;
  frame_view f;
  std::error_code ec;
  while (p.next(f, ec) == frame_parser::status::frame)
    out.push_back({f.type, f.channel, to_vec(f.payload)});
  REQUIRE_FALSE(ec);
  CHECK(p.buffered() == 0);
  return out;
}

std::string body_of(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

}  // namespace

TEST_CASE("a content header with all 14 properties matches the bytes worked out by hand") {
  byte_buffer buf;
  writer w(buf);
  const auto at = begin_frame(w, frame_type::header, 1);
  encode_content_header(w, 5, all_properties());
  finish_frame(w, at);
  REQUIRE(w.ok());
  CHECK(hex(buf) == hex(all_properties_frame));
  CHECK(all_properties().flags() == 0xFFFC);
  CHECK(all_properties().encoded_size() == 2 + 57);

  const byte_vec payload(all_properties_frame.begin() + 7, all_properties_frame.end() - 1);
  content_header h;
  REQUIRE_FALSE(decode_content_header(view(payload), h));
  CHECK(h.class_id == 60);
  CHECK(h.body_size == 5);
  CHECK(h.properties == all_properties());
}

TEST_CASE("each property has its own flag bit, from 0x8000 down to 0x0004") {
  struct one {
    const char* name;
    std::uint16_t flag;
    void (*set)(basic_properties&);
  };
  const one table[] = {
      {"content-type", 0x8000, [](basic_properties& p) { p.content_type = "a"; }},
      {"content-encoding", 0x4000, [](basic_properties& p) { p.content_encoding = "a"; }},
      {"headers", 0x2000, [](basic_properties& p) { p.headers = field_table{}; }},
      {"delivery-mode", 0x1000, [](basic_properties& p) { p.delivery_mode = 1; }},
      {"priority", 0x0800, [](basic_properties& p) { p.priority = 1; }},
      {"correlation-id", 0x0400, [](basic_properties& p) { p.correlation_id = "a"; }},
      {"reply-to", 0x0200, [](basic_properties& p) { p.reply_to = "a"; }},
      {"expiration", 0x0100, [](basic_properties& p) { p.expiration = "a"; }},
      {"message-id", 0x0080, [](basic_properties& p) { p.message_id = "a"; }},
      {"timestamp", 0x0040, [](basic_properties& p) { p.timestamp = timestamp{1}; }},
      {"type", 0x0020, [](basic_properties& p) { p.type = "a"; }},
      {"user-id", 0x0010, [](basic_properties& p) { p.user_id = "a"; }},
      {"app-id", 0x0008, [](basic_properties& p) { p.app_id = "a"; }},
      {"cluster-id", 0x0004, [](basic_properties& p) { p.cluster_id = "a"; }},
  };
  for (const auto& t : table) {
    CAPTURE(t.name);
    basic_properties p;
    t.set(p);
    CHECK(p.flags() == t.flag);
    const byte_vec bytes = header_payload(0, p);
    REQUIRE(bytes.size() >= 14);
    CHECK(detail::load16(bytes.data() + 12) == t.flag);
    CHECK(p.encoded_size() + 12 == bytes.size());
    content_header h;
    REQUIRE_FALSE(decode_content_header(view(bytes), h));
    CHECK(h.properties == p);
  }
}

TEST_CASE("a content header without properties is 14 bytes") {
  const byte_vec expected = {0x00, 0x3C, 0x00, 0x00,                          // class, weight
                             0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,  // body 65536
                             0x00, 0x00};                                     // no flags
  CHECK(hex(header_payload(65536, {})) == hex(expected));
  content_header h;
  h.properties.app_id = "stale";
  REQUIRE_FALSE(decode_content_header(view(expected), h));
  CHECK(h.body_size == 65536);
  CHECK(h.properties == basic_properties{});
}

TEST_CASE("decoding into the same header again leaves exactly the new properties") {
  basic_properties shorter;
  shorter.content_type = "c";
  shorter.headers = field_table{}.add("k", "v");
  shorter.reply_to = std::string(100, 'r');
  basic_properties longer = all_properties();
  longer.content_type = std::string(70, 't');
  longer.reply_to = "amq.rabbitmq.reply-to";
  content_header h;
  for (const basic_properties* p : {&longer, &shorter, &longer, &shorter, &longer}) {
    REQUIRE_FALSE(decode_content_header(view(header_payload(1, *p)), h));
    CHECK(h.properties == *p);
  }
  REQUIRE_FALSE(decode_content_header(view(header_payload(1, {})), h));
  CHECK(h.properties == basic_properties{});
}

TEST_CASE("malformed content headers are refused") {
  const byte_vec good = header_payload(5, all_properties());
  content_header h;
  SUBCASE("every strict prefix is truncated") {
    for (std::size_t n = 0; n < good.size(); ++n) {
      CAPTURE(n);
      CHECK(decode_content_header(bytes_view(good.data(), n), h) == errc::truncated);
    }
  }
  SUBCASE("trailing bytes") {
    byte_vec b = good;
    b.push_back(0);
    CHECK(decode_content_header(view(b), h) == errc::trailing_bytes);
  }
  SUBCASE("a class other than basic") {
    byte_vec b = good;
    b[1] = 0x32;  // queue
    CHECK(decode_content_header(view(b), h) == errc::bad_content_header);
    b[0] = 0xFF;
    CHECK(decode_content_header(view(b), h) == errc::bad_content_header);
  }
  SUBCASE("reserved flag bit 1") {
    const byte_vec b = {0x00, 0x3C, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02};
    CHECK(decode_content_header(view(b), h) == errc::bad_content_header);
  }
  SUBCASE("a continuation word that announces properties basic does not have") {
    const byte_vec b = {0x00, 0x3C, 0x00, 0x00, 0, 0,    0,
                        0,    0,    0,    0,    0, 0x00, 0x01,  // bit 0: another flag word follows
                        0x80, 0x00};                            // ... announcing a 16th property
    CHECK(decode_content_header(view(b), h) == errc::bad_content_header);
  }
  SUBCASE("an empty continuation word is fine") {
    const byte_vec b = {0x00, 0x3C, 0x00, 0x00, 0,    0,    0,
                        0,    0,    0,    0,    0x07, 0x10, 0x01,  // delivery-mode, continuation
                        0x00, 0x00,                                // continuation: nothing more
                        0x02};                                     // delivery-mode 2
    REQUIRE_FALSE(decode_content_header(view(b), h));
    CHECK(h.body_size == 7);
    CHECK(h.properties.delivery_mode == std::uint8_t{2});
  }
  SUBCASE("a property whose length runs past the end") {
    const byte_vec b = {
        0x00, 0x3C, 0x00, 0x00, 0,    0,    0,    0,
        0,    0,    0,    0,    0x80, 0x00, 0x10, 'a'};  // content-type of 16 bytes, 1 present
    CHECK(decode_content_header(view(b), h) == errc::truncated);
  }
  SUBCASE("an unknown letter in the headers table") {
    const byte_vec b = {0x00, 0x3C, 0x00, 0x00, 0,    0,    0,    0,    0,   0,  0,
                        0,    0x20, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 'k', '?'};
    CHECK(decode_content_header(view(b), h) == errc::unknown_field_type);
  }
}

TEST_CASE("encode_publish lays method, header and body frames out as worked out by hand") {
  basic_properties props;
  props.delivery_mode = 2;
  byte_buffer out;
  REQUIRE_FALSE(
      encode_publish(out, {.channel = 5, .exchange = "ex", .routing_key = "rk", .immediate = true},
                     props, as_bytes("hello"), 131072));
  const byte_vec method = {
      0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x0D,  // method frame, channel 5, 13 bytes
      0x00, 0x3C, 0x00, 0x28,                    // basic.publish
      0x00, 0x00,                                // ticket
      0x02, 'e',  'x',  0x02, 'r',  'k',         // exchange, routing-key
      0x02,                                      // immediate (bit 1)
      0xCE,                                      // frame-end
  };
  const byte_vec header = {
      0x02, 0x00, 0x05, 0x00, 0x00, 0x00, 0x0F,        // header frame, 15 bytes
      0x00, 0x3C, 0x00, 0x00,                          // basic, weight 0
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,  // body size 5
      0x10, 0x00,                                      // flags: delivery-mode
      0x02,                                            // persistent
      0xCE,                                            // frame-end
  };
  const byte_vec body = {
      0x03, 0x00, 0x05, 0x00, 0x00, 0x00, 0x05,  // body frame, 5 bytes
      'h',  'e',  'l',  'l',  'o',               // the body
      0xCE,                                      // frame-end
  };
  const byte_vec expected = concat({method, header, body});
  CHECK(hex(out) == hex(expected));
}

TEST_CASE("encode_publish: no properties, empty body, appended after what is there") {
  byte_buffer out;
  out.append("xy", 2);
  REQUIRE_FALSE(encode_publish(out, {.channel = 1, .mandatory = true}, {}, {}, 4096));
  const byte_vec expected = {
      'x',  'y',                                       // what was already there
      0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09,        // method frame, 9 bytes
      0x00, 0x3C, 0x00, 0x28, 0x00, 0x00,              // basic.publish, ticket
      0x00, 0x00,                                      // default exchange, empty key
      0x01,                                            // mandatory
      0xCE,                                            // frame-end
      0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0E,        // header frame, 14 bytes
      0x00, 0x3C, 0x00, 0x00,                          // basic, weight 0
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // body size 0
      0x00, 0x00,                                      // no properties
      0xCE,                                            // frame-end; no body frame at all
  };
  CHECK(hex(out) == hex(expected));
}

TEST_CASE("encode_publish splits the body at frame_max") {
  // frame_max 4096 leaves 4088 bytes of payload per body frame.
  const std::string body = body_of(4088 * 2 + 10);
  basic_properties props;
  props.content_type = "text/plain";
  byte_buffer out;
  REQUIRE_FALSE(encode_publish(out, {.channel = 3, .exchange = "e", .routing_key = "k"}, props,
                               as_bytes(body), 4096));
  // Method frame: 7 + (4 + 2 + 2 + 2 + 1) + 1 = 19.
  // Header frame: 7 + (12 + 2 + 1 + 10) + 1 = 33.
  const std::size_t first_body = 19 + 33;
  REQUIRE(out.size() == first_body + 3 * 8 + body.size());
  const std::uint8_t* p = out.data();
  CHECK(hex(bytes_view(p + 19, 7)) == "02 00 03 00 00 00 19");         // header frame, 25 bytes
  const byte_vec frame1 = {0x03, 0x00, 0x03, 0x00, 0x00, 0x0F, 0xF8};  // 4088
  const byte_vec frame3 = {0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x0A};  // 10
  CHECK(hex(bytes_view(p + first_body, 7)) == hex(frame1));
  CHECK(hex(bytes_view(p + first_body + 4096, 7)) == hex(frame1));
  CHECK(hex(bytes_view(p + first_body + 8192, 7)) == hex(frame3));
  CHECK(p[first_body + 4095] == 0xCE);
  CHECK(p[first_body + 8191] == 0xCE);
  CHECK(p[out.size() - 1] == 0xCE);
  CHECK(std::string(reinterpret_cast<const char*>(p + first_body + 7), 4088) ==
        body.substr(0, 4088));
  CHECK(std::string(reinterpret_cast<const char*>(p + first_body + 8192 + 7), 10) ==
        body.substr(8176));

  // And the whole thing parses back, frame by frame, into the same message.
  const auto frames = parse_all(out.view(), 4096);
  REQUIRE(frames.size() == 5);
  any_method m;
  REQUIRE_FALSE(decode_method(view(frames[0].payload), m));
  CHECK(std::get<basic_publish>(m).exchange == "e");
  content_assembler a;
  a.expect_header();
  std::error_code ec;
  CHECK_FALSE(a.on_header(view(frames[1].payload), ec));
  CHECK_FALSE(a.on_body(view(frames[2].payload), ec));
  CHECK_FALSE(a.on_body(view(frames[3].payload), ec));
  CHECK(a.on_body(view(frames[4].payload), ec));
  CHECK_FALSE(ec);
  CHECK(a.properties() == props);
  CHECK(a.take_body() == body);
}

TEST_CASE("encode_publish: body frame count at the boundaries") {
  for (std::size_t n : {std::size_t{4087}, std::size_t{4088}, std::size_t{4089}, std::size_t{8176},
                        std::size_t{8177}}) {
    CAPTURE(n);
    byte_buffer out;
    const std::string body = body_of(n);
    REQUIRE_FALSE(encode_publish(out, {}, {}, as_bytes(body), 4096));
    const auto frames = parse_all(out.view(), 4096);
    const std::size_t expected_bodies = (n + 4087) / 4088;
    REQUIRE(frames.size() == 2 + expected_bodies);
    std::string joined;
    for (std::size_t i = 2; i < frames.size(); ++i) {
      CHECK(frames[i].type == frame_type::body);
      CHECK(frames[i].payload.size() <= 4088);
      joined.append(frames[i].payload.begin(), frames[i].payload.end());
    }
    CHECK(joined == body);
  }
}

TEST_CASE("prepared_publish writes encode_publish's bytes for every body size and counts frames") {
  publish_frame_args args;
  args.channel = 7;
  args.exchange = "ex";
  args.routing_key = "rk.1";
  args.mandatory = true;
  basic_properties props;
  props.content_type = "text/plain";
  props.priority = 3;
  prepared_publish prepared;
  REQUIRE_FALSE(prepared.prepare(args, props, 4096));
  std::uint64_t other = 0;
  std::uint64_t expected_other = 0;
  byte_buffer a, b;
  // appended after what is there, like the connection's output
  a.append(reinterpret_cast<const std::uint8_t*>("xyz"), 3);
  b.append(reinterpret_cast<const std::uint8_t*>("xyz"), 3);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{64},
                        std::size_t{65}, std::size_t{4087}, std::size_t{4088}, std::size_t{4089},
                        std::size_t{8177}, std::size_t{12265}}) {
    CAPTURE(n);
    const std::string body = body_of(n);
    prepared.encode(a, as_bytes(body), other);
    REQUIRE_FALSE(encode_publish(b, args, props, as_bytes(body), 4096));
    CHECK(hex(a) == hex(b));
    expected_other += (n + 4087) / 4088 - 1;  // modulo 2^64: an empty body is -1
    CHECK(other == expected_other);
  }
}

TEST_CASE("encode_publish: frame_max below 4096 means 4096") {
  byte_buffer a, b;
  const std::string body = body_of(5000);
  REQUIRE_FALSE(encode_publish(a, {}, {}, as_bytes(body), 0));
  REQUIRE_FALSE(encode_publish(b, {}, {}, as_bytes(body), 4096));
  CHECK(hex(a) == hex(b));
}

TEST_CASE("encode_publish refuses what cannot be sent and leaves the buffer as it was") {
  byte_buffer out;
  out.append("keep", 4);
  SUBCASE("exchange over 255 bytes") {
    const std::string longname(256, 'e');
    CHECK(encode_publish(out, {.exchange = longname}, {}, {}, 4096) == errc::string_too_long);
  }
  SUBCASE("routing key over 255 bytes") {
    const std::string longname(256, 'k');
    CHECK(encode_publish(out, {.routing_key = longname}, {}, {}, 4096) == errc::string_too_long);
  }
  SUBCASE("a property shortstr over 255 bytes") {
    basic_properties props;
    props.message_id = std::string(300, 'm');
    CHECK(encode_publish(out, {}, props, as_bytes("x"), 131072) == errc::string_too_long);
  }
  SUBCASE("a content header bigger than frame_max") {
    basic_properties props;
    props.headers = field_table{}.add("big", std::string(5000, 'h'));
    CHECK(encode_publish(out, {}, props, {}, 4096) == errc::frame_too_large);
  }
  CHECK(out.str() == "keep");
}

TEST_CASE("content_assembler collects header and bodies into one message") {
  basic_properties props;
  props.content_type = "application/json";
  props.headers = field_table{}.add("x-retry", std::int32_t{3});
  const byte_vec header = header_payload(10, props);

  content_assembler a;
  CHECK(a.idle());
  a.expect_header();
  CHECK(a.current() == content_assembler::state::want_header);
  std::error_code ec;
  CHECK_FALSE(a.on_header(view(header), ec));
  CHECK_FALSE(ec);
  CHECK(a.current() == content_assembler::state::want_body);
  CHECK_FALSE(a.on_body(as_bytes("0123"), ec));
  CHECK_FALSE(a.on_body(as_bytes(""), ec));  // an empty body frame is harmless
  CHECK(a.on_body(as_bytes("456789"), ec));
  CHECK_FALSE(ec);
  CHECK(a.idle());
  CHECK(a.properties() == props);
  CHECK(a.take_body() == "0123456789");

  // And again, for the next message on the same assembler.
  a.expect_header();
  CHECK_FALSE(a.on_header(view(header_payload(3, {})), ec));
  CHECK(a.on_body(as_bytes("abc"), ec));
  CHECK(a.properties() == basic_properties{});
  CHECK(a.take_body() == "abc");
}

TEST_CASE("content_assembler: an empty body is complete at the header") {
  content_assembler a;
  a.expect_header();
  std::error_code ec;
  CHECK(a.on_header(view(header_payload(0, all_properties())), ec));
  CHECK_FALSE(ec);
  CHECK(a.idle());
  CHECK(a.properties() == all_properties());
  CHECK(a.take_body().empty());
}

TEST_CASE("content_assembler refuses frames out of order and oversized bodies") {
  content_assembler a(100);
  std::error_code ec;
  SUBCASE("a header when none is expected") {
    CHECK_FALSE(a.on_header(view(header_payload(1, {})), ec));
    CHECK(ec == errc::unexpected_frame);
  }
  SUBCASE("a body before the header") {
    CHECK_FALSE(a.on_body(as_bytes("x"), ec));
    CHECK(ec == errc::unexpected_frame);
    a.expect_header();
    CHECK_FALSE(a.on_body(as_bytes("x"), ec));
    CHECK(ec == errc::unexpected_frame);
  }
  SUBCASE("bodies that overrun the declared size") {
    a.expect_header();
    CHECK_FALSE(a.on_header(view(header_payload(4, {})), ec));
    CHECK_FALSE(a.on_body(as_bytes("ab"), ec));
    CHECK_FALSE(a.on_body(as_bytes("cde"), ec));
    CHECK(ec == errc::body_size_mismatch);
  }
  SUBCASE("a declared size over the limit") {
    a.expect_header();
    CHECK_FALSE(a.on_header(view(header_payload(101, {})), ec));
    CHECK(ec == errc::message_too_large);
  }
  SUBCASE("a malformed header") {
    a.expect_header();
    byte_vec h = header_payload(1, {});
    h[1] = 0x14;  // class 20
    CHECK_FALSE(a.on_header(view(h), ec));
    CHECK(ec == errc::bad_content_header);
  }
  SUBCASE("reset drops a message half way") {
    a.expect_header();
    CHECK_FALSE(a.on_header(view(header_payload(4, {})), ec));
    CHECK_FALSE(a.on_body(as_bytes("ab"), ec));
    a.reset();
    CHECK(a.idle());
    CHECK_FALSE(a.on_body(as_bytes("cd"), ec));
    CHECK(ec == errc::unexpected_frame);
  }
}

TEST_CASE("content_assembler does not allocate for a size it has only been told about") {
  content_assembler a;  // default limit 512 MiB
  a.expect_header();
  std::error_code ec;
  const byte_vec header = header_payload(400u << 20, {});
  reset_largest_allocation();
  CHECK_FALSE(a.on_header(view(header), ec));
  CHECK_FALSE(ec);
  CHECK(largest_allocation() <= (1u << 20) + 64);
}

TEST_CASE("encode_flat writes exactly what encode writes, for every subset of the flat properties") {
  // The 13 properties other than headers, each set to a value of its own.
  basic_properties all;
  all.content_type = "application/json";
  all.content_encoding = "gzip";
  all.delivery_mode = 2;
  all.priority = 9;
  all.correlation_id = "corr";
  all.reply_to = "amq.rabbitmq.reply-to";
  all.expiration = "60000";
  all.message_id = "m-1";
  all.timestamp = warren::timestamp{1700000000};
  all.type = "t";
  all.user_id = "guest";
  all.app_id = "warren";
  all.cluster_id = "c";
  std::uint8_t flat[basic_properties::max_flat_size];
  for (std::uint32_t mask = 0; mask < (1u << 13); mask += 7) {
    basic_properties p;
    int bit = 0;
    auto take = [&](auto member) {
      if (mask & (1u << bit++)) p.*member = all.*member;
    };
    take(&basic_properties::content_type);
    take(&basic_properties::content_encoding);
    take(&basic_properties::delivery_mode);
    take(&basic_properties::priority);
    take(&basic_properties::correlation_id);
    take(&basic_properties::reply_to);
    take(&basic_properties::expiration);
    take(&basic_properties::message_id);
    take(&basic_properties::timestamp);
    take(&basic_properties::type);
    take(&basic_properties::user_id);
    take(&basic_properties::app_id);
    take(&basic_properties::cluster_id);
    byte_buffer expected;
    writer w(expected);
    p.encode(w);
    REQUIRE(w.ok());
    std::uint8_t* end = p.encode_flat(flat);
    REQUIRE(end != nullptr);
    CHECK(static_cast<std::size_t>(end - flat) == expected.size());
    CHECK(std::equal(flat, end, expected.data()));
  }
  SUBCASE("it declines what only encode() handles") {
    basic_properties h;
    h.headers.emplace();
    CHECK(h.encode_flat(flat) == nullptr);
    basic_properties longstr;
    longstr.message_id = std::string(256, 'x');
    CHECK(longstr.encode_flat(flat) == nullptr);
  }
}

TEST_CASE("ack, nack and reject frames written in one step match the generic encoder") {
  // The overloads in client/wire.hpp against the template in codec/frame.hpp
  // (named explicitly), for every flag and tags at both ends of the range.
  auto same = [](std::uint16_t ch, const auto& m) {
    byte_buffer direct;
    byte_buffer generic;
    REQUIRE_FALSE(write_method_frame(direct, ch, m));
    REQUIRE_FALSE(write_method_frame<std::decay_t<decltype(m)>>(generic, ch, m));
    CHECK(direct.size() == 21);
    CHECK(hex(direct.view()) == hex(generic.view()));
  };
  for (std::uint64_t tag : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0x0102030405060708},
                            ~std::uint64_t{0}}) {
    for (std::uint16_t ch : {std::uint16_t{1}, std::uint16_t{0xABCD}}) {
      for (bool a : {false, true}) {
        basic_ack ack;
        ack.delivery_tag = tag;
        ack.multiple = a;
        same(ch, ack);
        basic_reject reject;
        reject.delivery_tag = tag;
        reject.requeue = a;
        same(ch, reject);
        for (bool b : {false, true}) {
          basic_nack nack;
          nack.delivery_tag = tag;
          nack.multiple = a;
          nack.requeue = b;
          same(ch, nack);
        }
      }
    }
  }
  // Appended after what the buffer already holds, as the core's output does.
  byte_buffer out;
  out.append("xy", 2);
  basic_ack ack;
  ack.delivery_tag = 7;
  REQUIRE_FALSE(write_method_frame(out, 3, ack));
  CHECK(out.size() == 23);
  CHECK(out.str().substr(0, 2) == "xy");
}
