// Unit tests of warren-perf's command line (tools/perf/options.*) and of its
// latency percentiles (tools/perf/latency.*). No broker, no Asio.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tools/perf/latency.hpp"
#include "tools/perf/options.hpp"

using namespace warren::perf;

// Percentiles print as {min, median, 75th, 95th, 99th} in failure messages.
template <>
struct doctest::StringMaker<percentiles> {
  static doctest::String convert(const percentiles& p) {
    std::string s = "{";
    for (std::size_t i = 0; i < p.size(); ++i) s += (i ? ", " : "") + std::to_string(p[i]);
    return (s + "}").c_str();
  }
};

namespace {

struct parsed {
  bool ok = false;
  bool help = false;
  std::string error;
  options opts;
};

parsed parse(const std::vector<std::string>& args) {
  parsed p;
  p.ok = parse_options(args, p.opts, p.help, p.error);
  return p;
}

// Every field of `got` equals the one of `want`: a flag sets its own field
// and leaves all the others alone.
void check_same(const options& got, const options& want) {
  CHECK(got.uris == want.uris);
  CHECK(got.producers == want.producers);
  CHECK(got.consumers == want.consumers);
  CHECK(got.size == want.size);
  CHECK(got.auto_ack == want.auto_ack);
  CHECK(got.multi_ack_every == want.multi_ack_every);
  CHECK(got.prefetch == want.prefetch);
  CHECK(got.confirm == want.confirm);
  CHECK(got.time_limit == want.time_limit);
  CHECK(got.producer_count == want.producer_count);
  CHECK(got.consumer_count == want.consumer_count);
  CHECK(got.queue == want.queue);
  CHECK(got.exchange == want.exchange);
  CHECK(got.exchange_type == want.exchange_type);
  CHECK(got.routing_key == want.routing_key);
  CHECK(got.persistent == want.persistent);
  CHECK(got.mandatory == want.mandatory);
  CHECK(got.rate == want.rate);
  CHECK(got.interval == want.interval);
  CHECK(got.json == want.json);
  CHECK(got.auto_delete == want.auto_delete);
  CHECK(got.taken == want.taken);
  CHECK(got.prepared == want.prepared);
  CHECK(got.receive_batch_bytes == want.receive_batch_bytes);
  CHECK(got.receive_batch_wait_us == want.receive_batch_wait_us);
  CHECK(got.id == want.id);
  CHECK(got.quorum_queue == want.quorum_queue);
  CHECK(got.recover == want.recover);
  CHECK(got.republish == want.republish);
}

// Parses args, which must succeed without --help, and compares every field
// with the defaults as changed by `change`.
template <class F>
void expect_parsed(const std::vector<std::string>& args, F change) {
  std::string shown;
  for (const auto& a : args) shown += "[" + a + "] ";
  CAPTURE(shown);
  const parsed p = parse(args);
  REQUIRE_MESSAGE(p.ok, p.error);
  CHECK(p.error.empty());
  CHECK_FALSE(p.help);
  options want;
  change(want);
  check_same(p.opts, want);
}

// Parses args, which must fail; returns the error message.
std::string error_of(const std::vector<std::string>& args) {
  std::string shown;
  for (const auto& a : args) shown += "[" + a + "] ";
  CAPTURE(shown);
  const parsed p = parse(args);
  CHECK_FALSE(p.ok);
  CHECK_FALSE(p.help);
  CHECK_FALSE(p.error.empty());
  return p.error;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The reference: sort, then the value at each nearest rank ceil(p/100 * n),
// computed in integers (the points are whole percentages), at least rank 1.
percentiles reference(std::vector<std::uint32_t> us) {
  std::sort(us.begin(), us.end());
  percentiles out{};
  const std::uint64_t n = us.size();
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto p = static_cast<std::uint64_t>(percentile_points[i]);
    const std::uint64_t rank = std::max<std::uint64_t>(1, (p * n + 99) / 100);
    out[i] = us[rank - 1];
  }
  return out;
}

percentiles of(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d,
               std::uint64_t e) {
  return {a, b, c, d, e};
}

constexpr std::uint32_t dense_limit = 1u << 20;

}  // namespace

// ---------------------------------------------------------------- options

