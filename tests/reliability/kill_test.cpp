// Check 1: kill -9 of the broker during 100,000 persistent, confirmed publishes
// to a durable queue, without recovery. Every publish confirmed before the kill
// is in the queue after the node restarts; every other publish fails at its
// caller with an error; no call hangs. And warren-perf under the same kill:
// its summary still counts what was published, confirmed, nacked and failed,
// and it exits non-zero.
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "reliability.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace rel = warren::test::reliability;
namespace cluster = warren::test::cluster;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t total = 100000;
constexpr int workers = 128;
constexpr std::uint64_t kill_after = 30000;  // confirmed publishes before the kill

struct tally {
  std::uint64_t next = 0;  // the next index a worker takes
  std::uint64_t confirmed = 0, nacked = 0, failed = 0, other = 0;
  int running = workers;
  std::vector<char> acked = std::vector<char>(total, 0);
  error_info first_error;
  clock_type::time_point killed_at{}, first_failure{}, last_done{};
};

asio::awaitable<void> publisher(channel ch, std::string queue, std::shared_ptr<tally> t) {
  basic_properties persistent;
  persistent.delivery_mode = 2;
  while (t->next < total) {
    const std::uint64_t i = t->next++;
    const std::string body = std::to_string(i);
    try {
      auto pending = ch.publish("", queue, body, persistent);
      const publish_outcome out = co_await std::move(pending);
      if (out.status == publish_status::acked) {
        t->acked[i] = 1;
        ++t->confirmed;
      } else if (out.status == publish_status::nacked) {
        ++t->nacked;
      } else {
        ++t->other;
      }
    } catch (const error& e) {
      if (!t->first_error) {
        t->first_error = e.info();
        t->first_failure = clock_type::now();
      }
      ++t->failed;
    }
  }
  t->last_done = clock_type::now();
  --t->running;
}

// Kills the node once `kill_after` publishes are confirmed.
asio::awaitable<void> killer(long pid, std::shared_ptr<tally> t) {
  while (t->confirmed < kill_after && t->running > 0) co_await test::sleep_for(1ms);
  if (t->running == 0) co_return;
  t->killed_at = clock_type::now();
  REQUIRE(cluster::kill_hard(pid));
}

// Starts the node again however the test ends, so the next test finds it.
struct restart_at_exit {
  bool armed = false;
  ~restart_at_exit() {
    if (armed && cluster::script("standalone start") != 0)
      MESSAGE("scripts/cluster standalone start failed after the test");
  }
};

}  // namespace

TEST_CASE("reliability: kill -9 during 100k persistent confirmed publishes loses no confirmed message" *
          doctest::skip(!rel::wanted())) {
  const std::string queue = "warren-rel.kill";
  auto t = std::make_shared<tally>();
  restart_at_exit restart;
  double fail_seconds = 0, first_fail_seconds = 0;

  test::run(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const long pid = cluster::os_pid(rel::node_name());
        REQUIRE(pid > 0);

        auto c = co_await rel::open_node();
        co_await rel::delete_queue(c, queue);
        auto ch = co_await c.open_channel();
        co_await ch.queue_declare(queue, {.durable = true});
        co_await ch.confirm_select();

        restart.armed = true;
        for (int w = 0; w < workers; ++w)
          asio::co_spawn(ex, publisher(ch, queue, t), asio::detached);
        auto k = killer(pid, t);
        co_await std::move(k);
        // No call hangs: every publish ends soon after the kill.
        const auto deadline = clock_type::now() + 30s;
        while (t->running > 0 && clock_type::now() < deadline) co_await test::sleep_for(10ms);
        REQUIRE_MESSAGE(t->running == 0, t->running, " publishers still waiting 30 s after the kill");
        fail_seconds = rel::seconds_between(t->killed_at, t->last_done);
        first_fail_seconds = rel::seconds_between(t->killed_at, t->first_failure);
        CHECK_FALSE(c.is_open());
      },
      120s);

  // The node comes back with what it had written.
  REQUIRE(cluster::script("standalone start") == 0);
  restart.armed = false;

  std::uint64_t present = 0, lost = 0, duplicates = 0;
  test::run(
      [&]() -> asio::awaitable<void> {
        auto c = co_await rel::open_node();
        auto ch = co_await c.open_channel();
        auto q = co_await ch.queue_declare(queue, {.passive = true});
        std::vector<char> seen(total, 0);
        auto cons = co_await ch.consume(queue, {.no_ack = true});
        message m;
        for (std::uint32_t n = 0; n < q.message_count; ++n) {
          auto next = cons.next(m);
          auto ok = co_await with_timeout(std::move(next), 10s);
          REQUIRE(ok);
          const std::uint64_t i = std::stoull(m.body);
          REQUIRE(i < total);
          if (seen[i]) ++duplicates;
          seen[i] = 1;
        }
        for (std::uint64_t i = 0; i < total; ++i) {
          present += seen[i] ? 1 : 0;
          if (t->acked[i] && !seen[i]) ++lost;
        }
        co_await ch.queue_delete(queue);
        co_await c.close();
      },
      120s);

  std::printf(
      "reliability: kill-9: confirmed %llu present %llu failed %llu nacked %llu lost %llu "
      "(first failure %.3f s after the kill, the last of %d publishers' calls %.3f s after it; "
      "first error: %s)\n",
      static_cast<unsigned long long>(t->confirmed), static_cast<unsigned long long>(present),
      static_cast<unsigned long long>(t->failed), static_cast<unsigned long long>(t->nacked),
      static_cast<unsigned long long>(lost), first_fail_seconds, workers, fail_seconds, t->first_error.describe().c_str());
  CHECK(lost == 0);
  CHECK(duplicates == 0);
  CHECK(t->other == 0);
  CHECK(t->confirmed >= kill_after);
  CHECK(t->failed > 0);
  // Every publish ended one way or the other: confirmed, nacked, or failed.
  CHECK(t->confirmed + t->nacked + t->failed == total);
  CHECK(present >= t->confirmed);
}

