#include "warren/client/uri.hpp"

#include <doctest/doctest.h>

#include <string>
#include <system_error>
#include <vector>

#include "warren/codec/error.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

connection_params ok(const std::string& uri) {
  connection_params p;
  std::string what = "stale";
  auto ec = parse_uri(uri, p, &what);
  INFO("uri: ", uri, "  reason: ", what);
  REQUIRE_FALSE(ec);
  CHECK(what.empty());
  return p;
}

// Checks that `uri` fails with bad_uri, leaves the output alone and gives a
// reason containing `expect`; returns the reason.
std::string bad(const std::string& uri, const std::string& expect) {
  connection_params p;
  p.host = "untouched";
  std::string what;
  auto ec = parse_uri(uri, p, &what);
  INFO("uri: ", uri, "  reason: ", what);
  CHECK(ec == errc::bad_uri);
  CHECK(p.host == "untouched");
  CHECK(what.find(expect) != std::string::npos);
  return what;
}

connection_params with_host(std::string host) {
  connection_params p;
  p.host = std::move(host);
  return p;
}

}  // namespace

TEST_CASE("uri: defaults for every component left out") {
  auto p = ok("amqp://host");
  CHECK(p == with_host("host"));
  CHECK(p.port == 5672);
  CHECK(p.username == "guest");
  CHECK(p.password == "guest");
  CHECK(p.vhost == "/");
  CHECK(p.heartbeat == 60);
  CHECK(p.frame_max == 131072);
  CHECK(p.channel_max == 2047);
  CHECK(p.connection_timeout == 30000ms);
  CHECK(p.auth_mechanism.empty());
  CHECK_FALSE(p.tls);
}

TEST_CASE("uri: schemes") {
  auto s = ok("amqps://host");
  CHECK(s.tls);
  CHECK(s.port == 5671);
  auto s2 = ok("amqps://host:5672");
  CHECK(s2.tls);
  CHECK(s2.port == 5672);
  CHECK(ok("AMQP://host") == with_host("host"));
  CHECK(ok("AmQpS://host").tls);
}

TEST_CASE("uri: every component given") {
  auto p = ok("amqp://user:pass@host:10000/vhost");
  CHECK(p.username == "user");
  CHECK(p.password == "pass");
  CHECK(p.host == "host");
  CHECK(p.port == 10000);
  CHECK(p.vhost == "vhost");
  CHECK(ok("amqp://host:1").port == 1);
  CHECK(ok("amqp://host:65535").port == 65535);
  CHECK(ok("amqp://host:05672").port == 5672);
}

TEST_CASE("uri: %-decoding of user, password, host and vhost") {
  auto p = ok("amqp://user%61:%61pass@ho%61st:10000/v%2fhost");
  CHECK(p.username == "usera");
  CHECK(p.password == "apass");
  CHECK(p.host == "hoast");
  CHECK(p.vhost == "v/host");
  auto q = ok("amqp://u:p%40ss%3Aw%2Frd%25@host");
  CHECK(q.password == "p@ss:w/rd%");
  CHECK(ok("amqp://host/%C3%A9t%C3%A9").vhost == "\xC3\xA9t\xC3\xA9");
  CHECK(ok("amqp://host/a%20b").vhost == "a b");
  // Sub-delims may appear unescaped in user and password; ':' and '@' in a vhost.
  CHECK(ok("amqp://u:a!$&'()*+,;=b@host").password == "a!$&'()*+,;=b");
  CHECK(ok("amqp://u-._~:p@host").username == "u-._~");
  CHECK(ok("amqp://host/a:b@c").vhost == "a:b@c");
  CHECK(ok("amqp://my-host.example.com").host == "my-host.example.com");
  CHECK(ok("amqp://10.0.0.1:5673").host == "10.0.0.1");
}

TEST_CASE("uri: userinfo forms") {
  auto a = ok("amqp://user@host");
  CHECK(a.username == "user");
  CHECK(a.password == "guest");
  auto b = ok("amqp://user:@host");
  CHECK(b.username == "user");
  CHECK(b.password == "");
  auto c = ok("amqp://:@host");
  CHECK(c.username == "");
  CHECK(c.password == "");
  auto d = ok("amqp://@host");
  CHECK(d.username == "");
  CHECK(d.password == "guest");
  auto e = ok("amqp://:secret@host");
  CHECK(e.username == "");
  CHECK(e.password == "secret");
}