TEST_CASE("perf options: an empty command line gives the defaults") {
  const parsed p = parse({});
  REQUIRE(p.ok);
  CHECK_FALSE(p.help);
  CHECK(p.error.empty());
  const options& o = p.opts;
  CHECK(o.uris == std::vector<std::string>{"amqp://guest:guest@127.0.0.1:5672/"});
  CHECK(o.producers == 1);
  CHECK(o.consumers == 1);
  CHECK(o.size == 12);
  CHECK_FALSE(o.auto_ack);
  CHECK(o.multi_ack_every == 0);
  CHECK(o.prefetch == 0);
  CHECK(o.confirm == -1);
  CHECK(o.time_limit == 0);
  CHECK(o.producer_count == 0);
  CHECK(o.consumer_count == 0);
  CHECK(o.queue.empty());
  CHECK(o.exchange == "direct");
  CHECK(o.exchange_type == "direct");
  CHECK(o.routing_key.empty());
  CHECK_FALSE(o.persistent);
  CHECK_FALSE(o.mandatory);
  CHECK(o.rate == 0);
  CHECK(o.interval == 1);
  CHECK_FALSE(o.json);
  CHECK_FALSE(o.auto_delete);
  CHECK_FALSE(o.taken);
  CHECK(o.prepared);
  CHECK(o.receive_batch_bytes == 0);
  CHECK(o.receive_batch_wait_us == 1000);
  CHECK(o.id.empty());
  CHECK_FALSE(o.quorum_queue);
  CHECK_FALSE(o.recover);
  CHECK_FALSE(o.republish);
  // And the helper agrees with the struct's initialisers.
  check_same(o, options{});
}

TEST_CASE("perf options: each short flag and its long name set one field") {
  struct flag {
    const char* short_name;
    const char* long_name;
    std::vector<std::string> value;  // empty for a flag without a value
    void (*change)(options&);
  };
  const std::vector<flag> flags = {
      {"-h", "--uri", {"amqp://u:p@broker:5673/vh"},
       [](options& o) { o.uris = {"amqp://u:p@broker:5673/vh"}; }},
      {"-H", "--uris", {"amqp://a/,amqp://b/"},
       [](options& o) { o.uris = {"amqp://a/", "amqp://b/"}; }},
      {"-x", "--producers", {"3"}, [](options& o) { o.producers = 3; }},
      {"-y", "--consumers", {"4"}, [](options& o) { o.consumers = 4; }},
      {"-s", "--size", {"4096"}, [](options& o) { o.size = 4096; }},
      {"-a", "--autoack", {}, [](options& o) { o.auto_ack = true; }},
      {"-A", "--multi-ack-every", {"50"}, [](options& o) { o.multi_ack_every = 50; }},
      {"-q", "--qos", {"300"}, [](options& o) { o.prefetch = 300; }},
      {"-c", "--confirm", {"64"}, [](options& o) { o.confirm = 64; }},
      {"-z", "--time", {"2.5"}, [](options& o) { o.time_limit = 2.5; }},
      {"-C", "--pmessages", {"1000"}, [](options& o) { o.producer_count = 1000; }},
      {"-D", "--cmessages", {"2000"}, [](options& o) { o.consumer_count = 2000; }},
      {"-u", "--queue", {"q.one"}, [](options& o) { o.queue = "q.one"; }},
      {"-e", "--exchange", {"ex.one"}, [](options& o) { o.exchange = "ex.one"; }},
      {"-t", "--type", {"topic"}, [](options& o) { o.exchange_type = "topic"; }},
      {"-k", "--routing-key", {"rk.one"}, [](options& o) { o.routing_key = "rk.one"; }},
      {"-r", "--rate", {"1500.5"}, [](options& o) { o.rate = 1500.5; }},
      {"-i", "--interval", {"0.25"}, [](options& o) { o.interval = 0.25; }},
  };
  for (const auto& f : flags) {
    for (const char* name : {f.short_name, f.long_name}) {
      std::vector<std::string> args{name};
      args.insert(args.end(), f.value.begin(), f.value.end());
      expect_parsed(args, f.change);
    }
  }
}

