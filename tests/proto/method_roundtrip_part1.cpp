// Part 1 of the methods' round trip: see method_roundtrip.hpp.
#include "method_roundtrip.hpp"

namespace warren::test::roundtrip {

void round_trip_part1(method_counts& covered) { round_trip_part<1>(covered); }

}  // namespace warren::test::roundtrip
