// receive: consumes the queue 'eeg' with manual acks and prints each message
// body on its own line. Stops after --count messages, or on Ctrl-C.
//
//   receive [--count N] [URI]
#include <asio/detached.hpp>
#include <asio/signal_set.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <csignal>

#include "example.hpp"

namespace {

// Cancels the consumer on SIGINT/SIGTERM: its stream then ends.
asio::awaitable<void> cancel_on_signal(asio::signal_set& signals, warren::consumer& consumer) {
  try {
    co_await signals.async_wait(asio::use_awaitable);
  } catch (const std::system_error&) {
    co_return;  // signals.cancel(): the loop ended by itself
  }
  co_await consumer.cancel();
}

asio::awaitable<int> receive(std::string uri, std::uint64_t count) {
  auto conn = co_await warren::connect(uri);
  auto ch = co_await conn.open_channel();
  co_await example::declare_eeg(ch);

  // At most 100 unacknowledged deliveries in flight to this consumer.
  auto consumer = co_await ch.consume(example::eeg, {.prefetch = 100});
  asio::signal_set signals(co_await asio::this_coro::executor, SIGINT, SIGTERM);
  asio::co_spawn(co_await asio::this_coro::executor, cancel_on_signal(signals, consumer),
                 asio::detached);
  std::cerr << "receive: waiting for messages on queue 'eeg'"
            << (count ? ", stopping after " + std::to_string(count) : ", Ctrl-C to stop") << '\n';

  std::uint64_t received = 0;
  while (count == 0 || received < count) {
    auto msg = co_await consumer.next();
    if (!msg) break;  // cancelled
    std::cout << msg->body << std::endl;
    ch.ack(msg->delivery_tag);
    ++received;
  }
  signals.cancel();

  // Deliveries beyond --count were never acked: closing the channel puts them
  // back in the queue.
  co_await ch.close();
  co_await conn.close();
  std::cerr << "receive: " << received << " message(s) received and acked\n";
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(argc, argv, "usage: receive [--count N] [URI]");
  auto count = cli.number("--count", 0);
  return example::run("receive", receive(cli.uri(), count));
}