TEST_CASE("uri: vhost from the path") {
  CHECK(ok("amqp://host").vhost == "/");
  // The spec's own example: an empty path is the empty vhost.
  CHECK(ok("amqp://host/").vhost == "/");
  CHECK(ok("amqp://host/%2f").vhost == "/");
  CHECK(ok("amqp://host/%2F").vhost == "/");
  CHECK(ok("amqp://host:5672/%2Fvh").vhost == "/vh");
  CHECK(ok("amqp://host/%2f%2f").vhost == "//");
  CHECK(ok("amqp://host?heartbeat=5").vhost == "/");
  CHECK(ok("amqp://host/?heartbeat=5").vhost == "/");
  CHECK(ok("amqp://host/vh?heartbeat=5").vhost == "vh");
  CHECK(ok("amqp://host/" + std::string(255, 'v')).vhost.size() == 255);
  CHECK(ok("amqp://host/" + std::string(100, 'v') + std::string(155, 'x')).vhost.size() == 255);
}

TEST_CASE("uri: IPv6 literals") {
  auto a = ok("amqp://[::1]");
  CHECK(a.host == "::1");
  CHECK(a.port == 5672);
  auto b = ok("amqp://u:p@[2001:db8::7]:5673/vh");
  CHECK(b.host == "2001:db8::7");
  CHECK(b.port == 5673);
  CHECK(b.vhost == "vh");
  CHECK(b.username == "u");
  CHECK(ok("amqp://[::FFFF:192.168.0.1]").host == "::FFFF:192.168.0.1");
  CHECK(ok("amqp://[fe80::1%25eth0]:5672").host == "fe80::1%eth0");
  CHECK(ok("amqps://[::1]").port == 5671);
}

TEST_CASE("uri: query parameters") {
  CHECK(ok("amqp://host?heartbeat=0").heartbeat == 0);
  CHECK(ok("amqp://host?heartbeat=10").heartbeat == 10);
  CHECK(ok("amqp://host?heartbeat=65535").heartbeat == 65535);
  CHECK(ok("amqp://host?frame_max=0").frame_max == 0);
  CHECK(ok("amqp://host?frame_max=4096").frame_max == 4096);
  CHECK(ok("amqp://host?frame_max=4294967295").frame_max == 4294967295u);
  CHECK(ok("amqp://host?channel_max=0").channel_max == 0);
  CHECK(ok("amqp://host?channel_max=65535").channel_max == 65535);
  CHECK(ok("amqp://host?connection_timeout=0").connection_timeout == 0ms);
  CHECK(ok("amqp://host?connection_timeout=1500").connection_timeout == 1500ms);
  CHECK(ok("amqp://host?connection_timeout=4294967295").connection_timeout ==
        std::chrono::milliseconds(4294967295LL));
  CHECK(ok("amqp://host?auth_mechanism=plain").auth_mechanism == "PLAIN");
  CHECK(ok("amqp://host?auth_mechanism=AMQPLAIN").auth_mechanism == "AMQPLAIN");
  CHECK(ok("amqp://host?auth_mechanism=External").auth_mechanism == "EXTERNAL");

  auto p =
      ok("amqp://host/vh?heartbeat=5&frame_max=8192&channel_max=10&connection_timeout=250&"
         "auth_mechanism=amqplain");
  CHECK(p.heartbeat == 5);
  CHECK(p.frame_max == 8192);
  CHECK(p.channel_max == 10);
  CHECK(p.connection_timeout == 250ms);
  CHECK(p.auth_mechanism == "AMQPLAIN");
  CHECK(p.vhost == "vh");

  // Empty query, empty pairs, %-encoded names and values.
  CHECK(ok("amqp://host?") == with_host("host"));
  CHECK(ok("amqp://host?heartbeat=5&").heartbeat == 5);
  CHECK(ok("amqp://host?&&heartbeat=5&&channel_max=3").channel_max == 3);
  CHECK(ok("amqp://host?heart%62eat=%35").heartbeat == 5);
}

