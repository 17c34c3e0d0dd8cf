#include "tools/redact.hpp"

#include <doctest/doctest.h>

using warren::tools::redact_passwords;

TEST_CASE("redact_passwords hides the password of every URI in a text") {
  CHECK(redact_passwords("amqp://guest:guest@127.0.0.1:5672/") ==
        "amqp://guest:***@127.0.0.1:5672/");
  CHECK(redact_passwords("amqps://u:s%40cret@host?cacertfile=/ca.pem") ==
        "amqps://u:***@host?cacertfile=/ca.pem");
  CHECK(redact_passwords("unexpected argument 'amqp://u:pw@h/' and 'amqp://v:pw2@[::1]:1'") ==
        "unexpected argument 'amqp://u:***@h/' and 'amqp://v:***@[::1]:1'");
  // A password may hold '@' and ':' when written by hand; the last '@' ends it.
  CHECK(redact_passwords("amqp://u:a@b:c@host/") == "amqp://u:***@host/");
  CHECK(redact_passwords("bad URI amqp://u:pw@") == "bad URI amqp://u:***@");
}

TEST_CASE("redact_passwords leaves text without a password alone") {
  for (const char* text : {"", "no URI here", "amqp://host:5672/", "amqp://user@host/",
                           "amqp://host/?a=b:c@d", "connected to amqp://guest:***@h:1/%2F", "://",
                           "x://", "a://b:c", "http://host/path:x@y"}) {
    CAPTURE(text);
    CHECK(redact_passwords(text) == text);
  }
}
