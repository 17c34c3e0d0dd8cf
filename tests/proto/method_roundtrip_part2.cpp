// Part 2 of the methods' round trip: see method_roundtrip.hpp.
#include "method_roundtrip.hpp"

namespace warren::test::roundtrip {

void round_trip_part2(method_counts& covered) { round_trip_part<2>(covered); }

}  // namespace warren::test::roundtrip
