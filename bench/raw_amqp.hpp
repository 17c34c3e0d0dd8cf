// Small helpers shared by the benchmark-only programs that speak AMQP without
// the client (the null broker and the blasters): method frames into a
// buffer, PerfTest-style message bodies, a monotonic clock in nanoseconds and
// the process's CPU time.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "warren/codec/bytes.hpp"
#include "warren/codec/frame.hpp"
#include "warren/proto/methods.hpp"

namespace warren::bench {

template <class M>
void put_method(byte_buffer& out, std::uint16_t ch, const M& m) {
  writer w(out);
  const std::size_t at = begin_frame(w, frame_type::method, ch);
  m.encode(w);
  finish_frame(w, at);
}

// steady_clock in nanoseconds: what PerfTest-style bodies carry as send time.
// CLOCK_MONOTONIC is shared by every process on the machine.
inline std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// User and system CPU seconds of the whole process.
struct cpu_times {
  double user = 0, sys = 0;
  double total() const noexcept { return user + sys; }
  cpu_times operator-(const cpu_times& o) const noexcept { return {user - o.user, sys - o.sys}; }
};
inline cpu_times cpu_now() noexcept {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6,
          static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6};
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
