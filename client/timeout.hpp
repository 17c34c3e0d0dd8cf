// Deadlines for any awaitable operation.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <type_traits>
#include <variant>

#include "warren/client/types.hpp"

namespace warren {

namespace detail {
// What an operation raced against a timer ended with: its value, or its error.
template <class T>
struct race_outcome {
  std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
  std::exception_ptr failure;
};

// Never throws, so the race below ends as soon as `op` ends, however it ends
// (awaitable operator || waits for the first to *succeed*).
template <class T>
asio::awaitable<race_outcome<T>> settle(asio::awaitable<T> op) {
  race_outcome<T> out;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(op);
      out.value = true;
    } else {
      out.value.emplace(co_await std::move(op));
    }
  } catch (...) {
    out.failure = std::current_exception();
  }
  co_return out;
}
}  // namespace detail

// Runs `op`; if it has not finished after `timeout`, cancels it and throws
// warren::error with errc::timeout. If `op` fails first, its own error is
// rethrown at once. Every warren operation withdraws cleanly when cancelled,
// so the connection stays usable.
//
//   auto q = co_await with_timeout(ch.queue_declare("jobs"), std::chrono::seconds(5));
template <class T>
asio::awaitable<T> with_timeout(asio::awaitable<T> op, std::chrono::steady_clock::duration timeout) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  // Named awaitables, not temporaries, inside co_await: g++ 12 can destroy
  // such temporaries twice.
  auto settled = detail::settle(std::move(op));
  auto expiry = timer.async_wait(asio::use_awaitable);
  auto race = std::move(settled) || std::move(expiry);
  auto result = co_await std::move(race);
  if (result.index() == 1) {
    error_info e;
    e.code = errc::timeout;
    e.text = "operation timed out";
    throw error(std::move(e));
  }
  auto& outcome = std::get<0>(result);
  if (outcome.failure) std::rethrow_exception(outcome.failure);
  if constexpr (std::is_void_v<T>)
    co_return;
  else
    co_return std::move(*outcome.value);
}

}  // namespace warren
