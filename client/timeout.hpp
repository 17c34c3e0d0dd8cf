// Deadlines for any awaitable operation.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <type_traits>
#include <variant>

#include "warren/client/types.hpp"

namespace warren {

// Runs `op`; if it has not finished after `timeout`, cancels it and throws
// warren::error with errc::timeout. Every warren operation withdraws cleanly
// when cancelled, so the connection stays usable.
//
//   auto q = co_await with_timeout(ch.queue_declare("jobs"), std::chrono::seconds(5));
template <class T>
asio::awaitable<T> with_timeout(asio::awaitable<T> op, std::chrono::steady_clock::duration timeout) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  // Named awaitables, not temporaries, inside co_await: g++ 12 can destroy
  // such temporaries twice.
  auto expiry = timer.async_wait(asio::use_awaitable);
  auto race = std::move(op) || std::move(expiry);
  auto result = co_await std::move(race);
  if (result.index() == 1) {
    error_info e;
    e.code = errc::timeout;
    e.text = "operation timed out";
    throw error(std::move(e));
  }
  if constexpr (std::is_void_v<T>)
    co_return;
  else
    co_return std::move(std::get<0>(result));
}

}  // namespace warren