TEST_CASE("perf options: several URIs, from -h given again and from -H lists") {
  const std::string a = "amqp://u:p@a/", b = "amqps://u:p@b/?cacertfile=/ca.pem", c = "amqp://c/";
  // The first one given replaces the default; the rest follow in order.
  expect_parsed({"-h", a, "-h", b}, [&](options& o) { o.uris = {a, b}; });
  expect_parsed({"--uri", a, "--uri", b, "-h", c}, [&](options& o) { o.uris = {a, b, c}; });
  expect_parsed({"-H", a + "," + b + "," + c}, [&](options& o) { o.uris = {a, b, c}; });
  expect_parsed({"--uris", a}, [&](options& o) { o.uris = {a}; });
  expect_parsed({"-h", c, "--uris", a + "," + b}, [&](options& o) { o.uris = {c, a, b}; });
  expect_parsed({"-H", a + "," + b, "-h", c}, [&](options& o) { o.uris = {a, b, c}; });
  // An empty entry is a mistake, not a URI.
  CHECK(error_of({"-H", a + ",," + b}) == "bad value '" + a + ",," + b + "' for -H");
  CHECK(error_of({"-H", a + ","}) == "bad value '" + a + ",' for -H");
  CHECK(error_of({"--uris", ""}) == "bad value '' for --uris");
  CHECK(error_of({"-H"}) == "missing value for -H");
}

TEST_CASE("perf options: -f persistent and -f mandatory") {
  expect_parsed({"-f", "persistent"}, [](options& o) { o.persistent = true; });
  expect_parsed({"--flag", "persistent"}, [](options& o) { o.persistent = true; });
  expect_parsed({"-f", "mandatory"}, [](options& o) { o.mandatory = true; });
  expect_parsed({"--flag", "mandatory"}, [](options& o) { o.mandatory = true; });
  // Given twice, as PerfTest allows: both.
  expect_parsed({"-f", "persistent", "-f", "mandatory"}, [](options& o) {
    o.persistent = true;
    o.mandatory = true;
  });
}

TEST_CASE("perf options: warren-perf's own long options") {
  expect_parsed({"--json"}, [](options& o) { o.json = true; });
  expect_parsed({"--auto-delete"}, [](options& o) { o.auto_delete = true; });
  expect_parsed({"--generic-publish"}, [](options& o) { o.prepared = false; });
  // --taken needs a named queue and no consumers.
  expect_parsed({"--taken", "-u", "q", "-y", "0"}, [](options& o) {
    o.taken = true;
    o.queue = "q";
    o.consumers = 0;
  });
  expect_parsed({"-y", "0", "-u", "q", "--taken"}, [](options& o) {
    o.taken = true;
    o.queue = "q";
    o.consumers = 0;
  });
}

TEST_CASE("perf options: --receive-batch BYTES[:MICROSECONDS]") {
  expect_parsed({"--receive-batch", "16384"}, [](options& o) {
    o.receive_batch_bytes = 16384;
    o.receive_batch_wait_us = 1000;
  });
  expect_parsed({"--receive-batch", "16384:250"}, [](options& o) {
    o.receive_batch_bytes = 16384;
    o.receive_batch_wait_us = 250;
  });
  // The limits themselves are allowed: 4 MiB, 1 and 1000000 microseconds.
  expect_parsed({"--receive-batch", "4194304"},
                [](options& o) { o.receive_batch_bytes = 4194304; });
  expect_parsed({"--receive-batch", "1:1"}, [](options& o) {
    o.receive_batch_bytes = 1;
    o.receive_batch_wait_us = 1;
  });
  expect_parsed({"--receive-batch", "65536:1000000"}, [](options& o) {
    o.receive_batch_bytes = 65536;
    o.receive_batch_wait_us = 1000000;
  });
  expect_parsed({"--receive-batch", "0"}, [](options&) {});
}

