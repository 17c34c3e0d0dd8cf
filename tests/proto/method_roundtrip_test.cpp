// Every method of the spec, encoded and decoded back with every field set.
// method_samples.hpp (generated from the spec) supplies one sample per method
// and a way to reset each of its fields; a method without a sample does not
// compile, so coverage cannot silently fall behind the spec. The round trip
// itself is in method_roundtrip.hpp, instantiated in method_roundtrip_part*.cpp.
#include <doctest/doctest.h>

#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <variant>

#include "method_roundtrip.hpp"

using namespace warren;
using namespace warren::test;
using namespace warren::test::roundtrip;

namespace {

template <std::size_t... I>
std::set<std::uint32_t> all_keys(std::index_sequence<I...>) {
  return {std::variant_alternative_t<I, any_method>::key...};
}

template <std::size_t... I>
void check_responses(const std::set<std::uint32_t>& keys, std::index_sequence<I...>) {
  auto one = [&keys](auto tag) {
    using M = typename decltype(tag)::type;
    CAPTURE(M::name);
    // A synchronous request names its replies; a reply names none.
    for (std::uint32_t r : M::responses) {
      CHECK(keys.count(r) == 1);
      CHECK((r >> 16) == M::class_index);
    }
    if (!M::synchronous) CHECK(M::responses.empty());
  };
  (one(std::type_identity<std::variant_alternative_t<I, any_method>>{}), ...);
}

constexpr auto all_methods = std::make_index_sequence<std::variant_size_v<any_method>>{};

}  // namespace

TEST_CASE("every method round-trips with every field set") {
  method_counts covered{};
  round_trip_part0(covered);
  round_trip_part1(covered);
  round_trip_part2(covered);
  round_trip_part3(covered);
  static_assert(round_trip_parts == 4, "call every part above");
  // Every method exactly once: no part left out, none covered twice.
  for (std::size_t i = 0; i < method_count; ++i) {
    CAPTURE(i);
    CHECK(covered[i] == 1);
  }
  const std::size_t total = std::accumulate(covered.begin(), covered.end(), std::size_t{0});
  CHECK(total == std::variant_size_v<any_method>);
  CHECK(total == method_sample_count);
}

TEST_CASE("method keys are unique and replies exist") {
  const auto keys = all_keys(all_methods);
  CHECK(keys.size() == std::variant_size_v<any_method>);
  check_responses(keys, all_methods);
}

TEST_CASE("a few replies checked against the spec by hand") {
  CHECK(connection_start::responses == std::array<std::uint32_t, 1>{method_key(10, 11)});
  CHECK(channel_close::responses == std::array<std::uint32_t, 1>{method_key(20, 41)});
  CHECK(basic_qos::responses == std::array<std::uint32_t, 1>{method_key(60, 11)});
  CHECK(basic_get::responses ==
        std::array<std::uint32_t, 2>{method_key(60, 71), method_key(60, 72)});
  CHECK(basic_recover::responses == std::array<std::uint32_t, 1>{method_key(60, 111)});
  CHECK(confirm_select::responses == std::array<std::uint32_t, 1>{method_key(85, 11)});
  CHECK(basic_publish::has_content);
  CHECK(basic_deliver::has_content);
  CHECK(basic_return::has_content);
  CHECK(basic_get_ok::has_content);
  CHECK_FALSE(basic_ack::synchronous);
  CHECK_FALSE(basic_publish::synchronous);
  CHECK(connection_update_secret::key == method_key(10, 70));
  CHECK(connection_blocked::key == method_key(10, 60));
  CHECK(exchange_unbind_ok::key == method_key(40, 51));
}

TEST_CASE("ids the spec lacks") {
  CHECK(find_method(60, 41) == nullptr);
  CHECK(find_method(11, 10) == nullptr);
  CHECK(method_name(60, 41) == "unknown(60.41)");
  CHECK(class_name(11).empty());
  CHECK(class_name(60) == "basic");
}
