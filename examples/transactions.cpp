// transactions: publishes inside AMQP transactions (tx.select). The first
// batch is committed; the second is interrupted by an application error and
// rolled back, leaving nothing behind. A passive queue.declare reports the
// queue's message count after each step.
//
//   transactions [URI]
#include <stdexcept>

#include "example.hpp"

namespace {

constexpr std::string_view queue = "eeg.tx";

// The queue's message count, read with a passive declare (which never
// creates the queue).
asio::awaitable<std::uint32_t> message_count(warren::channel& ch) {
  auto q = co_await ch.queue_declare(queue, {.passive = true});
  co_return q.message_count;
}

// Stands for any application step between the publishes and the commit; this
// one fails, as the pika guide's `1/0` does.
void reserve_stock(int wanted, int in_stock) {
  if (wanted > in_stock)
    throw std::runtime_error("cannot reserve " + std::to_string(wanted) + " items, " +
                             std::to_string(in_stock) + " in stock");
}

asio::awaitable<int> transactions(std::string uri) {
  auto conn = co_await warren::connect(uri);
  auto ch = co_await conn.open_channel();
  co_await ch.queue_declare(queue, {.durable = true});
  co_await ch.queue_purge(queue);

  warren::basic_properties persistent;
  persistent.delivery_mode = 2;
  co_await ch.tx_select();  // from here on, every publish and ack is part of a transaction

  // 1. Three messages, committed together.
  for (int i = 1; i <= 3; ++i) {
    auto body = "committed message " + std::to_string(i);
    co_await ch.publish("", queue, body, persistent);  // default exchange: routed by queue name
  }
  co_await ch.tx_commit();
  const auto after_commit = co_await message_count(ch);
  std::cout << "commit:   3 published, queue '" << queue << "' holds " << after_commit << '\n';

  // 2. Two more, then the application fails before committing.
  try {
    for (int i = 1; i <= 2; ++i) {
      auto body = "doomed message " + std::to_string(i);
      co_await ch.publish("", queue, body, persistent);
    }
    reserve_stock(2, 1);  // throws: the commit below is never reached
    co_await ch.tx_commit();
  } catch (const std::runtime_error& e) {
    std::cout << "error:    " << e.what() << '\n';
  }
  co_await ch.tx_rollback();
  const auto after_rollback = co_await message_count(ch);
  std::cout << "rollback: 2 published, queue '" << queue << "' holds " << after_rollback << '\n';

  co_await ch.queue_delete(queue);
  co_await conn.close();

  const bool ok = after_commit == 3 && after_rollback == 3;
  std::cout << (ok ? "OK: the commit kept 3 messages, the rollback left nothing behind\n"
                   : "FAILED: unexpected message counts\n");
  co_return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(argc, argv, "usage: transactions [URI]");
  return example::run("transactions", transactions(cli.uri()));
}
