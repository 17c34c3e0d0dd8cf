// Small helpers shared by the benchmark-only programs that speak AMQP without
// the client (the null broker and the blasters): method frames into a
// buffer and PerfTest-style message bodies; the clock and CPU time come from
// tools/perf/measure.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "warren/codec/bytes.hpp"
#include "warren/codec/frame.hpp"
#include "tools/perf/measure.hpp"
#include "warren/proto/methods.hpp"

namespace warren::bench {

using perf::cpu_now;
using perf::cpu_times;
using perf::now_ns;

template <class M>
void put_method(byte_buffer& out, std::uint16_t ch, const M& m) {
  write_method_frame(out, ch, m);
}

// A PerfTest body: bytes 0-3 the sequence number, 4-11 the send time in ns
// (both big-endian), then padding.
inline void stamp_body(std::uint8_t* body, std::uint32_t seq, std::uint64_t sent_ns) noexcept {
  detail::store32(body, seq);
  detail::store64(body + 4, sent_ns);
}

inline std::string make_body(std::size_t size) {
  std::string b(size < 12 ? 12 : size, '\0');
  for (std::size_t i = 12; i < b.size(); ++i) b[i] = static_cast<char>('a' + i % 26);
  return b;
}

}  // namespace warren::bench