TEST_CASE("uri: parse_uri replaces the whole output and clears the reason") {
  connection_params p;
  p.heartbeat = 1;
  p.vhost = "old";
  p.tls = true;
  std::string what = "old reason";
  REQUIRE_FALSE(parse_uri("amqp://host", p, &what));
  CHECK(p == with_host("host"));
  CHECK(what.empty());
  REQUIRE_FALSE(parse_uri("amqp://host", p));
}

TEST_CASE("uri: throwing form") {
  CHECK(parse_uri("amqp://host:1234").port == 1234);
  try {
    (void)parse_uri("amqp://host?heartbeat=70000");
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code() == errc::bad_uri);
    CHECK(std::string(e.what()).find("heartbeat") != std::string::npos);
  }
}

TEST_CASE("uri errors: scheme") {
  bad("", "missing scheme");
  bad("host:5672", "missing scheme");
  bad("amqp:/host", "missing scheme");
  bad("amqp:host", "missing scheme");
  bad("http://host", "unsupported scheme 'http'");
  bad("amqpx://host", "unsupported scheme 'amqpx'");
  bad("://host", "bad scheme");
  // Something that is not a scheme is not echoed.
  auto why = bad("user:s3cr3t@h://x", "bad scheme");
  CHECK(why.find("s3cr3t") == std::string::npos);
}

TEST_CASE("uri errors: host") {
  bad("amqp://", "empty host");
  bad("amqp:///vh", "empty host");
  bad("amqp://user:pass@", "empty host");
  bad("amqp://user:pass@/vh", "empty host");
  bad("amqp://:5672", "empty host");
  bad("amqp://%", "incomplete %-escape in host");
  bad("amqp://ho st", "unescaped byte 0x20 in host");
  bad("amqp://ho\tst", "unescaped byte 0x09 in host");
  bad("amqp://h\xC3\xA9st", "unescaped byte 0xC3 in host");
  bad("amqp://host:5672:1", "unescaped ':' in host");
  bad("amqp://ho<st", "unescaped '<' in host");
  bad("amqp://[::1", "unterminated '['");
  bad("amqp://[]", "empty IPv6 address");
  bad("amqp://[host]", "is not an IPv6 address");
  bad("amqp://[::g]", "'g' in IPv6 address");
  bad("amqp://[::1]x", "unexpected 'x' after ']'");
  bad("amqp://[v1.x]", "IPvFuture");
  bad("amqp://[fe80::1%eth0]", "zone id");
  bad("amqp://[fe80::1%25]", "empty zone id");
  bad("amqp://a@b@host", "more than one '@'");
}

TEST_CASE("uri errors: port") {
  bad("amqp://host:", "empty port");
  bad("amqp://[::1]:", "empty port");
  bad("amqp://host:0", "port 0 is out of range 1-65535");
  bad("amqp://host:65536", "port 65536 is out of range");
  bad("amqp://host:99999999999999999999999", "out of range");
  bad("amqp://host:abc", "port is not a decimal number");
  bad("amqp://host:-1", "port is not a decimal number");
  bad("amqp://host:+1", "port is not a decimal number");
  bad("amqp://host: 1", "port is not a decimal number");
  bad("amqp://[::1]:x", "port is not a decimal number");
  // An unescaped '/' in a password cuts the authority short: the reason hints
  // at that and does not repeat what it cut off.
  auto why = bad("amqp://u:xyzzy/1@host", "%2F");
  CHECK(why.find("xyzzy") == std::string::npos);
}

TEST_CASE("uri errors: userinfo") {
  bad("amqp://u:p:q@host", "unescaped ':' in password");
  bad("amqp://u:p%zz@host", "bad %-escape in password");
  bad("amqp://u:p%4@host", "incomplete %-escape in password");
  bad("amqp://u%g0:p@host", "bad %-escape in user name");
  bad("amqp://u[:p@host", "unescaped '[' in user name");
  bad("amqp://u:p s@host", "unescaped byte 0x20 in password");
  bad("amqp://u:p\"@host", "unescaped '\"' in password");
}

