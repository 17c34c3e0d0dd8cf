// Every method of the spec, encoded and decoded back with every field set.
// method_samples.hpp (generated from the spec) supplies one sample per method
// and a way to reset each of its fields; a method without a sample does not
// compile, so coverage cannot silently fall behind the spec.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <utility>
#include <variant>

#include "../codec/test_bytes.hpp"
#include "method_samples.hpp"
#include "warren/proto/constants.hpp"
#include "warren/proto/methods.hpp"

using namespace warren;
using namespace warren::test;

namespace {

template <class M>
byte_vec encode(const M& m) {
  byte_buffer buf;
  writer w(buf);
  m.encode(w);
  REQUIRE(w.ok());
  return to_vec(buf.view());
}

template <std::size_t I>
void round_trip_one(std::size_t& covered) {
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
  ++covered;
}

template <std::size_t... I>
std::size_t round_trip_all(std::index_sequence<I...>) {
  std::size_t covered = 0;
  (round_trip_one<I>(covered), ...);
  return covered;
}

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
  const std::size_t covered = round_trip_all(all_methods);
  CHECK(covered == std::variant_size_v<any_method>);
  CHECK(covered == method_sample_count);
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
