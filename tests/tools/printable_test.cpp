#include "tools/warren/printable.hpp"

#include <doctest/doctest.h>

#include <exception>
#include <string>

#include "tools/warren/args.hpp"
#include "tools/warren/commands.hpp"
#include "tools/warren/failure.hpp"
#include "warren/client/types.hpp"

using namespace warren::cli;

TEST_CASE("printable: printable ASCII passes, the escapes are exact") {
  CHECK(printable("") == "");
  CHECK(printable("NOT_FOUND - no queue 'q' in vhost '/'") ==
        "NOT_FOUND - no queue 'q' in vhost '/'");
  CHECK(printable("a\nb") == "a\\nb");
  CHECK(printable("a\r\tb") == "a\\r\\tb");
  CHECK(printable("C:\\dir") == "C:\\\\dir");
  CHECK(printable("\x1b[2J") == "\\x1b[2J");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(printable("\x7f") == "\\x7f");
  CHECK(printable("\x01\x08\x0b\x0c\x1f") == "\\x01\\x08\\x0b\\x0c\\x1f");
}

TEST_CASE("printable: a forged second line stays on the first") {
  const std::string s = printable("x\nERROR: y");
  CHECK(s == "x\\nERROR: y");
  CHECK(s.find('\n') == std::string::npos);
  CHECK(printable("ok\r\x1b[1A\x1b[2KERROR: y") == "ok\\r\\x1b[1A\\x1b[2KERROR: y");
}

TEST_CASE("printable: well-formed UTF-8 passes, anything else is escaped byte by byte") {
  CHECK(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  // Lone bytes 0x80..0x9f would be C1 controls (0x9b is CSI) to an 8-bit terminal.
  CHECK(printable("\x9b"
                  "2J") == "\\x9b2J");
  CHECK(printable("a\x80\xff") == "a\\x80\\xff");
  // Truncated sequences, an overlong '/', an encoded surrogate.
  CHECK(printable("\xe2\x82") == "\\xe2\\x82");
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");
  // A C1 control encoded as UTF-8 (U+009B, U+0085) is still a control.
  CHECK(printable("\xc2\x9b"
                  "2J \xc2\x85") == "\\xc2\\x9b2J \\xc2\\x85");
  CHECK(printable("\xc2\xa0") == "\xc2\xa0");  // U+00A0, the first one after C1
}

TEST_CASE("printable: every byte string comes out as one line of printable text") {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string s = printable(all);
  for (const char b : s) {
    const auto c = static_cast<unsigned char>(b);
    CHECK((c >= 0x20 && c < 0x7f));
  }
}

TEST_CASE("diagnostic: one line, command and text escaped") {
  CHECK(diagnostic("get", "no message: queue 'q' is empty") ==
        "warren get: no message: queue 'q' is empty\n");
  CHECK(diagnostic("publish", "message returned: 312 NO_ROUTE\nwarren publish: ok") ==
        "warren publish: message returned: 312 NO_ROUTE\\nwarren publish: ok\n");
}

TEST_CASE("failure_of: a broker's reply text cannot clear the screen or forge a line") {
  warren::error_info info;
  info.code = make_error_code(warren::reply_code::not_found);
  info.text = "NOT_FOUND - \x1b[2J\nwarren get: fine";
  info.class_id = 50;  // queue.declare
  info.method_id = 10;
  const failure f = failure_of("get", std::make_exception_ptr(warren::error(info)));
  CHECK(f.line == "warren get: 404 NOT_FOUND - \\x1b[2J\\nwarren get: fine (queue.declare)\n");
  CHECK(f.status == exit_error);

  // A client-side error and a plain exception take the same path.
  const failure lost = failure_of(
      "consume",
      std::make_exception_ptr(warren::error(
          {make_error_code(warren::errc::connection_lost), "peer said \x1b]0;owned\x07"})));
  CHECK(lost.line == "warren consume: peer said \\x1b]0;owned\\x07\n");
  CHECK(lost.status == exit_error);
  const failure usage = failure_of("get", std::make_exception_ptr(usage_error("bad\nline")));
  CHECK(usage.line == "warren get: bad\\nline (see warren get --help)\n");
  CHECK(usage.status == exit_usage);
}