TEST_CASE("perf options: a full PerfTest command line") {
  expect_parsed({"-h", "amqp://a:b@c:1/d", "-x", "2", "-y", "0", "-s", "1000", "-a", "-A", "10",
                 "-q", "500", "-c", "100", "-z", "30", "-C", "5000", "-D", "7000", "-u", "perf.q",
                 "-e", "", "-t", "fanout", "-k", "key", "-f", "persistent", "-f", "mandatory",
                 "-r", "200", "-i", "5", "--json", "--taken", "--auto-delete", "--generic-publish",
                 "--receive-batch", "8192:50"},
                [](options& o) {
                  o.uris = {"amqp://a:b@c:1/d"};
                  o.producers = 2;
                  o.consumers = 0;
                  o.size = 1000;
                  o.auto_ack = true;
                  o.multi_ack_every = 10;
                  o.prefetch = 500;
                  o.confirm = 100;
                  o.time_limit = 30;
                  o.producer_count = 5000;
                  o.consumer_count = 7000;
                  o.queue = "perf.q";
                  o.exchange = "";
                  o.exchange_type = "fanout";
                  o.routing_key = "key";
                  o.persistent = true;
                  o.mandatory = true;
                  o.rate = 200;
                  o.interval = 5;
                  o.json = true;
                  o.taken = true;
                  o.auto_delete = true;
                  o.prepared = false;
                  o.receive_batch_bytes = 8192;
                  o.receive_batch_wait_us = 50;
                });
  // A later value replaces an earlier one; the minimum size is allowed.
  expect_parsed({"-x", "5", "-x", "0", "-s", "12"}, [](options& o) { o.producers = 0; });
}

TEST_CASE("perf options: --help and -? set help") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"-?"}, {"-x", "2", "--help"}, {"--help", "--no-such-option"}}) {
    const parsed p = parse(args);
    CHECK(p.ok);
    CHECK(p.help);
    CHECK(p.error.empty());
  }
  const std::string usage = usage_text();
  for (const char* flag : {"-h, --uri", "-H, --uris", "-x, --producers", "-y, --consumers",
                           "-s, --size", "-a, --autoack", "-A, --multi-ack-every", "-q, --qos",
                           "-c, --confirm",
                           "-z, --time", "-C, --pmessages", "-D, --cmessages", "-u, --queue",
                           "-e, --exchange", "-t, --type", "-k, --routing-key", "-f, --flag",
                           "-r, --rate", "-i, --interval", "--json", "--taken", "--auto-delete",
                           "--generic-publish", "--receive-batch", "--id", "--quorum-queue",
                           "--recover", "--republish", "--help"}) {
    CAPTURE(flag);
    CHECK(contains(usage, flag));
  }
}

TEST_CASE("perf options: unknown arguments") {
  CHECK(error_of({"--bogus"}) == "unknown argument '--bogus'");
  CHECK(error_of({"stray"}) == "unknown argument 'stray'");
  CHECK(error_of({"-xy", "1"}) == "unknown argument '-xy'");
  CHECK(error_of({"-Z", "1"}) == "unknown option '-Z'");
  CHECK(error_of({"-x", "1", "--producer", "2"}) == "unknown argument '--producer'");
}

TEST_CASE("perf options: a missing value") {
  CHECK(error_of({"-x"}) == "missing value for -x");
  CHECK(error_of({"--producers"}) == "missing value for --producers");
  CHECK(error_of({"-y", "1", "-u"}) == "missing value for -u");
  CHECK(error_of({"-f"}) == "missing value for -f");
  CHECK(error_of({"--receive-batch"}) == "missing value for --receive-batch");
}

TEST_CASE("perf options: values that are not numbers or out of range") {
  CHECK(error_of({"-x", "abc"}) == "bad value 'abc' for -x");
  CHECK(error_of({"--producers", "two"}) == "bad value 'two' for --producers");
  CHECK(error_of({"-x", "-1"}) == "bad value '-1' for -x");
  CHECK(error_of({"-y", "1.5"}) == "bad value '1.5' for -y");
  CHECK(error_of({"-s", "12k"}) == "bad value '12k' for -s");
  CHECK(error_of({"-s", ""}) == "bad value '' for -s");
  CHECK(error_of({"-A", "-5"}) == "bad value '-5' for -A");
  CHECK(error_of({"-q", "65536"}) == "bad value '65536' for -q");
  CHECK(error_of({"-c", "ten"}) == "bad value 'ten' for -c");
  CHECK(error_of({"-C", "1e3"}) == "bad value '1e3' for -C");
  CHECK(error_of({"--cmessages", "x"}) == "bad value 'x' for --cmessages");
  CHECK(error_of({"-z", "soon"}) == "bad value 'soon' for -z");
  CHECK(error_of({"-z", "-1"}) == "bad value '-1' for -z");
  CHECK(error_of({"-z", "inf"}) == "bad value 'inf' for -z");
  CHECK(error_of({"-r", "fast"}) == "bad value 'fast' for -r");
  CHECK(error_of({"-r", "10/s"}) == "bad value '10/s' for -r");
  CHECK(error_of({"-i", "0"}) == "bad value '0' for -i");
  CHECK(error_of({"--interval", "nan"}) == "bad value 'nan' for --interval");
}