namespace {

// The number at "key": in a JSON line; -1 if absent.
long long json_number(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  const auto at = line.find(k);
  return at == std::string::npos ? -1 : std::atoll(line.c_str() + at + k.size());
}

}  // namespace

TEST_CASE("reliability: warren-perf counts published, confirmed, nacked and failed when its broker is killed" *
          doctest::skip(!rel::wanted())) {
  const char* perf = std::getenv("WARREN_PERF");
  REQUIRE_MESSAGE(perf != nullptr, "WARREN_PERF names build/warren-perf (meson sets it)");
  const long pid = cluster::os_pid(rel::node_name());
  REQUIRE(pid > 0);
  restart_at_exit restart;
  restart.armed = true;

  const std::string out = "/tmp/warren-rel-perf." + std::to_string(::getpid());
  const std::string cmd = "timeout 60 '" + std::string(perf) + "' -h '" + rel::node_url() +
                          "' -x 2 -y 0 -s 64 -c 500 -f persistent -u warren-rel.perf -e '' -z 60 "
                          "--json >" + out + ".out 2>" + out + ".err";
  int status = -1;
  std::thread runner([&] { status = std::system(cmd.c_str()); });
  std::this_thread::sleep_for(3s);
  const auto killed_at = clock_type::now();
  REQUIRE(cluster::kill_hard(pid));
  runner.join();
  const double after_kill = rel::seconds_between(killed_at, clock_type::now());

  std::string summary, errors, line;
  {
    std::ifstream o(out + ".out");
    while (std::getline(o, line))
      if (line.rfind("{\"type\":\"summary\"", 0) == 0) summary = line;
    std::ifstream e(out + ".err");
    while (std::getline(e, line)) errors += line + "\n";
  }
  std::remove((out + ".out").c_str());
  std::remove((out + ".err").c_str());
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const long long sent = json_number(summary, "sent"), confirmed = json_number(summary, "confirmed"),
                  nacked = json_number(summary, "nacked"), failed = json_number(summary, "failed");
  std::printf("reliability: kill-9 under warren-perf: exit %d %.3f s after the kill; sent %lld "
              "confirmed %lld nacked %lld failed %lld\n",
              rc, after_kill, sent, confirmed, nacked, failed);
  INFO("stderr: ", errors);
  INFO("summary: ", summary);
  CHECK(rc == 1);
  CHECK(after_kill < 10);
  REQUIRE_FALSE(summary.empty());
  CHECK(sent > 0);
  CHECK(confirmed > 0);
  CHECK(failed > 0);
  CHECK(sent == confirmed + nacked + failed);
  CHECK(errors.find("producer failed") != std::string::npos);

  REQUIRE(cluster::script("standalone start") == 0);
  restart.armed = false;
  test::run([]() -> asio::awaitable<void> {
    auto c = co_await rel::open_node();
    co_await rel::delete_queue(c, "warren-rel.perf");
    co_await c.close();
  });
}
