#include "tools/warren/args.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace warren::cli;

namespace {

command_spec bind_spec() {
  return command_spec{"bind-queue",
                      "bind a queue",
                      "Binds a queue.",
                      {"queue", "exchange", "routing-key"},
                      {
                          {"queue", "NAME", "the queue"},
                          {"exchange", "NAME", "the exchange"},
                          {"routing-key", "KEY", "the key"},
                          {"no-wait", "", "do not wait"},
                          {"argument", "NAME=TYPE:VALUE", "an argument", true},
                          {"count", "N", "how many"},
                      },
                      {}};
}

std::string usage_error_of(const std::vector<std::string>& args) {
  try {
    parse_args(bind_spec(), args);
  } catch (const usage_error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("args: options, flags, positionals") {
  parsed_args a = parse_args(bind_spec(), {"q", "--exchange=ex", "--no-wait", "--argument",
                                           "a=int8:1", "--argument=b=void", "--uri", "amqp://h/"});
  CHECK(a.value("queue") == "q");
  CHECK(a.value("exchange") == "ex");
  CHECK_FALSE(a.has("routing-key"));
  CHECK(a.value_or("routing-key", "") == "");
  CHECK(a.has("no-wait"));
  CHECK(a.values("argument") == std::vector<std::string>{"a=int8:1", "b=void"});
  CHECK(a.value("uri") == "amqp://h/");
  CHECK_FALSE(a.help);

  parsed_args p = parse_args(bind_spec(), {"q", "ex", "--", "-key"});
  CHECK(p.value("routing-key") == "-key");
  CHECK(parse_args(bind_spec(), {"--no-wait", "--help"}).help == true);
  CHECK(parse_args(bind_spec(), {"-h"}).help);
  // "-" alone is an argument, not an option.
  CHECK(parse_args(bind_spec(), {"-"}).value("queue") == "-");
}

TEST_CASE("args: numbers, required and exclusive options") {
  parsed_args a = parse_args(bind_spec(), {"--count", "7"});
  CHECK(a.number("count", 1, 1, 10) == 7);
  CHECK(a.number("missing", 3, 1, 10) == 3);
  CHECK_THROWS_WITH_AS(a.number("count", 1, 8, 10),
                       "--count wants a whole number from 8 to 10, not '7'", usage_error);
  parsed_args b = parse_args(bind_spec(), {"--count", "-1"});
  CHECK_THROWS_AS(b.number("count", 1, 0, 10), usage_error);
  parsed_args c = parse_args(bind_spec(), {"--count", "1x"});
  CHECK_THROWS_AS(c.number("count", 1, 0, 10), usage_error);
  CHECK_THROWS_WITH_AS(a.required("queue"), "--queue is required", usage_error);
  parsed_args d = parse_args(bind_spec(), {"--no-wait", "--count=1"});
  CHECK_THROWS_WITH_AS(d.exclusive({"no-wait", "queue", "count"}),
                       "--no-wait and --count cannot be used together", usage_error);
  CHECK_NOTHROW(d.exclusive({"no-wait", "queue"}));
}

TEST_CASE("args: malformed command lines") {
  CHECK(usage_error_of({"--nope"}) == "unknown option '--nope'");
  CHECK(usage_error_of({"-x"}) == "unknown option '-x'");
  CHECK(usage_error_of({"--no-wait=1"}) == "--no-wait takes no value");
  CHECK(usage_error_of({"--queue"}) == "--queue needs a value (NAME)");
  CHECK(usage_error_of({"--queue", "a", "--queue", "b"}) == "--queue is given twice");
  CHECK(usage_error_of({"a", "b", "c", "d"}) == "unexpected argument 'd'");
  CHECK(usage_error_of({"--queue", "a", "b"}) == "'b' and --queue both give the queue");
}

TEST_CASE("args: help lists every option, the common ones too") {
  const std::string h = help_text(bind_spec());
  CHECK(h.starts_with("usage: warren bind-queue [OPTIONS] [QUEUE] [EXCHANGE] [ROUTING_KEY]\n"));
  CHECK(h.find("  --argument NAME=TYPE:VALUE  an argument (repeatable)\n") != std::string::npos);
  CHECK(h.find("  --no-wait                   do not wait\n") != std::string::npos);
  CHECK(h.find("  --uri URI") != std::string::npos);
  CHECK(h.find("  --help") != std::string::npos);
}