TEST_CASE("uri errors: vhost and fragment") {
  bad("amqp://host/a/b", "unescaped '/' in vhost");
  bad("amqp://host//", "unescaped '/' in vhost");
  bad("amqp://host/vh/", "unescaped '/' in vhost");
  bad("amqp://host/v h", "unescaped byte 0x20 in vhost");
  bad("amqp://host/v%2", "incomplete %-escape in vhost");
  bad("amqp://host/v%g1", "bad %-escape in vhost");
  bad("amqp://host/" + std::string(256, 'v'), "longer than 255");
  bad("amqp://host/" + std::string(254, 'v') + "%2F%2F", "longer than 255");
  bad("amqp://host#frag", "'#'");
  bad("amqp://host/vh#frag", "'#'");
  bad("amqp://host?heartbeat=5#x", "'#'");
}

TEST_CASE("uri errors: query parameters") {
  bad("amqp://host?heartbeat=70000", "heartbeat=70000 is out of range 0-65535");
  bad("amqp://host?heartbeat=65536", "out of range 0-65535");
  bad("amqp://host?heartbeat=abc", "heartbeat='abc' is not a non-negative integer");
  bad("amqp://host?heartbeat=", "heartbeat='' is not a non-negative integer");
  bad("amqp://host?heartbeat=-1", "not a non-negative integer");
  bad("amqp://host?heartbeat=+5", "not a non-negative integer");
  bad("amqp://host?heartbeat=1.5", "not a non-negative integer");
  bad("amqp://host?heartbeat=99999999999999999999999", "out of range");
  bad("amqp://host?heartbeat", "'heartbeat' has no value");
  bad("amqp://host?channel_max=65536", "channel_max=65536 is out of range 0-65535");
  bad("amqp://host?channel_max=x", "channel_max='x'");
  bad("amqp://host?frame_max=4095", "frame_max=4095 is below the AMQP minimum 4096");
  bad("amqp://host?frame_max=1", "below the AMQP minimum 4096");
  bad("amqp://host?frame_max=4294967296", "frame_max=4294967296 is out of range");
  bad("amqp://host?connection_timeout=4294967296", "connection_timeout=4294967296 is out of range");
  bad("amqp://host?connection_timeout=1s", "connection_timeout='1s'");
  bad("amqp://host?auth_mechanism=cram-md5",
      "auth_mechanism='cram-md5' is not one of plain, amqplain, external");
  bad("amqp://host?auth_mechanism=", "auth_mechanism=''");
  bad("amqp://host?foo=1", "unknown query parameter 'foo'");
  bad("amqp://host?Heartbeat=1", "unknown query parameter 'Heartbeat'");
  bad("amqp://host?heartbeat=5&foo=1", "unknown query parameter 'foo'");
  bad("amqp://host?cacertfile=/tmp/ca.pem", "'cacertfile' needs an amqps:// URI");
  bad("amqp://host?verify=verify_none", "'verify' needs an amqps:// URI");
  bad("amqps://host?verify=none", "verify='none' is not verify_peer or verify_none");
  bad("amqps://host?certfile=", "'certfile' is empty");
  bad("amqps://host?password=secret", "TLS query parameter 'password' is not supported");
  bad("amqps://host?fail_if_no_peer_cert=true", "'fail_if_no_peer_cert' is not supported");
  bad("amqp://host?heartbeat=5&heartbeat=6", "'heartbeat' is given more than once");
  bad("amqp://host?heartbeat=5%", "incomplete %-escape in query parameter value");
  bad("amqp://host?heart%zzbeat=5", "bad %-escape in query parameter name");
  bad("amqp://host?a b=1", "unescaped byte 0x20 in query parameter name");
}

TEST_CASE("to_uri: exact text") {
  CHECK(to_uri(connection_params{}) == "amqp://guest:guest@127.0.0.1:5672/%2F");

  connection_params p;
  p.host = "h";
  p.port = 1234;
  p.username = "u s";
  p.password = "p@ss";
  p.vhost = "v/h";
  p.heartbeat = 10;
  p.frame_max = 0;
  p.channel_max = 0;
  p.connection_timeout = 1500ms;
  p.auth_mechanism = "EXTERNAL";
  p.tls = true;
  CHECK(to_uri(p) ==
        "amqps://u%20s:p%40ss@h:1234/v%2Fh?heartbeat=10&frame_max=0&channel_max=0&"
        "connection_timeout=1500&auth_mechanism=external");
  CHECK(to_uri(p, true) ==
        "amqps://u%20s:***@h:1234/v%2Fh?heartbeat=10&frame_max=0&channel_max=0&"
        "connection_timeout=1500&auth_mechanism=external");

  CHECK(to_uri(with_host("::1")) == "amqp://guest:guest@[::1]:5672/%2F");
  CHECK(to_uri(with_host("fe80::1%eth0")) == "amqp://guest:guest@[fe80::1%25eth0]:5672/%2F");
  connection_params e = with_host("h");
  e.vhost = "";
  CHECK(to_uri(e) == "amqp://guest:guest@h:5672/");
}

