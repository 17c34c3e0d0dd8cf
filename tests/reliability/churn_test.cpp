// Check 6: channel churn. 10,000 cycles of channel open and close on one
// connection, every fifth channel closed by the broker instead (a passive
// declare of a missing queue: 404). Channel ids wrap around channel_max
// several times. No cycle fails with anything but the expected 404 (above all
// no 504 CHANNEL_ERROR from an id reused too early), the broker ends with no
// channel of ours open, and the process's resident set stays flat within 5%
// over the last 5,000 cycles. Then every channel up to channel_max in use: the
// next open fails with a clear error, and one freed id opens again.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "reliability.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace rel = warren::test::reliability;

TEST_CASE("reliability: 10,000 channel open/close cycles with 404s: no 504, no leak" *
          doctest::skip(!rel::wanted())) {
  test::run(
      []() -> asio::awaitable<void> {
        constexpr int cycles = 10000;
        // A small channel_max, so that ids wrap around many times.
        connect_options o;
        o.connection_name = test::unique_name("rel-churn");
        const std::string uri = rel::node_url_with("channel_max=64");
        auto opening = rel::open_node(uri, o);
        auto c = co_await std::move(opening);
        REQUIRE(c.channel_max() == 64);
        const std::string missing = test::unique_name("rel-churn-missing");
        int closed_404 = 0, closed_ok = 0, unexpected = 0;
        error_info first_unexpected;
        std::uint64_t rss_half = 0, rss_max = 0, rss_min = ~0ull;
        std::uint16_t highest_id = 0;
        for (int i = 0; i < cycles; ++i) {
          try {
            auto ch = co_await c.open_channel();
            highest_id = std::max(highest_id, ch.id());
            if (i % 5 == 4) {
              auto missing_declare = test::error_of(ch.queue_declare(missing, {.passive = true}));
              const error_info e = co_await std::move(missing_declare);
              if (e.reply_code() == 404 && !ch.is_open()) {
                ++closed_404;
              } else {
                ++unexpected;
                if (!first_unexpected) first_unexpected = e;
              }
            } else {
              co_await ch.qos({.prefetch_count = 10});
              co_await ch.close();
              ++closed_ok;
            }
          } catch (const error& e) {
            ++unexpected;
            if (!first_unexpected) first_unexpected = e.info();
            if (!c.is_open()) break;
          }
          if (i + 1 == cycles / 2) rss_half = rel::rss_bytes();
          if (i + 1 > cycles / 2 && (i + 1) % 250 == 0) {
            const std::uint64_t rss = rel::rss_bytes();
            rss_max = std::max(rss_max, rss);
            rss_min = std::min(rss_min, rss);
          }
        }
        const std::uint64_t rss_end = rel::rss_bytes();
        const double growth = (static_cast<double>(rss_max) - static_cast<double>(rss_half)) /
                              static_cast<double>(rss_half);
        // The broker's view: our connection has no channel left open.
        const std::string broker_channels = test::connection_row(
            rel::ctl("-q list_connections --no-table-headers client_properties channels").output,
            o.connection_name);
        std::printf(
            "reliability: channel-churn: cycles %d closed %d closed-by-404 %d unexpected %d "
            "(ids up to %u of channel_max %u; channels open at the broker: %s); RSS at 5,000 %.2f MiB, over the last 5,000 "
            "%.2f-%.2f MiB (%+.2f%%), at the end %.2f MiB\n",
            cycles, closed_ok, closed_404, unexpected, highest_id, c.channel_max(), broker_channels.c_str(),
            rel::mib(rss_half), rel::mib(rss_min), rel::mib(rss_max), growth * 100,
            rel::mib(rss_end));
        CHECK_MESSAGE(unexpected == 0, first_unexpected.describe());
        CHECK(closed_404 == cycles / 5);
        CHECK(closed_ok == cycles - cycles / 5);
        CHECK(highest_id == 64);
        CHECK(broker_channels == "0");
        CHECK(c.is_open());
        CHECK(growth <= 0.05);
        co_await c.close();
      },
      300s);
}

TEST_CASE("reliability: using up channel_max gives a clear error" * doctest::skip(!rel::wanted())) {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri = rel::node_url_with("channel_max=16");
    auto opening = rel::open_node(uri);
    auto c = co_await std::move(opening);
    REQUIRE(c.channel_max() == 16);
    std::vector<channel> open;
    for (int i = 0; i < 16; ++i) open.push_back(co_await c.open_channel());
    auto one_more = test::error_of(c.open_channel());
    const error_info e = co_await std::move(one_more);
    std::printf("reliability: channel-max: 16 channels open, the 17th: %s\n", e.describe().c_str());
    CHECK(e.code == errc::channel_limit);
    CHECK(e.text.find("16") != std::string::npos);
    CHECK(c.is_open());
    // A freed id opens again.
    const std::uint16_t freed = open[7].id();
    co_await open[7].close();
    auto again = co_await c.open_channel();
    CHECK(again.id() == freed);
    co_await c.close();
  });
}
