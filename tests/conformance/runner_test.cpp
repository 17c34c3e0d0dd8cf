// The conformance runner's own pieces: matching, judging, the catalogue's
// shape, and the report formats. No broker needed.
#include "tools/conformance/runner.hpp"

#include <doctest/doctest.h>

#include <regex>
#include <set>
#include <string>

#include "tools/conformance/report.hpp"

using namespace warren::conformance;

TEST_CASE("glob_match: '*' and '?' over scenario ids") {
  CHECK(glob_match("*", "queue.declare/passive-missing-404"));
  CHECK(glob_match("queue.*", "queue.declare/passive-missing-404"));
  CHECK(glob_match("*404", "queue.declare/passive-missing-404"));
  CHECK(glob_match("queue.declare/passive-m?ss?ng-404", "queue.declare/passive-missing-404"));
  CHECK(glob_match("*.declare/*", "exchange.declare/type-direct"));
  CHECK_FALSE(glob_match("queue.*", "exchange.declare/type-direct"));
  CHECK_FALSE(glob_match("queue", "queue.declare"));
  CHECK_FALSE(glob_match("?", ""));
  CHECK(glob_match("", ""));
  CHECK(glob_match("a*b*c", "aXbYc"));
  CHECK_FALSE(glob_match("a*b*c", "aXbY"));
}

TEST_CASE("matches_expected: alternatives and prefixes") {
  CHECK(matches_expected("channel.close 404", "channel.close 404"));
  CHECK_FALSE(matches_expected("channel.close 404", "channel.close 4040"));
  CHECK(matches_expected("connection.close 503|connection.close 540", "connection.close 540"));
  CHECK_FALSE(matches_expected("connection.close 503|connection.close 540", "socket closed"));
  CHECK(matches_expected("refused*", "refused (socket closed)"));
  CHECK(matches_expected("socket closed|refused*", "refused"));
  CHECK_FALSE(matches_expected("refused*", "accepted"));
  CHECK_FALSE(matches_expected("", "anything"));
}

TEST_CASE("judge: pass, documented deviation, fail") {
  scenario s;
  s.id = "basic.qos/prefetch-size";
  s.checks = "basic.qos prefetch-size";
  s.expected = "basic.qos-ok";
  s.deviations = {{"connection.close 540", "not implemented"}};
  CHECK(judge(s, "basic.qos-ok").outcome == verdict::pass);
  const result d = judge(s, "connection.close 540");
  CHECK(d.outcome == verdict::deviation);
  CHECK(d.reason == "not implemented");
  const result f = judge(s, "channel.close 406");
  CHECK(f.outcome == verdict::fail);
  CHECK(f.reason.empty());
  CHECK(f.observed == "channel.close 406");
}

TEST_CASE("the catalogue: at least 150 scenarios, unique well-formed ids, all described") {
  const auto all = catalogue();
  CHECK(all.size() >= 150);
  std::set<std::string> ids;
  const std::regex id_shape("[a-z0-9_.-]+(/[A-Za-z0-9_.-]+)?");
  for (const auto& s : all) {
    INFO(s.id);
    CHECK(ids.insert(s.id).second);
    CHECK(std::regex_match(s.id, id_shape));
    CHECK_FALSE(s.checks.empty());
    CHECK_FALSE(s.expected.empty());
    CHECK(static_cast<bool>(s.run));
    for (const auto& d : s.deviations) {
      CHECK_FALSE(d.reason.empty());
      // A deviation the spec's own expectation would also match could never show.
      CHECK_FALSE(matches_expected(s.expected, d.observed));
    }
  }
  // Each area the catalogue promises is there.
  for (const char* prefix : {"connection.", "frame/", "channel.", "exchange.", "queue.", "basic.",
                             "tx.", "confirm", "route.", "ext."}) {
    bool found = false;
    for (const auto& id : ids) found = found || id.rfind(prefix, 0) == 0;
    CHECK_MESSAGE(found, prefix);
  }
}

namespace {

run_report sample() {
  run_report r;
  r.broker.product = "Broker";
  r.broker.version = "1.0";
  r.uri = "amqp://guest:***@127.0.0.1:5672/%2F";
  r.seconds = 1.5;
  result a;
  a.id = "a/one";
  a.checks = "a | b";
  a.expected = "x|y";
  a.observed = "bad \x01 text";
  a.outcome = verdict::fail;
  result b;
  b.id = "b/two";
  b.checks = "two";
  b.expected = "ok";
  b.observed = "ok";
  b.outcome = verdict::pass;
  result c;
  c.id = "c/three";
  c.checks = "three";
  c.expected = "ok";
  c.observed = "other";
  c.reason = "documented \"quirk\"";
  c.outcome = verdict::deviation;
  r.results = {a, b, c};
  return r;
}

}  // namespace

TEST_CASE("reports: totals, table, JSON, Markdown and verdict lists") {
  const run_report r = sample();
  CHECK(r.count(verdict::fail) == 1);
  CHECK(format_totals(r) == "3 scenarios: 1 pass, 1 fail, 1 deviation, 0 unsupported (1.5 s)");

  const std::string table = format_table(r);
  CHECK(table.find("bad \\x01 text") != std::string::npos);
  CHECK(table.find("why: documented \"quirk\"") != std::string::npos);

  const std::string json = format_json(r);
  CHECK(json.find("\"observed\": \"bad \\u0001 text\"") != std::string::npos);
  CHECK(json.find("\"reason\": \"documented \\\"quirk\\\"\"") != std::string::npos);
  CHECK(json.find("\"totals\": {\"pass\": 1, \"fail\": 1, \"deviation\": 1, \"unsupported\": 0}") !=
        std::string::npos);

  const std::string md = format_markdown(r);
  CHECK(md.find("| `a/one` | a \\| b | x\\|y | bad \\x01 text | **fail** |  |") !=
        std::string::npos);
  CHECK(md.find("| deviation | 1 |") != std::string::npos);

  CHECK(format_verdicts(r) == "a/one fail\nb/two pass\nc/three deviation\n");
}

TEST_CASE("verdict lists: parsing, alternatives, and what changed") {
  std::map<std::string, std::string> v;
  std::string why;
  REQUIRE(
      parse_verdicts("# comment\n\na/one fail\nb/two pass|fail\r\nc/three deviation\n", v, why));
  CHECK(v.size() == 3);
  CHECK(compare_verdicts(sample(), v, true).empty());

  std::map<std::string, std::string> bad;
  CHECK_FALSE(parse_verdicts("a/one maybe\n", bad, why));
  CHECK(why == "a/one maybe");
  CHECK_FALSE(parse_verdicts("a/one pass extra\n", bad, why));
  CHECK_FALSE(parse_verdicts("a/one pass|\n", bad, why));

  std::map<std::string, std::string> other{
      {"a/one", "pass"}, {"b/two", "pass"}, {"gone/x", "pass"}};
  const auto diffs = compare_verdicts(sample(), other, true);
  REQUIRE(diffs.size() == 3);
  CHECK(diffs[0] == "a/one: fail, was pass (observed: bad \\x01 text)");
  CHECK(diffs[1] == "c/three: deviation, not in the list");
  CHECK(diffs[2] == "gone/x: in the list (pass), not run");
  // A run of some scenarios only (--only) does not miss the others.
  CHECK(compare_verdicts(sample(), other, false).size() == 2);
}

TEST_CASE("printable escapes control characters and non-ASCII bytes") {
  CHECK(printable("plain text") == "plain text");
  CHECK(printable(std::string("a\nb\x7f\xff", 5)) == "a\\x0ab\\x7f\\xff");
}
