// Watches the global allocator so a test can assert that malformed input
// never makes a decoder allocate in proportion to a length it has not seen,
// or that a hot path does not allocate at all.
// alloc_probe.cpp replaces the global operator new for the test executable.
#pragma once

#include <cstddef>

namespace warren::test {

// Largest single allocation request since the last reset_largest_allocation().
std::size_t largest_allocation() noexcept;
void reset_largest_allocation() noexcept;
// Allocations made so far (operator new and new[]).
std::size_t allocation_count() noexcept;

}  // namespace warren::test
