#include "warren/codec/frame.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "alloc_probe.hpp"
#include "test_bytes.hpp"

using namespace warren;
using namespace warren::test;

namespace {

struct owned_frame {
  frame_type type{};
  std::uint16_t channel = 0;
  byte_vec payload;
  bool operator==(const owned_frame&) const = default;
};

byte_vec serialize(const std::vector<owned_frame>& frames) {
  byte_buffer buf;
  for (const auto& f : frames) write_frame(buf, f.type, f.channel, view(f.payload));
  return to_vec(buf.view());
}

// Drains every whole frame the parser has, copying payloads out since they
// are only valid until the next call. Returns the status that stopped it.
frame_parser::status drain(frame_parser& p, std::vector<owned_frame>& out, std::error_code& ec) {
  for (;;) {
    frame_view f;
    const auto st = p.next(f, ec);
    if (st != frame_parser::status::frame) return st;
    out.push_back({f.type, f.channel, to_vec(f.payload)});
  }
}

// A random mix of frames: small methods, headers, bodies up to the largest
// payload frame_max allows, and heartbeats.
std::vector<owned_frame> random_frames(std::mt19937& rng, std::uint32_t frame_max, int count) {
  std::vector<owned_frame> frames;
  const std::size_t max_payload = frame_max - frame_overhead;
  for (int i = 0; i < count; ++i) {
    owned_frame f;
    switch (rng() % 4) {
      case 0: f.type = frame_type::method; break;
      case 1: f.type = frame_type::header; break;
      case 2: f.type = frame_type::body; break;
      default: f.type = frame_type::heartbeat; break;
    }
    if (f.type != frame_type::heartbeat) {
      f.channel = static_cast<std::uint16_t>(rng());
      std::size_t n = 0;
      switch (rng() % 4) {
        case 0: n = 0; break;
        case 1: n = rng() % 32; break;
        case 2: n = rng() % (max_payload + 1); break;
        default: n = max_payload; break;
      }
      f.payload.resize(n);
      for (auto& b : f.payload) b = static_cast<std::uint8_t>(rng());
      // A payload may itself contain the frame-end octet and look like frames.
      if (n > 8) f.payload[n / 2] = frame_end_octet;
    }
    frames.push_back(std::move(f));
  }
  return frames;
}

byte_vec frame_header(std::uint8_t type, std::uint16_t channel, std::uint32_t size) {
  return {type,
          static_cast<std::uint8_t>(channel >> 8),
          static_cast<std::uint8_t>(channel),
          static_cast<std::uint8_t>(size >> 24),
          static_cast<std::uint8_t>(size >> 16),
          static_cast<std::uint8_t>(size >> 8),
          static_cast<std::uint8_t>(size)};
}

}  // namespace

TEST_CASE("write_frame lays out type, channel, size, payload and 0xCE") {
  byte_buffer buf;
  const byte_vec payload = {0xAA, 0xBB, 0xCC};
  write_frame(buf, frame_type::body, 0x0102, view(payload));
  const byte_vec expected = {
      0x03,                    // type: body
      0x01, 0x02,              // channel 258
      0x00, 0x00, 0x00, 0x03,  // payload size
      0xAA, 0xBB, 0xCC,        // payload
      0xCE,                    // frame-end
  };
  CHECK(hex(buf) == hex(expected));
}

TEST_CASE("begin_frame/finish_frame patch the size in") {
  byte_buffer buf;
  writer w(buf);
  const auto at = begin_frame(w, frame_type::method, 7);
  w.u32(0x000A000B);
  finish_frame(w, at);
  CHECK(hex(buf) == "01 00 07 00 00 00 04 00 0a 00 0b ce");
}

TEST_CASE("the heartbeat frame is type 8, channel 0, empty") {
  byte_buffer buf;
  write_heartbeat(buf);
  CHECK(hex(buf) == "08 00 00 00 00 00 00 ce");

  frame_parser p;
  p.feed(buf.view());
  p.feed(buf.view());
  frame_view f;
  std::error_code ec;
  for (int i = 0; i < 2; ++i) {
    REQUIRE(p.next(f, ec) == frame_parser::status::frame);
    CHECK(f.type == frame_type::heartbeat);
    CHECK(f.channel == 0);
    CHECK(f.payload.empty());
  }
  CHECK(p.next(f, ec) == frame_parser::status::need_more);
  CHECK_FALSE(ec);
  CHECK(p.buffered() == 0);
}

