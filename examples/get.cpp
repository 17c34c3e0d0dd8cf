// get: polls the queue 'eeg' with basic.get instead of consuming it, acking
// and printing each message body on its own line. Stops when the queue is
// empty, or, with --count, once that many messages arrived; --wait keeps
// polling an empty queue for that many seconds first.
//
//   get [--count N] [--wait SECONDS] [URI]
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>

#include "example.hpp"

namespace {

asio::awaitable<int> get(std::string uri, std::uint64_t count, std::chrono::seconds wait) {
  auto conn = co_await warren::connect(uri);
  auto ch = co_await conn.open_channel();
  co_await example::declare_eeg(ch);

  asio::steady_timer pause(co_await asio::this_coro::executor);
  auto give_up = std::chrono::steady_clock::now() + wait;
  std::uint64_t received = 0;
  while (count == 0 || received < count) {
    auto msg = co_await ch.get(example::eeg);
    if (msg) {
      std::cout << msg->body << std::endl;
      ch.ack(msg->delivery_tag);
      ++received;
      give_up = std::chrono::steady_clock::now() + wait;
      continue;
    }
    if (std::chrono::steady_clock::now() >= give_up) break;  // empty, and waited long enough
    pause.expires_after(std::chrono::milliseconds(100));
    co_await pause.async_wait(asio::use_awaitable);
  }

  co_await ch.close();
  co_await conn.close();
  std::cerr << "get: " << received << " message(s) fetched and acked\n";
  co_return count != 0 && received < count ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(argc, argv, "usage: get [--count N] [--wait SECONDS] [URI]");
  auto count = cli.number("--count", 0);
  auto wait = std::chrono::seconds(cli.number("--wait", 0));
  return example::run("get", get(cli.uri(), count, wait));
}