TEST_CASE("uri: TLS query parameters (amqps only)") {
  auto p = ok("amqps://u:p@broker.example/v?cacertfile=%2Fetc%2Fca.pem&certfile=/c/client.pem&"
              "keyfile=/c/client.key&verify=verify_none&server_name_indication=node-1.example&"
              "auth_mechanism=external");
  CHECK(p.tls);
  CHECK(p.port == 5671);
  CHECK(p.cacertfile == "/etc/ca.pem");
  CHECK(p.certfile == "/c/client.pem");
  CHECK(p.keyfile == "/c/client.key");
  CHECK(p.verify == tls_verify::none);
  CHECK(p.server_name_indication == "node-1.example");
  CHECK(p.auth_mechanism == "EXTERNAL");
  // Secure unless said otherwise: verification on, no files, SNI = host.
  auto d = ok("amqps://broker.example");
  CHECK(d.verify == tls_verify::peer);
  CHECK(d.cacertfile.empty());
  CHECK(d.server_name_indication.empty());
  CHECK(ok("amqps://h?verify=verify_peer").verify == tls_verify::peer);
  // The redacted form keeps the TLS settings and hides only the password.
  auto shown = to_uri(p, true);
  CHECK(shown.find("***") != std::string::npos);
  CHECK(shown.find(":p@") == std::string::npos);
  CHECK(shown.find("verify=verify_none") != std::string::npos);
  CHECK(shown.find("cacertfile=%2Fetc%2Fca.pem") != std::string::npos);
}

TEST_CASE("to_uri: round-trips through parse_uri") {
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes += static_cast<char>(i);

  std::vector<connection_params> cases;
  cases.push_back(connection_params{});
  cases.push_back(with_host("::1"));
  cases.push_back(with_host("fe80::1%eth0"));
  cases.push_back(with_host("my-host.example.com"));
  {
    connection_params p = with_host("h");
    p.vhost = "v";
    p.username = "";
    p.password = "";
    cases.push_back(p);
  }
  {
    connection_params p = with_host("h");
    p.username = all_bytes;
    p.password = all_bytes;
    p.vhost = all_bytes.substr(0, 255);
    cases.push_back(p);
  }
  {
    connection_params p = with_host("h");
    p.tls = true;
    p.port = 5672;
    cases.push_back(p);
  }
  {
    connection_params p = with_host("h");
    p.port = 5671;
    cases.push_back(p);
  }
  for (const char* m : {"PLAIN", "AMQPLAIN", "EXTERNAL"}) {
    connection_params p;
    p.auth_mechanism = m;
    p.heartbeat = 0;
    p.frame_max = 4096;
    p.channel_max = 65535;
    p.connection_timeout = 0ms;
    cases.push_back(p);
  }
  {
    connection_params p = with_host("h");
    p.tls = true;
    p.port = 5671;
    p.cacertfile = "/etc/ssl/ca dir/ca.pem";
    p.certfile = "c&=.pem";
    p.keyfile = "k%.pem";
    p.verify = tls_verify::none;
    p.server_name_indication = "broker.example";
    cases.push_back(p);
  }
  for (const auto& p : cases) {
    auto uri = to_uri(p);
    INFO("uri: ", uri);
    CHECK(ok(uri) == p);
  }

  for (const char* uri :
       {"amqp://host", "amqps://u:p@[::1]:1/%2f?heartbeat=1", "amqp://host/",
        "amqp://user%61:%61pass@ho%61st:10000/v%2fhost", "amqp://u:a!$&'()*+,;=b@host/a:b@c",
        "amqp://host?auth_mechanism=external&frame_max=0&connection_timeout=7"}) {
    auto p = ok(uri);
    INFO("uri: ", uri, "  to_uri: ", to_uri(p));
    CHECK(ok(to_uri(p)) == p);
  }
}
