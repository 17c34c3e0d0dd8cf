// The round trip of tests/proto/method_roundtrip_test.cpp, one method at a
// time: encoded and decoded back with every field set, each field reset in
// turn, every truncation, a trailing byte, and the method's static traits.
// Instantiating it for all of the spec's methods in one translation unit took
// the longest compile of the build, so the methods are split by their index in
// any_method into round_trip_parts ranges, one per method_roundtrip_partN.cpp,
// which the build compiles in parallel. The test counts how often each method
// was covered and requires exactly once for every one.
#pragma once

#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <variant>

#include "../codec/test_bytes.hpp"
#include "method_samples.hpp"
#include "warren/proto/constants.hpp"
#include "warren/proto/methods.hpp"

namespace warren::test::roundtrip {

inline constexpr std::size_t method_count = std::variant_size_v<any_method>;

// covered[I]: how many times the method at index I of any_method round-tripped.
using method_counts = std::array<int, method_count>;

// Part P covers the indices [part_begin(P), part_begin(P + 1)); the ranges are
// disjoint and together cover every index.
inline constexpr std::size_t round_trip_parts = 4;
constexpr std::size_t part_begin(std::size_t part) { return part * method_count / round_trip_parts; }

// Defined in method_roundtrip_part0.cpp ... method_roundtrip_part3.cpp.
void round_trip_part0(method_counts& covered);
void round_trip_part1(method_counts& covered);
void round_trip_part2(method_counts& covered);
void round_trip_part3(method_counts& covered);

template <class M>
byte_vec encode(const M& m) {
  byte_buffer buf;
  writer w(buf);
  m.encode(w);
  REQUIRE(w.ok());
  return to_vec(buf.view());
}

template <std::size_t I>
void round_trip_one(method_counts& covered) {
  using M = std::variant_alternative_t<I, any_method>;
  CAPTURE(M::name);
  const M sample = method_sample<M>::make();
  if constexpr (method_sample<M>::fields.empty())
    CHECK(sample == M{});
  else
    REQUIRE(sample != M{});

  byte_buffer buf;
  writer w(buf);
  sample.encode(w);
  REQUIRE(w.ok());
  CHECK(sample.encoded_size() == buf.size());
  // Class and method ids lead the payload.
  REQUIRE(buf.size() >= 4);
  CHECK(detail::load16(buf.data()) == M::class_index);
  CHECK(detail::load16(buf.data() + 2) == M::method_index);
  CHECK(peek_method_key(buf.view()) == M::key);

  any_method decoded;
  CHECK_FALSE(decode_method(buf.view(), decoded));
  REQUIRE(decoded.index() == I);
  CHECK(std::get<M>(decoded) == sample);

  M direct;
  CHECK_FALSE(decode_method_as(buf.view(), direct));
  CHECK(direct == sample);

  // The variant encoder writes the same bytes.
  byte_buffer via_variant;
  writer vw(via_variant);
  encode_method(vw, any_method(sample));
  CHECK(hex(via_variant) == hex(buf));

  // Every field reaches the wire and the comparison: putting any one field
  // back to its default changes the bytes, and that too round-trips.
  const byte_vec full = to_vec(buf.view());
  for (const auto& field : method_sample<M>::fields) {
    CAPTURE(field.name);
    M changed = sample;
    field.reset(changed);
    CHECK(changed != sample);
    const byte_vec bytes = encode(changed);
    CHECK(bytes != full);
    CHECK(changed.encoded_size() == bytes.size());
    any_method back;
    CHECK_FALSE(decode_method(view(bytes), back));
    REQUIRE(back.index() == I);
    CHECK(std::get<M>(back) == changed);
  }

  // Every strict prefix is truncated; one byte more is trailing.
  for (std::size_t n = 0; n < full.size(); ++n) {
    any_method out;
    CAPTURE(n);
    CHECK(decode_method(bytes_view(full.data(), n), out) == errc::truncated);
  }
  byte_vec longer = full;
  longer.push_back(0);
  any_method out;
  CHECK(decode_method(view(longer), out) == errc::trailing_bytes);
  CHECK(decode_method_as(view(longer), direct) == errc::trailing_bytes);

  // The static traits agree with the id lookup.
  const method_info* info = find_method(M::class_index, M::method_index);
  REQUIRE(info != nullptr);
  CHECK(info->name == M::name);
  CHECK(info->synchronous == M::synchronous);
  CHECK(info->has_content == M::has_content);
  CHECK(method_name(M::class_index, M::method_index) == M::name);
  CHECK(std::string(class_name(M::class_index)) + "." ==
        std::string(M::name.substr(0, M::name.find('.') + 1)));
  ++covered[I];
}

template <std::size_t Part, std::size_t... I>
void round_trip_range(method_counts& covered, std::index_sequence<I...>) {
  (round_trip_one<part_begin(Part) + I>(covered), ...);
}

// Round-trips every method of part Part; each part's .cpp calls it once.
template <std::size_t Part>
void round_trip_part(method_counts& covered) {
  static_assert(Part < round_trip_parts);
  round_trip_range<Part>(covered,
                         std::make_index_sequence<part_begin(Part + 1) - part_begin(Part)>{});
}

}  // namespace warren::test::roundtrip
