// Runs a test body as a coroutine on a fresh io_context against the broker at
// $AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/), rethrowing what it throws.
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>

#include "warren/client/warren.hpp"

namespace warren::test {

inline std::string broker_uri() {
  const char* u = std::getenv("AMQP_URL");
  return u && *u ? u : "amqp://guest:guest@127.0.0.1:5672/";
}

// A name unique to this process, so parallel test runs do not collide.
inline std::string unique_name(const std::string& stem) {
  static int counter = 0;
  return "warren-test." + stem + "." + std::to_string(::getpid()) + "." + std::to_string(++counter);
}

// Runs `body` to completion (or until `limit` passes, which fails the test).
inline void run(std::function<asio::awaitable<void>()> body,
                std::chrono::seconds limit = std::chrono::seconds(60)) {
  asio::io_context ctx;
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(ctx, body(), [&](std::exception_ptr e) {
    failure = e;
    done = true;
  });
  ctx.run_for(limit);
  if (!done) throw std::runtime_error("test coroutine did not finish within the time limit");
  if (failure) std::rethrow_exception(failure);
}

}  // namespace warren::test