TEST_CASE("the protocol header is AMQP 0 0 9 1") {
  const byte_vec expected = {'A', 'M', 'Q', 'P', 0x00, 0x00, 0x09, 0x01};
  CHECK(hex(bytes_view(protocol_header)) == hex(expected));
}

TEST_CASE("fed one byte at a time, the parser yields exactly the frames") {
  std::mt19937 rng(1);
  const auto frames = random_frames(rng, 4096, 60);
  const byte_vec stream = serialize(frames);
  frame_parser p(4096);
  std::vector<owned_frame> got;
  std::error_code ec;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    p.feed(bytes_view(&stream[i], 1));
    const std::size_t before = got.size();
    REQUIRE(drain(p, got, ec) == frame_parser::status::need_more);
    // A frame comes out exactly when its last byte (the frame-end) goes in.
    if (got.size() != before) {
      CHECK(stream[i] == frame_end_octet);
      CHECK(p.buffered() == 0);
    }
  }
  CHECK_FALSE(ec);
  CHECK(got.size() == frames.size());
  CHECK(got == frames);
}

TEST_CASE("random splits, through feed and prepare/commit, yield exactly the frames") {
  // Big frames make for big streams: fewer rounds at the larger frame_max.
  for (auto [frame_max, rounds] : {std::pair{4096u, 300u}, std::pair{131072u, 40u}}) {
    for (unsigned seed = 0; seed < rounds; ++seed) {
      CAPTURE(frame_max);
      CAPTURE(seed);
      std::mt19937 rng(seed);
      const auto frames = random_frames(rng, frame_max, 1 + static_cast<int>(rng() % 40));
      const byte_vec stream = serialize(frames);
      frame_parser p(frame_max);
      std::vector<owned_frame> got;
      std::error_code ec;
      std::size_t at = 0;
      while (at < stream.size()) {
        // Chunks from 1 byte to a few frames' worth, like socket reads.
        const bool small = rng() % 2 != 0;
        std::size_t n = 1 + rng() % (small ? 16 : 3 * frame_max);
        n = std::min(n, stream.size() - at);
        if (rng() % 2) {
          p.feed(bytes_view(stream.data() + at, n));
        } else {
          // Ask for more room than is used, as a reader would.
          auto room = p.prepare(n + rng() % 100);
          REQUIRE(room.size() >= n);
          std::memcpy(room.data(), stream.data() + at, n);
          p.commit(n);
        }
        at += n;
        if (drain(p, got, ec) != frame_parser::status::need_more) break;
      }
      REQUIRE_FALSE(ec);
      CHECK(got == frames);
      CHECK(p.buffered() == 0);
    }
  }
}

TEST_CASE("a partial frame is not handed out") {
  const byte_vec payload = {1, 2, 3, 4};
  byte_buffer buf;
  write_frame(buf, frame_type::method, 1, view(payload));
  frame_view f;
  std::error_code ec;
  for (std::size_t n = 0; n < buf.size(); ++n) {
    frame_parser q;
    q.feed(bytes_view(buf.data(), n));
    CAPTURE(n);
    CHECK(q.next(f, ec) == frame_parser::status::need_more);
    CHECK(q.buffered() == n);
  }
  CHECK_FALSE(ec);
}

TEST_CASE("a frame of exactly frame_max is accepted, one byte more is not") {
  const std::uint32_t frame_max = 8192;
  const std::uint32_t largest_payload = frame_max - 8;  // header 7 + frame-end 1
  std::error_code ec;
  frame_view f;
  {
    frame_parser p(frame_max);
    const byte_vec payload(largest_payload, 0x55);
    byte_buffer buf;
    write_frame(buf, frame_type::body, 3, view(payload));
    CHECK(buf.size() == frame_max);
    p.feed(buf.view());
    REQUIRE(p.next(f, ec) == frame_parser::status::frame);
    CHECK(f.payload.size() == largest_payload);
  }
  {
    frame_parser p(frame_max);
    p.feed(view(frame_header(3, 3, largest_payload + 1)));
    CHECK(p.next(f, ec) == frame_parser::status::error);
    CHECK(ec == errc::frame_too_large);
  }
}

TEST_CASE("a frame over frame_max is rejected from its 7-byte header, before buffering it") {
  frame_parser p(131072);
  const byte_vec header = frame_header(1, 1, 0x7FFFFFF0);
  reset_largest_allocation();
  p.feed(view(header));
  CHECK(p.buffered() == 7);
  frame_view f;
  std::error_code ec;
  CHECK(p.next(f, ec) == frame_parser::status::error);
  CHECK(ec == errc::frame_too_large);
  // Nothing near the declared size was ever asked for.
  CHECK(largest_allocation() < 1024);
  CHECK(p.buffered() == 7);
}

