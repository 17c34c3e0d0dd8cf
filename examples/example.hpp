// What every example shares: reading the command line, running the example's
// coroutine on an io_context, and the 'eeg' topology of the send/receive
// scenario.
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "warren/client/warren.hpp"

namespace example {

inline constexpr std::string_view default_uri = "amqp://guest:guest@127.0.0.1:5672/";
inline constexpr std::string_view uri_help =
    "URI: amqp://USER:PASSWORD@HOST:PORT/VHOST, or for TLS\n"
    "  amqps://USER:PASSWORD@HOST:5671/?cacertfile=CA.pem (the broker's certificate\n"
    "  must name HOST; without cacertfile the system's trust store is used).\n"
    "  Default: $AMQP_URL, else amqp://guest:guest@127.0.0.1:5672/";

// The exchange, queue and routing key of the send/receive scenario.
inline constexpr std::string_view eeg = "eeg";

// A small command line: `--name VALUE` (or `--name=VALUE`) options, `--name`
// flags, and at most one positional argument, the broker URI: amqp:// or,
// for TLS, amqps:// (warren::connect takes either).
class command_line {
 public:
  // `usage` is printed for --help and for a malformed command line, followed
  // by what the URI may be.
  command_line(int argc, char** argv, std::string usage)
      : usage_(std::move(usage) + "\n" + std::string(uri_help)) {
    for (int i = 1; i < argc; ++i) args_.emplace_back(argv[i]);
    if (flag("--help") || flag("-h")) {
      std::cout << usage_ << '\n';
      std::exit(0);
    }
  }

  bool flag(std::string_view name) {
    for (auto it = args_.begin(); it != args_.end(); ++it) {
      if (*it == name) {
        args_.erase(it);
        return true;
      }
    }
    return false;
  }

  std::optional<std::string> option(std::string_view name) {
    for (auto it = args_.begin(); it != args_.end(); ++it) {
      if (*it == name) {
        if (it + 1 == args_.end()) fail(std::string(name) + " needs a value");
        std::string value = *(it + 1);
        args_.erase(it, it + 2);
        return value;
      }
      if (it->size() > name.size() && it->starts_with(name) && (*it)[name.size()] == '=') {
        std::string value = it->substr(name.size() + 1);
        args_.erase(it);
        return value;
      }
    }
    return std::nullopt;
  }

  // A non-negative integer option, `fallback` when absent.
  std::uint64_t number(std::string_view name, std::uint64_t fallback) {
    auto text = option(name);
    if (!text) return fallback;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size())
      fail(std::string(name) + " wants a number, not '" + *text + "'");
    return value;
  }

  // Call after every option has been taken: the positional URI, else
  // $AMQP_URL, else the local broker. Anything left over is an error.
  std::string uri() {
    std::string result;
    if (const char* env = std::getenv("AMQP_URL"); env && *env)
      result = env;
    else
      result = default_uri;
    for (std::size_t i = 0; i < args_.size(); ++i) {
      if (args_[i].starts_with("-") && args_[i] != "-") fail("unknown option " + args_[i]);
      if (i > 0) fail("unexpected argument " + args_[i]);
      result = args_[i];
    }
    return result;
  }

  [[noreturn]] void fail(const std::string& why) const {
    std::cerr << why << "\n" << usage_ << '\n';
    std::exit(2);
  }

 private:
  std::string usage_;
  std::vector<std::string> args_;
};

// Runs `main_coro` (an asio::awaitable<int>) to completion and returns its
// exit status. What it throws is printed, warren::error with the broker's
// diagnostics, and turns into exit status 1.
template <class Awaitable>
int run(const char* program, Awaitable main_coro) {
  asio::io_context io;
  int status = 1;
  asio::co_spawn(io, std::move(main_coro), [&](std::exception_ptr e, int result) {
    if (!e) {
      status = result;
      return;
    }
    try {
      std::rethrow_exception(e);
    } catch (const warren::error& err) {
      std::cerr << program << ": " << err.info().describe() << '\n';
    } catch (const std::exception& err) {
      std::cerr << program << ": " << err.what() << '\n';
    }
  });
  io.run();
  return status;
}

// Declares what send.py's channel_mq() declares: a durable queue and a durable
// direct exchange, both named 'eeg', bound with the routing key 'eeg'.
// Declaring is idempotent, so every example of the scenario calls it.
inline asio::awaitable<void> declare_eeg(warren::channel& ch) {
  co_await ch.queue_declare(eeg, {.durable = true});
  co_await ch.exchange_declare(eeg, {.type = "direct", .durable = true});
  co_await ch.queue_bind(eeg, eeg, eeg);
}

}  // namespace example
