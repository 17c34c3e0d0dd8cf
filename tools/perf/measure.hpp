// The clock and CPU accounting every throughput program uses (warren-perf,
// the blasters, the null broker and the rabbitmq-c peer), so that all of them
// measure the same way. Header-only and free of warren and Asio.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>

namespace warren::perf {

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

}  // namespace warren::perf
