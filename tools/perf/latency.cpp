#include "tools/perf/latency.hpp"

#include <algorithm>
#include <cmath>

namespace warren::perf {

std::uint64_t nearest_rank(double p, std::uint64_t n) {
  if (n == 0) return 0;
  if (p <= 0) return 1;
  auto r = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  return std::clamp<std::uint64_t>(r, 1, n);
}

percentiles latency_samples::summarise() {
  percentiles out{};
  const std::size_t n = samples_.size();
  if (n == 0) return out;
  // Ascending ranks: each selection only needs to look right of the last.
  auto from = samples_.begin();
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto k = static_cast<std::ptrdiff_t>(nearest_rank(percentile_points[i], n) - 1);
    auto at = samples_.begin() + k;
    std::nth_element(from, at, samples_.end());
    out[i] = *at;
    from = at;
  }
  return out;
}

void latency_histogram::add_all(const std::vector<std::uint32_t>& us) {
  if (us.empty()) return;
  if (dense_.empty()) dense_.assign(dense_limit, 0);
  for (std::uint32_t v : us) {
    if (v < dense_limit)
      ++dense_[v];
    else
      ++sparse_[v];
  }
  count_ += us.size();
}

percentiles latency_histogram::summarise() const {
  percentiles out{};
  if (count_ == 0) return out;
  std::size_t next = 0;
  std::uint64_t seen = 0;
  auto visit = [&](std::uint32_t value, std::uint64_t n) {
    seen += n;
    while (next < out.size() && nearest_rank(percentile_points[next], count_) <= seen)
      out[next++] = value;
  };
  for (std::uint32_t v = 0; v < dense_.size() && next < out.size(); ++v)
    if (dense_[v] != 0) visit(v, dense_[v]);
  for (const auto& [v, n] : sparse_) {
    if (next == out.size()) break;
    visit(v, n);
  }
  return out;
}

}  // namespace warren::perf