TEST_CASE("perf options: the body needs at least 12 bytes") {
  for (const char* size : {"11", "5", "0"}) {
    CAPTURE(size);
    const std::string e = error_of({"-s", size});
    CHECK(contains(e, "-s"));
    CHECK(contains(e, "12"));
  }
  CHECK(contains(error_of({"--size", "11"}), "at least 12 bytes"));
  expect_parsed({"-s", "12"}, [](options&) {});
  expect_parsed({"-s", "13"}, [](options& o) { o.size = 13; });
}

TEST_CASE("perf options: --taken with consumers") {
  const std::string want =
      "--taken counts the messages in the -u queue, which consumers would take: add -y 0";
  CHECK(error_of({"--taken", "-u", "q"}) == want);  // one consumer by default
  CHECK(error_of({"--taken", "-u", "q", "-y", "2"}) == want);
}

TEST_CASE("perf options: --receive-batch given twice: the last one counts, wait included") {
  expect_parsed({"--receive-batch", "8192:50", "--receive-batch", "4096"}, [](options& o) {
    o.receive_batch_bytes = 4096;
    o.receive_batch_wait_us = 1000;
  });
}

TEST_CASE("perf options: --taken without a named queue") {
  CHECK(error_of({"--taken"}) == "--taken needs a named queue (-u)");
  CHECK(error_of({"--taken", "-x", "1", "-y", "0"}) == "--taken needs a named queue (-u)");
  CHECK(error_of({"--taken", "-u", ""}) == "--taken needs a named queue (-u)");
}

TEST_CASE("perf options: -f takes persistent or mandatory only") {
  CHECK(error_of({"-f", "bogus"}) == "bad value 'bogus' for -f");
  CHECK(error_of({"--flag", "Persistent"}) == "bad value 'Persistent' for --flag");
  CHECK(error_of({"-f", ""}) == "bad value '' for -f");
}

TEST_CASE("perf options: bad --receive-batch values") {
  for (const char* v : {"4194305", "99999999", "16384:0", "16384:x", "16384:", ":250", "x",
                        "-1", "16384:1000001", "16384:250:1", "1k", ""}) {
    CAPTURE(v);
    const std::string e = error_of({"--receive-batch", v});
    CHECK(e.rfind("bad value '" + std::string(v) + "' for --receive-batch", 0) == 0);
  }
}

TEST_CASE("perf options: --recover, --republish, --quorum-queue, --id") {
  // --recover raises the default size to 16: the body names its producer.
  expect_parsed({"--recover"}, [](options& o) {
    o.recover = true;
    o.size = 16;
  });
  expect_parsed({"--recover", "-s", "100"}, [](options& o) {
    o.recover = true;
    o.size = 100;
  });
  expect_parsed({"--recover", "--republish"}, [](options& o) {
    o.recover = o.republish = true;
    o.size = 16;
  });
  expect_parsed({"-u", "q", "--quorum-queue"}, [](options& o) {
    o.queue = "q";
    o.quorum_queue = true;
  });
  expect_parsed({"--id", "run-7"}, [](options& o) { o.id = "run-7"; });
  CHECK(contains(error_of({"--recover", "-s", "12"}), "at least 16 bytes"));
  CHECK(contains(error_of({"-s", "15", "--recover"}), "at least 16 bytes"));
  CHECK(error_of({"--republish"}) == "--republish needs --recover");
  CHECK(error_of({"--quorum-queue"}) == "--quorum-queue needs a named queue (-u)");
  CHECK(error_of({"--id"}) == "missing value for --id");
}

// ---------------------------------------------------------------- latency

