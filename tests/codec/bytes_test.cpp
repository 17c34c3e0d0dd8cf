#include "warren/codec/bytes.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <string>

#include "test_bytes.hpp"

using namespace warren;
using namespace warren::test;

TEST_CASE("writer lays integers out big-endian") {
  byte_buffer buf;
  writer w(buf);
  w.u8(0x01);
  w.u16(0x0203);
  w.u32(0x04050607);
  w.u64(0x08090A0B0C0D0E0Full);
  w.i8(-1);
  w.i16(-2);
  w.i32(-3);
  w.i64(-4);
  w.f32(1.5f);
  w.f64(-2.5);
  REQUIRE(w.ok());
  const byte_vec expected = {
      0x01,                                            // u8
      0x02, 0x03,                                      // u16
      0x04, 0x05, 0x06, 0x07,                          // u32
      0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,  // u64
      0xFF,                                            // i8 -1
      0xFF, 0xFE,                                      // i16 -2
      0xFF, 0xFF, 0xFF, 0xFD,                          // i32 -3
      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFC,  // i64 -4
      0x3F, 0xC0, 0x00, 0x00,                          // 1.5f: sign 0, exp 127, mantissa .5
      0xC0, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // -2.5: sign 1, exp 1024, mantissa .25
  };
  CHECK(hex(buf) == hex(expected));

  reader r(buf.view());
  CHECK(r.u8() == 0x01);
  CHECK(r.u16() == 0x0203);
  CHECK(r.u32() == 0x04050607u);
  CHECK(r.u64() == 0x08090A0B0C0D0E0Full);
  CHECK(r.i8() == -1);
  CHECK(r.i16() == -2);
  CHECK(r.i32() == -3);
  CHECK(r.i64() == -4);
  CHECK(r.f32() == 1.5f);
  CHECK(r.f64() == -2.5);
  CHECK(r.ok());
  CHECK(r.empty());
}

TEST_CASE("short and long strings carry their length prefix") {
  byte_buffer buf;
  writer w(buf);
  w.shortstr("ab");
  w.longstr(std::string("x\0y", 3));
  w.shortstr("");
  REQUIRE(w.ok());
  const byte_vec expected = {
      0x02, 'a',  'b',                      // shortstr: u8 length
      0x00, 0x00, 0x00, 0x03, 'x', 0, 'y',  // longstr: u32 length, binary-safe
      0x00,                                 // empty shortstr
  };
  CHECK(hex(buf) == hex(expected));
  reader r(buf.view());
  CHECK(r.shortstr() == "ab");
  CHECK(r.longstr() == std::string_view("x\0y", 3));
  CHECK(r.shortstr().empty());
  CHECK(r.ok());
  CHECK(r.empty());
}

TEST_CASE("a shortstr over 255 bytes fails the writer and writes nothing") {
  byte_buffer buf;
  writer w(buf);
  w.shortstr(std::string(255, 'a'));
  CHECK(w.ok());
  CHECK(buf.size() == 256);
  w.shortstr(std::string(256, 'a'));
  CHECK(w.error() == errc::string_too_long);
  CHECK(buf.size() == 256);
}

TEST_CASE("the reader never reads past its end") {
  const byte_vec three = {0x01, 0x02, 0x03};
  SUBCASE("a fixed-size read that does not fit") {
    reader r(view(three));
    CHECK(r.u32() == 0);
    CHECK(r.error() == errc::truncated);
    // Failed for good: even a read that would fit now returns zero.
    CHECK(r.u8() == 0);
    CHECK(r.remaining() == 0);
  }
  SUBCASE("a shortstr whose length runs past the end") {
    const byte_vec b = {0x05, 'a', 'b'};
    reader r(view(b));
    CHECK(r.shortstr().empty());
    CHECK(r.error() == errc::truncated);
  }
  SUBCASE("a longstr claiming 4 GiB") {
    const byte_vec b = {0xFF, 0xFF, 0xFF, 0xFF, 'a'};
    reader r(view(b));
    CHECK(r.longstr().empty());
    CHECK(r.error() == errc::truncated);
  }
  SUBCASE("bytes() past the end") {
    reader r(view(three));
    CHECK(r.bytes(4).empty());
    CHECK(r.error() == errc::truncated);
  }
  SUBCASE("the first error sticks") {
    reader r(view(three));
    r.fail(errc::bad_content_header);
    r.u32();
    CHECK(r.error() == errc::bad_content_header);
  }
}

TEST_CASE("byte_buffer keeps its capacity across clear and consume") {
  byte_buffer b;
  b.append("hello world", 11);
  const auto cap = b.capacity();
  b.consume(6);
  CHECK(b.str() == "world");
  b.clear();
  CHECK(b.empty());
  CHECK(b.capacity() == cap);
  b.append("abc", 3);
  byte_buffer copy = b;
  CHECK(copy.str() == "abc");
  byte_buffer moved = std::move(copy);
  CHECK(moved.str() == "abc");
  CHECK(copy.size() == 0);
}

TEST_CASE("copy_bytes and copy_short_first copy exactly n bytes at every size class") {
  // Every size up to past the largest class, at unaligned offsets: the bytes
  // copied match, and nothing before or after them is touched.
  std::string src(300, '\0');
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<char>('!' + i % 90);
  for (std::size_t n = 0; n <= 260; ++n) {
    CAPTURE(n);
    for (int which = 0; which < 2; ++which) {
      CAPTURE(which);
      std::string dst(n + 34, '~');
      if (which == 0)
        detail::copy_bytes(dst.data() + 17, src.data() + 3, n);
      else
        detail::copy_short_first(dst.data() + 17, src.data() + 3, n);
      CHECK(dst.substr(17, n) == src.substr(3, n));
      CHECK(dst.substr(0, 17) == std::string(17, '~'));
      CHECK(dst.substr(17 + n) == std::string(17, '~'));
    }
  }
}

TEST_CASE("error codes have a category and a message") {
  std::error_code ec = errc::frame_too_large;
  CHECK(std::string(ec.category().name()) == "warren");
  CHECK(ec.message() == "frame larger than the negotiated frame_max");
  CHECK(ec != std::error_code(errc::truncated));
}

TEST_CASE("strings of every length up to 300 bytes are copied exactly, neighbours intact") {
  for (std::size_t n = 0; n <= 300; ++n) {
    CAPTURE(n);
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + n);
    byte_buffer buf;
    writer w(buf);
    w.u8(0xA5);  // guard before
    if (n <= 255) w.shortstr(s);
    w.longstr(s);
    buf.append(s.data(), s.size());
    w.u8(0x5A);  // guard after
    REQUIRE(w.ok());
    CHECK(buf.size() == 1 + (n <= 255 ? 1 + n : 0) + 4 + n + n + 1);
    reader r(buf.view());
    CHECK(r.u8() == 0xA5);
    if (n <= 255) CHECK(r.shortstr() == s);
    CHECK(r.longstr() == s);
    const bytes_view raw = r.bytes(n);
    CHECK(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()) == s);
    CHECK(r.u8() == 0x5A);
    CHECK(r.ok());
    CHECK(r.empty());
  }
}
