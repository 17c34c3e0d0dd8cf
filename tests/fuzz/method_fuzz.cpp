// decode_method on any payload: an error from the decoding set, or a method
// that encodes back to a payload that decodes to the same bytes again.
#include <cstdint>
#include <system_error>
#include <variant>

#include "fuzz_check.hpp"
#include "warren/proto/methods.hpp"

using namespace warren;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  any_method m;
  const std::error_code ec = decode_method(bytes_view(data, size), m);
  if (ec) {
    FUZZ_CHECK(ec == errc::truncated || ec == errc::trailing_bytes || ec == errc::unknown_class ||
               ec == errc::unknown_method || ec == errc::unknown_field_type ||
               ec == errc::nesting_too_deep);
    return 0;
  }
  // The ids it decoded are the ids it came with.
  FUZZ_CHECK(std::visit([](const auto& x) { return x.key; }, m) == peek_method_key({data, size}));

  byte_buffer once;
  writer w(once);
  encode_method(w, m);
  FUZZ_CHECK(w.ok());
  FUZZ_CHECK(std::visit([](const auto& x) { return x.encoded_size(); }, m) == once.size());
  // Reserved fields come back empty, nothing grows.
  FUZZ_CHECK(once.size() <= size);

  any_method again;
  FUZZ_CHECK(!decode_method(once.view(), again));
  FUZZ_CHECK(again.index() == m.index());
  byte_buffer twice;
  writer w2(twice);
  encode_method(w2, again);
  FUZZ_CHECK(w2.ok());
  FUZZ_CHECK(once.str() == twice.str());
  return 0;
}
