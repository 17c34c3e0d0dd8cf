// decode_content_header on any payload, then the assembler on what follows:
// an error from the decoding set, or properties that encode back to a header
// that decodes and encodes to itself; bodies never exceed the declared size.
// A header over the assembler's limit is skipped (skip_body): the bodies that
// follow are counted, not stored, and end it at the declared size exactly.
//
// Input: byte 0 is the header payload's length, then the payload, then body
// frames as (length byte, bytes) pairs.
#include <cstdint>
#include <system_error>

#include "fuzz_check.hpp"
#include "warren/client/wire.hpp"

using namespace warren;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::size_t header_len = data[0];
  if (header_len > size - 1) header_len = size - 1;
  const bytes_view payload(data + 1, header_len);
  const std::uint8_t* rest = data + 1 + header_len;
  std::size_t rest_len = size - 1 - header_len;

  content_header h;
  const std::error_code ec = decode_content_header(payload, h);
  if (ec) {
    FUZZ_CHECK(ec == errc::truncated || ec == errc::trailing_bytes ||
               ec == errc::bad_content_header || ec == errc::unknown_field_type ||
               ec == errc::nesting_too_deep);
  } else {
    FUZZ_CHECK(h.class_id == basic_class_id);
    byte_buffer once;
    writer w(once);
    encode_content_header(w, h.body_size, h.properties);
    FUZZ_CHECK(w.ok());
    FUZZ_CHECK(once.size() == 12 + h.properties.encoded_size());
    FUZZ_CHECK(once.size() <= payload.size());
    content_header again;
    FUZZ_CHECK(!decode_content_header(once.view(), again));
    FUZZ_CHECK(again.body_size == h.body_size);
    byte_buffer twice;
    writer w2(twice);
    encode_content_header(w2, again.body_size, again.properties);
    FUZZ_CHECK(once.str() == twice.str());
  }

  // The same header through the assembler, with a small limit, then bodies.
  content_assembler a(1 << 16);
  a.expect_header();
  std::error_code aec;
  bool done = a.on_header(payload, aec);
  const bool skipping = aec == errc::message_too_large;
  if (skipping) {
    FUZZ_CHECK(!done && a.declared_size() > a.max_body_size());
    aec.clear();
    a.skip_body();
  } else if (aec) {
    return 0;
  }
  std::size_t total = 0;
  while (!done && rest_len > 0) {
    std::size_t n = rest[0];
    if (n > rest_len - 1) n = rest_len - 1;
    done = a.on_body(bytes_view(rest + 1, n), aec);
    if (aec) {
      FUZZ_CHECK(aec == errc::body_size_mismatch);
      return 0;
    }
    total += n;
    FUZZ_CHECK(total <= h.body_size);
    rest += 1 + n;
    rest_len -= 1 + n;
  }
  if (done) {
    FUZZ_CHECK(a.idle());
    FUZZ_CHECK(total == h.body_size);
    FUZZ_CHECK(a.take_body().size() == (skipping ? 0 : h.body_size));
  }
  return 0;
}