TEST_CASE("perf latency: nearest rank") {
  CHECK(nearest_rank(50, 0) == 0);
  CHECK(nearest_rank(0, 0) == 0);
  CHECK(nearest_rank(0, 1) == 1);
  CHECK(nearest_rank(0, 100) == 1);
  CHECK(nearest_rank(50, 1) == 1);
  CHECK(nearest_rank(99, 1) == 1);
  CHECK(nearest_rank(50, 100) == 50);
  CHECK(nearest_rank(75, 100) == 75);
  CHECK(nearest_rank(95, 100) == 95);
  CHECK(nearest_rank(99, 100) == 99);
  CHECK(nearest_rank(100, 100) == 100);
  CHECK(nearest_rank(50, 101) == 51);
  CHECK(nearest_rank(50, 3) == 2);
  CHECK(nearest_rank(75, 3) == 3);
  CHECK(nearest_rank(95, 20) == 19);
  CHECK(nearest_rank(99, 20) == 20);
  CHECK(nearest_rank(99, 1000) == 990);
  CHECK(nearest_rank(99, 1001) == 991);
  // Against ceil(p * n / 100) in integers, for every n up to 5000.
  std::uint64_t mismatches = 0;
  for (std::uint64_t n = 1; n <= 5000; ++n)
    for (double p : percentile_points) {
      const auto pi = static_cast<std::uint64_t>(p);
      const std::uint64_t want = std::max<std::uint64_t>(1, (pi * n + 99) / 100);
      if (nearest_rank(p, n) != want) ++mismatches;
    }
  CHECK(mismatches == 0);
}