TEST_CASE("frame_max below the protocol minimum (or 0) means 4096") {
  for (std::uint32_t fm : {0u, 512u}) {
    frame_parser p(fm);
    const byte_vec payload(4088, 1);
    byte_buffer buf;
    write_frame(buf, frame_type::body, 1, view(payload));
    p.feed(buf.view());
    frame_view f;
    std::error_code ec;
    CHECK(p.next(f, ec) == frame_parser::status::frame);
    p.feed(view(frame_header(3, 1, 4089)));
    CHECK(p.next(f, ec) == frame_parser::status::error);
    CHECK(ec == errc::frame_too_large);
  }
}

TEST_CASE("set_frame_max applies to frames not yet parsed") {
  frame_parser p(4096);
  p.set_frame_max(65536);
  CHECK(p.frame_max() == 65536);
  const byte_vec payload(60000, 7);
  byte_buffer buf;
  write_frame(buf, frame_type::body, 1, view(payload));
  p.feed(buf.view());
  frame_view f;
  std::error_code ec;
  REQUIRE(p.next(f, ec) == frame_parser::status::frame);
  CHECK(f.payload.size() == 60000);
}

TEST_CASE("a bad frame-end octet is an error, and the parser stays failed") {
  byte_vec b = concat({frame_header(1, 1, 2), {0x00, 0x00, 0xCD}});
  frame_parser p;
  p.feed(view(b));
  frame_view f;
  std::error_code ec;
  CHECK(p.next(f, ec) == frame_parser::status::error);
  CHECK(ec == errc::bad_frame_end);
  byte_buffer hb;
  write_heartbeat(hb);
  p.feed(hb.view());
  ec.clear();
  CHECK(p.next(f, ec) == frame_parser::status::error);
  CHECK(ec == errc::bad_frame_end);
}

TEST_CASE("an unknown frame type is an error") {
  for (std::uint8_t type : {0, 4, 5, 7, 9, 0xCE, 0xFF}) {
    frame_parser p;
    p.feed(view(concat({frame_header(type, 0, 0), {0xCE}})));
    frame_view f;
    std::error_code ec;
    CAPTURE(int(type));
    CHECK(p.next(f, ec) == frame_parser::status::error);
    CHECK(ec == errc::bad_frame_type);
  }
}

TEST_CASE("the server's own protocol header means it refused our version") {
  SUBCASE("AMQP 0-9-1 header echoed back") {
    frame_parser p;
    p.feed(bytes_view(protocol_header));
    frame_view f;
    std::error_code ec;
    CHECK(p.next(f, ec) == frame_parser::status::error);
    CHECK(ec == errc::protocol_mismatch);
  }
  SUBCASE("another version, arriving a byte at a time") {
    const byte_vec other = {'A', 'M', 'Q', 'P', 0x01, 0x01, 0x00, 0x0A};  // AMQP 0-10
    frame_parser p;
    frame_view f;
    std::error_code ec;
    for (std::size_t i = 0; i + 1 < other.size(); ++i) {
      p.feed(bytes_view(&other[i], 1));
      CHECK(p.next(f, ec) == frame_parser::status::need_more);
    }
    p.feed(bytes_view(&other.back(), 1));
    CHECK(p.next(f, ec) == frame_parser::status::error);
    CHECK(ec == errc::protocol_mismatch);
  }
  SUBCASE("something else starting with 'A' is just a bad frame type") {
    const byte_vec http = {'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'};
    frame_parser p;
    p.feed(view(http));
    frame_view f;
    std::error_code ec;
    CHECK(p.next(f, ec) == frame_parser::status::error);
    CHECK(ec == errc::bad_frame_type);
  }
}

TEST_CASE("frames after an error are never handed out") {
  byte_buffer good;
  write_heartbeat(good);
  byte_vec b = concat({to_vec(good.view()), frame_header(1, 1, 1), {0x00, 0x00}});
  write_heartbeat(good);
  frame_parser p;
  p.feed(view(b));
  p.feed(good.view());
  frame_view f;
  std::error_code ec;
  CHECK(p.next(f, ec) == frame_parser::status::frame);
  CHECK(p.next(f, ec) == frame_parser::status::error);
  CHECK(ec == errc::bad_frame_end);
  CHECK(p.next(f, ec) == frame_parser::status::error);
}
