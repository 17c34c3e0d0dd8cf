// exchange_bind: exchange-to-exchange bindings, as in the pika guide.
//
//   eeg.source --+--> eeg.destination ----------> queue eeg.e2e.2
//                +--> queue eeg.e2e.1
//                +--> eeg.internal (internal) --> queue eeg.e2e.3
//
// Every binding has the routing key 'ourheart'. A message published to the
// source reaches every queue; one published to the destination never flows
// back to the source. The internal exchange takes messages only from other
// exchanges: the broker refuses a direct publish with 403 ACCESS_REFUSED and
// closes the channel.
//
//   exchange_bind [URI]
#include "example.hpp"

namespace {

constexpr std::string_view source = "eeg.source";
constexpr std::string_view destination = "eeg.destination";
constexpr std::string_view internal = "eeg.internal";
constexpr std::string_view key = "ourheart";
const std::string queues[] = {"eeg.e2e.1", "eeg.e2e.2", "eeg.e2e.3"};

asio::awaitable<int> exchange_bind(std::string uri) {
  auto conn = co_await warren::connect(uri);
  auto ch = co_await conn.open_channel();

  co_await ch.exchange_declare(source, {.type = "direct"});
  co_await ch.exchange_declare(destination, {.type = "direct"});
  co_await ch.exchange_declare(internal, {.type = "direct", .internal = true});
  for (const auto& q : queues) co_await ch.queue_declare(q, {.exclusive = true});

  co_await ch.exchange_bind(destination, source, key);  // destination first, as in AMQP
  co_await ch.exchange_bind(internal, source, key);
  co_await ch.queue_bind(queues[0], source, key);
  co_await ch.queue_bind(queues[1], destination, key);
  co_await ch.queue_bind(queues[2], internal, key);

  // In confirm mode each publish waits for the broker's verdict.
  co_await ch.confirm_select();
  co_await ch.publish(source, key, "to the source");
  co_await ch.publish(destination, key, "to the destination");

  std::uint32_t counts[3];
  for (int i = 0; i < 3; ++i) {
    auto q = co_await ch.queue_declare(queues[i], {.passive = true});
    counts[i] = q.message_count;
    std::cout << "queue " << queues[i] << " holds " << counts[i] << " message(s)\n";
  }
  bool ok = counts[0] == 1 && counts[1] == 2 && counts[2] == 1;

  // A direct publish to the internal exchange is an error of the channel.
  std::uint16_t refused = 0;
  try {
    co_await ch.publish(internal, key, "straight to the internal exchange");
  } catch (const warren::error& e) {
    refused = e.reply_code();
    std::cout << "publish to " << internal << " refused: " << e.info().describe() << '\n';
  }
  std::cout << "channel open after the error: " << (ch.is_open() ? "yes" : "no") << '\n';
  ok = ok && refused == 403 && !ch.is_open();

  // The connection is fine: tidy up on a new channel.
  auto tidy = co_await conn.open_channel();
  co_await tidy.exchange_delete(internal);
  co_await tidy.exchange_delete(destination);
  co_await tidy.exchange_delete(source);
  co_await conn.close();  // the exclusive queues go with the connection

  std::cout << (ok ? "OK\n" : "FAILED\n");
  co_return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(argc, argv, "usage: exchange_bind [URI]");
  return example::run("exchange_bind", exchange_bind(cli.uri()));
}
