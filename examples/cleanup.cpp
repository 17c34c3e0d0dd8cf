// cleanup: undoes the send/receive scenario step by step: purges the queue
// 'eeg', cancels a consumer, unbinds the queue from the exchange 'eeg', and
// deletes both. Declares them first, so it works whether or not they exist.
//
//   cleanup [URI]
#include "example.hpp"

namespace {

asio::awaitable<int> cleanup(std::string uri) {
  using example::eeg;
  auto conn = co_await warren::connect(uri);
  auto ch = co_await conn.open_channel();
  co_await example::declare_eeg(ch);

  // queue.purge drops the ready messages; it returns how many.
  auto purged = co_await ch.queue_purge(eeg);
  std::cout << "purged " << purged << " message(s) from queue 'eeg'\n";

  // basic.cancel ends a consumer: its stream then ends with std::nullopt.
  auto consumer = co_await ch.consume(eeg);
  co_await consumer.cancel();
  auto rest = co_await consumer.next();
  std::cout << "cancelled consumer " << consumer.tag() << (rest ? " (with a delivery left)" : "")
            << '\n';

  co_await ch.queue_unbind(eeg, eeg, eeg);
  std::cout << "unbound queue 'eeg' from exchange 'eeg' (routing key 'eeg')\n";

  // Deleting a queue drops its messages too; it returns how many.
  auto deleted = co_await ch.queue_delete(eeg);
  std::cout << "deleted queue 'eeg' with " << deleted << " message(s)\n";
  co_await ch.exchange_delete(eeg);
  std::cout << "deleted exchange 'eeg'\n";

  co_await conn.close();
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(argc, argv, "usage: cleanup [URI]");
  return example::run("cleanup", cleanup(cli.uri()));
}
