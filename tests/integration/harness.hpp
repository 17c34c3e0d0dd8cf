// Runs a test body as a coroutine on a fresh io_context against the broker at
// $AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/), rethrowing what it throws.
// Also: connecting with extra URI query parameters, sleeping, capturing the
// warren::error an operation throws, and driving the broker with rabbitmqctl.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "warren/client/warren.hpp"

namespace warren::test {

inline std::string broker_uri() {
  const char* u = std::getenv("AMQP_URL");
  return u && *u ? u : "amqp://guest:guest@127.0.0.1:5672/";
}

// The broker URI with `query` ("heartbeat=1&frame_max=4096") appended.
inline std::string broker_uri_with(std::string_view query) {
  std::string u = broker_uri();
  u += u.find('?') == std::string::npos ? '?' : '&';
  u += query;
  return u;
}

// The broker URI's parameters, for tests that change one of them.
inline connection_params broker_params() { return parse_uri(broker_uri()); }

// A name unique to this process, so parallel test runs do not collide.
inline std::string unique_name(const std::string& stem) {
  static int counter = 0;
  return "warren-test." + stem + "." + std::to_string(::getpid()) + "." + std::to_string(++counter);
}

// Connects to the test broker. Overloads rather than a defaulted options
// argument: a default argument is a temporary inside the caller's co_await.
inline asio::awaitable<connection> open_connection(const connect_options& options) {
  const std::string uri = broker_uri();
  auto pending = connect(uri, options);
  connection c = co_await std::move(pending);
  co_return c;
}

inline asio::awaitable<connection> open_connection() {
  static const connect_options defaults;
  const std::string uri = broker_uri();
  auto pending = connect(uri, defaults);
  connection c = co_await std::move(pending);
  co_return c;
}

// The consumer's next delivery within `limit`; fails the test if the stream
// ends or nothing comes.
inline asio::awaitable<message> next_within(consumer& c,
                                            std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto m = co_await with_timeout(c.next(), limit);
  REQUIRE(m.has_value());
  co_return std::move(*m);
}

inline asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Publishes and waits for the broker's confirm (turning confirm mode on when
// the channel is not in it yet), so that a basic.get or a queue count that
// follows sees the message: without it, RabbitMQ may answer a later
// synchronous method before the queue has received an earlier publish.
inline asio::awaitable<publish_status> publish_settled(channel& ch, std::string_view exchange,
                                                       std::string_view routing_key,
                                                       std::string_view body,
                                                       const basic_properties& properties) {
  if (!ch.in_confirm_mode()) co_await ch.confirm_select();
  auto pending = ch.publish(exchange, routing_key, body, properties);
  publish_outcome out = co_await std::move(pending);
  co_return out.status;
}

inline asio::awaitable<publish_status> publish_settled(channel& ch, std::string_view exchange,
                                                       std::string_view routing_key,
                                                       std::string_view body) {
  static const basic_properties none;
  auto pending = publish_settled(ch, exchange, routing_key, body, none);
  publish_status s = co_await std::move(pending);
  co_return s;
}

// Awaits `op` and returns the warren::error it threw; an empty error_info
// (with text "no error") when it completed normally.
template <class T>
asio::awaitable<error_info> error_of(asio::awaitable<T> op) {
  error_info info;
  info.text = "no error";
  try {
    co_await std::move(op);
  } catch (const error& e) {
    info = e.info();
  }
  co_return info;
}

// An operation started in the background with start(): whether it has
// finished, and the error it threw (empty when it completed normally).
struct background {
  bool done = false;
  error_info error;
  std::chrono::steady_clock::time_point finished;
};

template <class T>
asio::awaitable<void> run_into(asio::awaitable<T> op, std::shared_ptr<background> out) {
  auto pending = error_of(std::move(op));
  out->error = co_await std::move(pending);
  out->finished = std::chrono::steady_clock::now();
  out->done = true;
}

template <class T>
std::shared_ptr<background> start(asio::any_io_executor ex, asio::awaitable<T> op) {
  auto b = std::make_shared<background>();
  asio::co_spawn(ex, run_into(std::move(op), b), asio::detached);
  return b;
}

// Waits until `b` has finished or `limit` has passed; returns b.done.
inline asio::awaitable<bool> wait_done(const background& b,
                                       std::chrono::steady_clock::duration limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!b.done && std::chrono::steady_clock::now() < deadline)
    co_await sleep_for(std::chrono::milliseconds(10));
  co_return b.done;
}

// Runs `rabbitmqctl args` (stderr folded into the output) and returns its
// exit status and output. Blocks the calling thread, so the io_context of the
// test stands still meanwhile: fine for the broker, which only waits for us.
struct command_result {
  int status = -1;
  std::string output;
};

inline command_result rabbitmqctl(const std::string& args) {
  std::string cmd = "PATH=\"$PATH:/usr/sbin:/sbin\" ";
  if (::geteuid() != 0) cmd += "sudo -n ";
  cmd += "timeout 60 rabbitmqctl " + args + " 2>&1";
  command_result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// `rabbitmqctl list_connections` of client_properties followed by `items`
// (space-separated column names), one line per connection.
inline std::string list_connections(const std::string& items) {
  return rabbitmqctl("-q list_connections --no-table-headers client_properties " + items).output;
}

// In a list_connections() table: the columns after client_properties of the
// connection whose connection_name (connect_options) is `name`; "" if absent.
inline std::string connection_row(const std::string& table, const std::string& name) {
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    // client_properties reads [...,{"connection_name","NAME"}]
    if (line.find("{\"connection_name\",\"" + name + "\"}") == std::string::npos) continue;
    // client_properties is the first column and ends with "]\t".
    auto end = line.rfind("]\t");
    return end == std::string::npos ? line : line.substr(end + 2);
  }
  return {};
}

// The broker-side pid ("<rabbit@host.1.2.3>") of the connection named `name`.
inline std::string connection_pid(const std::string& name) {
  return connection_row(list_connections("pid"), name);
}

// Sets the broker's memory high watermark back to its default when destroyed,
// so a failing test never leaves the broker blocking every publisher.
struct watermark_guard {
  watermark_guard() = default;
  watermark_guard(const watermark_guard&) = delete;
  watermark_guard& operator=(const watermark_guard&) = delete;
  ~watermark_guard() { rabbitmqctl("set_vm_memory_high_watermark 0.4"); }
};

// Runs `body` to completion (or until `limit` passes, which fails the test),
// then gives the connections it left behind a few seconds to close: every
// handle is gone by then, so the client must close them and stop its loops.
inline void run(std::function<asio::awaitable<void>()> body,
                std::chrono::seconds limit = std::chrono::seconds(60)) {
  asio::io_context ctx;
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(ctx, body(), [&](std::exception_ptr e) {
    failure = e;
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done && !ctx.stopped() && std::chrono::steady_clock::now() < deadline)
    ctx.run_one_until(deadline);
  if (!done) throw std::runtime_error("test coroutine did not finish within the time limit");
  if (failure) std::rethrow_exception(failure);
  ctx.run_for(std::chrono::seconds(10));
  if (!ctx.stopped())
    throw std::runtime_error(
        "the io_context still had work 10 s after the test: "
        "a released connection did not shut down");
}

}  // namespace warren::test
