// The reliability suite's node and its helpers. The suite breaks its broker on
// purpose (kill -9, forced closes, a memory alarm), so it runs against a
// standalone node of its own, never the shared one: rabbit-rel@localhost on
// 127.0.0.1:5685, which `scripts/cluster standalone start` runs. Tests find it
// through WARREN_RELIABILITY_URL (amqp://guest:guest@127.0.0.1:5685/);
// WARREN_RELIABILITY_NODE names it for rabbitmqctl (default
// rabbit-rel@localhost). Without the URL every case is skipped; scripts/test
// sets it after starting the node, so there a missing node fails the suite.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "../cluster/cluster.hpp"
#include "../integration/harness.hpp"

namespace warren::test::reliability {

inline std::string node_url() {
  const char* u = std::getenv("WARREN_RELIABILITY_URL");
  return u && *u ? u : "";
}

// Whether the suite runs; says once, on stderr, why not.
inline bool wanted() {
  static const bool yes = [] {
    if (!node_url().empty()) return true;
    std::fprintf(stderr,
                 "reliability: WARREN_RELIABILITY_URL is unset, so every case is skipped. "
                 "Run `scripts/cluster standalone start`, then "
                 "WARREN_RELIABILITY_URL=amqp://guest:guest@127.0.0.1:5685/ "
                 "meson test -C build --suite reliability\n");
    return false;
  }();
  return yes;
}

// The node's URI with `query` ("heartbeat=2&channel_max=16") appended.
inline std::string node_url_with(std::string_view query) {
  std::string u = node_url();
  if (query.empty()) return u;
  u += u.find('?') == std::string::npos ? '?' : '&';
  u += query;
  return u;
}

inline std::string node_name() {
  const char* n = std::getenv("WARREN_RELIABILITY_NODE");
  return n && *n ? n : "rabbit-rel@localhost";
}

// rabbitmqctl against the suite's node.
inline command_result ctl(const std::string& args) {
  return rabbitmqctl("-n " + node_name() + " " + args);
}

// The broker-side pid of the connection named `name` (connect_options), or "".
inline std::string connection_pid(const std::string& name) {
  return connection_row(ctl("-q list_connections --no-table-headers client_properties pid").output,
                        name);
}

// The node's memory high watermark, as an absolute amount ("1MB", "2GB").
inline bool set_watermark(const std::string& absolute) {
  return ctl("set_vm_memory_high_watermark absolute " + absolute).status == 0;
}

// The watermark of the node's config (scripts/cluster), back when destroyed,
// so a failing test never leaves the node blocking every publisher.
struct watermark_restore {
  watermark_restore() = default;
  watermark_restore(const watermark_restore&) = delete;
  watermark_restore& operator=(const watermark_restore&) = delete;
  ~watermark_restore() { set_watermark("2GB"); }
};

// Connects to the suite's node. Overloads rather than defaulted arguments:
// a default argument is a temporary inside the caller's co_await.
inline asio::awaitable<connection> open_node(std::string uri, const connect_options& options) {
  auto pending = connect(uri, options);
  connection c = co_await std::move(pending);
  co_return c;
}

// With default options, at `uri` (node_url_with(...)).
inline asio::awaitable<connection> open_node(std::string uri) {
  static const connect_options defaults;
  auto pending = open_node(std::move(uri), defaults);
  connection c = co_await std::move(pending);
  co_return c;
}

inline asio::awaitable<connection> open_node(const connect_options& options) {
  auto pending = open_node(node_url(), options);
  connection c = co_await std::move(pending);
  co_return c;
}

inline asio::awaitable<connection> open_node() {
  static const connect_options defaults;
  auto pending = open_node(node_url(), defaults);
  connection c = co_await std::move(pending);
  co_return c;
}

// This process's resident set and its peak, in bytes, from /proc/self/status.
inline std::uint64_t status_kib(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, field.size(), field) == 0 && line.size() > field.size() &&
        line[field.size()] == ':')
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
  return 0;
}
inline std::uint64_t rss_bytes() { return status_kib("VmRSS") * 1024; }
inline std::uint64_t peak_rss_bytes() { return status_kib("VmHWM") * 1024; }
// Starts the peak (VmHWM) afresh from the current resident set (Linux 4.0+).
inline bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

inline double mib(std::uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

inline double seconds_between(std::chrono::steady_clock::time_point from,
                              std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Deletes a queue on the node, ignoring errors: tests start from an empty queue.
inline asio::awaitable<void> delete_queue(connection& c, std::string_view queue) {
  auto ch = co_await c.open_channel();
  auto del = ch.queue_delete(queue);
  co_await test::error_of(std::move(del));
  if (ch.is_open()) co_await ch.close();
}

}  // namespace warren::test::reliability