TEST_CASE("perf latency: samples are kept in whole microseconds") {
  latency_samples s;
  CHECK(s.empty());
  CHECK(s.size() == 0);
  s.add(0);
  s.add(999);                       // below a microsecond
  s.add(1000);                      // exactly one
  s.add(1999);                      // truncated, not rounded
  s.add(123456789);                 // 123456 us
  s.add(0xFFFFFFFFull * 1000);      // the largest that fits
  s.add(0xFFFFFFFFull * 1000 + 1000);  // saturates
  s.add(UINT64_MAX);                // saturates
  CHECK_FALSE(s.empty());
  REQUIRE(s.size() == 8);
  const std::vector<std::uint32_t> want = {0,      0,          1,          1,
                                           123456, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
  CHECK(s.samples() == want);
  s.clear();
  CHECK(s.empty());
  CHECK(s.size() == 0);
}

TEST_CASE("perf latency: 1..100 microseconds, shuffled") {
  std::vector<std::uint64_t> ns;
  // Sub-microsecond parts are dropped: i us and up to 999 ns more is i us.
  for (std::uint64_t i = 1; i <= 100; ++i) ns.push_back(i * 1000 + (i * 37) % 1000);
  std::mt19937 rng(12345);
  std::shuffle(ns.begin(), ns.end(), rng);

  latency_samples s;
  for (std::uint64_t v : ns) s.add(v);
  REQUIRE(s.size() == 100);
  const std::vector<std::uint32_t> kept = s.samples();  // copy: summarise reorders
  CHECK(s.summarise() == of(1, 50, 75, 95, 99));
  // Summarising reorders but neither loses nor changes a sample, and can be
  // done again.
  CHECK(s.size() == 100);
  std::vector<std::uint32_t> a = kept, b = s.samples();
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  CHECK(a == b);
  CHECK(s.summarise() == of(1, 50, 75, 95, 99));

  latency_histogram h;
  h.add_all(kept);
  CHECK(h.count() == 100);
  CHECK(h.summarise() == of(1, 50, 75, 95, 99));
}

TEST_CASE("perf latency: small and repeated sample sets") {
  latency_samples s;
  CHECK(s.summarise() == of(0, 0, 0, 0, 0));  // empty

  s.add(42'000);
  CHECK(s.summarise() == of(42, 42, 42, 42, 42));

  s.clear();
  for (std::uint64_t us : {30, 10, 20}) s.add(us * 1000);
  // n = 3: ranks 1, 2, 3, 3, 3.
  CHECK(s.summarise() == of(10, 20, 30, 30, 30));

  s.clear();
  for (std::uint64_t us : {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 900})
    s.add(us * 1000);
  // n = 20: ranks 1, 10, 15, 19, 20.
  CHECK(s.summarise() == of(7, 7, 7, 7, 900));

  latency_histogram h;
  h.add_all({7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 900});
  CHECK(h.summarise() == of(7, 7, 7, 7, 900));
}

TEST_CASE("perf latency: an empty histogram") {
  latency_histogram h;
  CHECK(h.count() == 0);
  CHECK(h.summarise() == of(0, 0, 0, 0, 0));
  h.add_all({});
  CHECK(h.count() == 0);
  CHECK(h.summarise() == of(0, 0, 0, 0, 0));
  // An empty interval's samples, as warren-perf hands them over.
  latency_samples none;
  h.add_all(none.samples());
  CHECK(h.count() == 0);
  CHECK(h.summarise() == of(0, 0, 0, 0, 0));
}

TEST_CASE("perf latency: the histogram across its dense limit") {
  // 1..90 us, then ten values from the dense limit up: ranks 95 and 99 are
  // in the sparse map.
  std::vector<std::uint32_t> us;
  for (std::uint32_t i = 1; i <= 90; ++i) us.push_back(i);
  for (std::uint32_t i = 0; i < 10; ++i) us.push_back(dense_limit + i);
  std::mt19937 rng(7);
  std::shuffle(us.begin(), us.end(), rng);

  latency_histogram h;
  h.add_all(us);
  CHECK(h.count() == 100);
  CHECK(h.summarise() == of(1, 50, 75, dense_limit + 4, dense_limit + 8));

  latency_samples s;
  for (std::uint32_t v : us) s.add(std::uint64_t{v} * 1000);
  CHECK(s.summarise() == of(1, 50, 75, dense_limit + 4, dense_limit + 8));

  // The last dense counter and the first sparse value, in order.
  latency_histogram edge;
  edge.add_all({dense_limit, dense_limit - 1});
  CHECK(edge.summarise() == of(dense_limit - 1, dense_limit - 1, dense_limit, dense_limit,
                               dense_limit));

  // Nothing below the limit at all: every percentile from the sparse map.
  latency_histogram slow;
  slow.add_all({0xFFFFFFFFu, 5'000'000, dense_limit, 5'000'000});
  CHECK(slow.count() == 4);
  // n = 4: ranks 1, 2, 3, 4, 4.
  CHECK(slow.summarise() == of(dense_limit, 5'000'000, 5'000'000, 0xFFFFFFFFu, 0xFFFFFFFFu));
}

TEST_CASE("perf latency: the histogram accumulates intervals") {
  latency_histogram h;
  h.add_all({1, 2, 3});
  h.add_all({});
  h.add_all({100, 4'000'000});
  CHECK(h.count() == 5);
  // n = 5: ranks 1, 3, 4, 5, 5.
  CHECK(h.summarise() == of(1, 3, 100, 4'000'000, 4'000'000));
  // summarise() leaves the histogram as it was.
  CHECK(h.summarise() == of(1, 3, 100, 4'000'000, 4'000'000));
  CHECK(h.count() == 5);
}

TEST_CASE("perf latency: samples and histogram agree with a sorted reference") {
  std::mt19937_64 rng(20240601);
  latency_histogram whole_run;
  std::vector<std::uint32_t> everything;
  // Intervals of different sizes, mostly fast, some above the dense limit,
  // a few saturated.
  for (std::size_t n : {1u, 2u, 7u, 100u, 101u, 999u, 4096u, 10007u}) {
    CAPTURE(n);
    latency_samples interval;
    std::vector<std::uint64_t> ns;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t pick = rng() % 100;
      std::uint64_t v;
      if (pick < 80)
        v = rng() % 2'000'000;  // up to 2 ms
      else if (pick < 97)
        v = rng() % 50'000'000;  // up to 50 ms
      else if (pick < 99)
        v = 1'048'576'000 + rng() % 10'000'000'000ull;  // above 2^20 us
      else
        v = 0xFFFFFFFFull * 1000 + rng() % 1'000'000'000;  // saturated
      ns.push_back(v);
      interval.add(v);
    }
    std::vector<std::uint32_t> us;
    for (std::uint64_t v : ns)
      us.push_back(v / 1000 > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(v / 1000));
    CHECK(interval.samples() == us);
    const percentiles want = reference(us);
    CHECK(interval.summarise() == want);

    latency_histogram h;
    h.add_all(interval.samples());  // reordered by summarise: order must not matter
    CHECK(h.count() == n);
    CHECK(h.summarise() == want);

    whole_run.add_all(interval.samples());
    everything.insert(everything.end(), us.begin(), us.end());
  }
  CHECK(whole_run.count() == everything.size());
  CHECK(whole_run.summarise() == reference(everything));
}
