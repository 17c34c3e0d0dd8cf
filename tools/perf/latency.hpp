// Exact latency percentiles at microsecond resolution.
//
// An interval keeps every sample it saw (4 bytes each) and is summarised by
// selection, not sampling. The whole run keeps an exact histogram: one
// counter per microsecond below 2^20 us (about a second), and a map of the
// rare slower ones, so a long run costs a fixed 8 MiB, not memory per message.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <vector>

namespace warren::perf {

// min, median, 75th, 95th, 99th percentile in microseconds (nearest rank).
using percentiles = std::array<std::uint64_t, 5>;
inline constexpr std::array<double, 5> percentile_points = {0, 50, 75, 95, 99};

class latency_samples {
 public:
  void add(std::uint64_t ns) {
    const std::uint64_t us = ns / 1000;
    samples_.push_back(us > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(us));
  }
  std::size_t size() const noexcept { return samples_.size(); }
  bool empty() const noexcept { return samples_.empty(); }
  // Percentiles of the samples held (reorders them).
  percentiles summarise();
  const std::vector<std::uint32_t>& samples() const noexcept { return samples_; }
  void clear() noexcept { samples_.clear(); }

 private:
  std::vector<std::uint32_t> samples_;
};

class latency_histogram {
 public:
  void add_all(const std::vector<std::uint32_t>& us);
  std::uint64_t count() const noexcept { return count_; }
  percentiles summarise() const;

 private:
  static constexpr std::uint32_t dense_limit = 1u << 20;
  std::vector<std::uint64_t> dense_;
  std::map<std::uint32_t, std::uint64_t> sparse_;
  std::uint64_t count_ = 0;
};

// 1-based nearest rank of percentile p among n samples.
std::uint64_t nearest_rank(double p, std::uint64_t n);

}  // namespace warren::perf
