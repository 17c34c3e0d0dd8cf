// decode_table / decode_array on any bytes: an error from the decoding set,
// or a value that encodes to bytes that decode and encode to themselves.
// Every input is also decoded over what the previous inputs left in one
// long-lived value, which must end up encoding to the same bytes.
//
// Input: byte 0 picks table or array, the rest is the encoding.
#include <cstdint>
#include <system_error>

#include "fuzz_check.hpp"
#include "warren/codec/field.hpp"

using namespace warren;

namespace {

template <class T, class Decode, class Encode>
void check(const std::uint8_t* data, std::size_t size, Decode decode, Encode encode) {
  reader r(data, size);
  T value;
  decode(r, value);
  static T reused;
  reader rr(data, size);
  decode(rr, reused);
  FUZZ_CHECK(rr.error() == r.error() && rr.remaining() == r.remaining());
  if (!r.ok()) {
    const auto ec = r.error();
    FUZZ_CHECK(ec == errc::truncated || ec == errc::unknown_field_type ||
               ec == errc::nesting_too_deep);
    return;
  }
  const std::size_t consumed = size - r.remaining();

  byte_buffer once;
  writer w(once);
  encode(w, value);
  FUZZ_CHECK(w.ok());
  // Compared by their bytes: a float may be a NaN, unequal to itself.
  byte_buffer from_reused;
  writer wr(from_reused);
  encode(wr, reused);
  FUZZ_CHECK(wr.ok() && from_reused.str() == once.str());
  // Only 'L' -> 'l' and bool octets other than 0/1 change; never the size.
  FUZZ_CHECK(once.size() == consumed);

  reader r2(once.view());
  T again;
  decode(r2, again);
  FUZZ_CHECK(r2.ok() && r2.empty());
  byte_buffer twice;
  writer w2(twice);
  encode(w2, again);
  FUZZ_CHECK(once.str() == twice.str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  if (data[0] & 1) {
    check<field_table>(
        data + 1, size - 1, [](reader& r, field_table& t) { decode_table(r, t); },
        [](writer& w, const field_table& t) {
          encode_table(w, t);
          FUZZ_CHECK(w.size() == encoded_size(t));
        });
  } else {
    check<field_array>(
        data + 1, size - 1, [](reader& r, field_array& a) { decode_array(r, a); },
        [](writer& w, const field_array& a) { encode_array(w, a); });
  }
  return 0;
}
