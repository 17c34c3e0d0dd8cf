// The incremental frame parser, fed the input in arbitrary chunks, must agree
// with a whole-buffer reading of the same bytes: the same frames in the same
// order, then the same error or the same unfinished tail.
//
// Input: byte 0 picks frame_max, bytes 1-2 seed the chunk sizes, the rest is
// the stream.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <vector>

#include "fuzz_check.hpp"
#include "warren/codec/frame.hpp"

using namespace warren;

namespace {

struct frame_copy {
  std::uint8_t type;
  std::uint16_t channel;
  std::vector<std::uint8_t> payload;
  bool operator==(const frame_copy&) const = default;
};

// The frame format read straight off the spec, with no buffering at all.
std::error_code reference_parse(const std::uint8_t* p, std::size_t n, std::uint32_t frame_max,
                                std::vector<frame_copy>& out, std::size_t& tail) {
  const std::uint32_t limit = std::max(frame_max, frame_min_size);
  std::size_t at = 0;
  for (;;) {
    tail = n - at;
    if (tail < 7) return {};
    const std::uint8_t type = p[at];
    if (type != 1 && type != 2 && type != 3 && type != 8) {
      if (type == 'A') {
        if (tail < 8) return {};
        return std::memcmp(p + at, "AMQP", 4) == 0 ? errc::protocol_mismatch : errc::bad_frame_type;
      }
      return errc::bad_frame_type;
    }
    const std::uint32_t size = (std::uint32_t{p[at + 3]} << 24) | (std::uint32_t{p[at + 4]} << 16) |
                               (std::uint32_t{p[at + 5]} << 8) | p[at + 6];
    if (std::uint64_t{size} + 8 > limit) return errc::frame_too_large;
    if (tail < std::size_t{size} + 8) return {};
    if (p[at + 7 + size] != 0xCE) return errc::bad_frame_end;
    out.push_back({type, static_cast<std::uint16_t>((p[at + 1] << 8) | p[at + 2]),
                   std::vector<std::uint8_t>(p + at + 7, p + at + 7 + size)});
    at += 8 + size;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  static constexpr std::uint32_t frame_maxes[] = {0, 4096, 4097, 5000, 8192, 131072};
  const std::uint32_t frame_max = frame_maxes[data[0] % 6];
  std::uint32_t rng = (std::uint32_t{data[1]} << 8) | data[2];
  data += 3;
  size -= 3;

  std::vector<frame_copy> expected;
  std::size_t expected_tail = 0;
  const std::error_code expected_ec =
      reference_parse(data, size, frame_max, expected, expected_tail);

  frame_parser parser(frame_max);
  std::vector<frame_copy> got;
  std::error_code ec;
  std::size_t at = 0;
  bool failed = false;
  while (!failed) {
    frame_view f;
    const auto st = parser.next(f, ec);
    if (st == frame_parser::status::frame) {
      FUZZ_CHECK(f.payload.size() + 8 <= std::max(frame_max, frame_min_size));
      got.push_back({static_cast<std::uint8_t>(f.type), f.channel,
                     std::vector<std::uint8_t>(f.payload.begin(), f.payload.end())});
      continue;
    }
    if (st == frame_parser::status::error) {
      failed = true;
      break;
    }
    FUZZ_CHECK(!ec);
    if (at == size) break;
    rng = rng * 1103515245u + 12345u;
    std::size_t n = 1 + (rng >> 16) % 97;
    n = std::min(n, size - at);
    if ((rng >> 8) & 1) {
      parser.feed(bytes_view(data + at, n));
    } else {
      auto room = parser.prepare(n);
      FUZZ_CHECK(room.size() >= n);
      std::memcpy(room.data(), data + at, n);
      parser.commit(n);
    }
    at += n;
  }

  FUZZ_CHECK(got == expected);
  FUZZ_CHECK(ec == expected_ec);
  if (!failed) {
    FUZZ_CHECK(at == size);
    FUZZ_CHECK(parser.buffered() == expected_tail);
  } else {
    // A failed parser stays failed.
    frame_view f;
    std::error_code again;
    FUZZ_CHECK(parser.next(f, again) == frame_parser::status::error && again == ec);
  }
  return 0;
}
