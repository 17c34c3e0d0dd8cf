// Check 7: memory stays bounded under a backlog. 1 GiB of 64 KiB messages
// (16,384) waits in a lazy queue; a consumer with prefetch 100 takes them all,
// acking each. The process's peak resident set while consuming stays within
// prefetch x message size above what it was before, plus a constant stated
// here (allowance, below): the client's read buffer and the consumer's ring of
// reused slots, with room for the allocator. The backlog is published by a
// child process, so that nothing the publisher allocated counts either way.
#include <doctest/doctest.h>

#include <algorithm>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "reliability.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace rel = warren::test::reliability;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t message_size = 64 * 1024;
constexpr std::uint64_t backlog_bytes = 1ull << 30;
constexpr std::uint32_t messages = static_cast<std::uint32_t>(backlog_bytes / message_size);
constexpr std::uint16_t prefetch = 100;
// The constant above prefetch x message size.
constexpr std::uint64_t allowance = 4ull << 20;  // measured: about 2.2 MiB

// Publishes the backlog to `queue` (declared lazy, so the node keeps it on
// disk), all confirmed; runs in the child process.
asio::awaitable<void> publish_backlog(std::string queue) {
  field_table lazy;
  lazy.set("x-queue-mode", "lazy");
  auto c = co_await rel::open_node();
  auto ch = co_await c.open_channel();
  co_await ch.queue_declare(queue, {.arguments = &lazy});
  co_await ch.confirm_select(256);
  std::string body(message_size, 'b');
  for (std::uint32_t i = 0; i < messages; ++i) {
    body[0] = static_cast<char>(i);
    co_await ch.publish_pipelined("", queue, body);
  }
  const confirm_summary s = co_await ch.wait_for_confirms();
  if (s.acked != messages) throw std::runtime_error("not every message was confirmed");
  co_await c.close();
}

}  // namespace

TEST_CASE("reliability: consuming a 1 GiB backlog at prefetch 100 keeps peak RSS bounded" *
          doctest::skip(!rel::wanted())) {
  const std::string queue = test::unique_name("rel-backlog");
  const auto t0 = clock_type::now();
  std::fflush(nullptr);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int status = 0;
    try {
      test::run([&]() -> asio::awaitable<void> { co_await publish_backlog(queue); }, 240s);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "reliability: backlog: publishing failed: %s\n", e.what());
      status = 1;
    }
    std::fflush(nullptr);
    ::_exit(status);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "the publishing child failed");
  const double publish_s = rel::seconds_between(t0, clock_type::now());

  test::run(
      [&]() -> asio::awaitable<void> {

        auto c = co_await rel::open_node();
        auto ch = co_await c.open_channel();
        auto q = co_await ch.queue_declare(queue, {.passive = true});
        REQUIRE(q.message_count == messages);

        const std::uint64_t before = rel::rss_bytes();
        REQUIRE(rel::reset_peak_rss());
        const auto t1 = clock_type::now();
        auto cons = co_await ch.consume(queue, {.prefetch = prefetch});
        message m;
        std::uint64_t bytes = 0;
        std::size_t most_buffered = 0;
        for (std::uint32_t i = 0; i < messages; ++i) {
          auto next = cons.next(m);
          const bool ok = co_await with_timeout(std::move(next), 30s);
          REQUIRE(ok);
          REQUIRE(m.body.size() == message_size);
          bytes += m.body.size();
          most_buffered = std::max(most_buffered, cons.buffered());
          ch.ack(m.delivery_tag);
        }
        const double consume_s = rel::seconds_between(t1, clock_type::now());
        const std::uint64_t peak = rel::peak_rss_bytes();
        const std::uint64_t growth = peak > before ? peak - before : 0;
        const std::uint64_t bound = prefetch * message_size + allowance;
        std::printf(
            "reliability: backlog: %u messages of 64 KiB (%.0f MiB) published in %.1f s, consumed "
            "in %.1f s at prefetch %u (at most %zu buffered); RSS before %.1f MiB, peak %.1f MiB: "
            "+%.1f MiB, bound prefetch x size %.2f MiB + constant %.0f MiB = %.2f MiB\n",
            messages, rel::mib(bytes), publish_s, consume_s, prefetch, most_buffered,
            rel::mib(before), rel::mib(peak), rel::mib(growth), rel::mib(prefetch * message_size),
            rel::mib(allowance), rel::mib(bound));
        CHECK(bytes == backlog_bytes);
        CHECK(most_buffered <= prefetch);
        CHECK(growth <= bound);
        co_await ch.queue_delete(queue);
        co_await c.close();
      },
      300s);
}
