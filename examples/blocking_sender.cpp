// blocking_sender: the pika guide's SenderClient (send.py) on warren's
// blocking API, no coroutines in sight. By default it publishes each line of
// a file (or of stdin) as one persistent message to the durable direct
// exchange 'eeg', routed to the durable queue 'eeg'. The guide's other
// publishing scenarios are flags:
//   --confirm         confirm mode: each publish waits for the broker's ack
//                     or nack; then a mandatory publish nobody can route
//   --transaction     publishes in a transaction: a commit, then an
//                     application error and a rollback
//   --exchange-bind   exchange-to-exchange binding, then unbinding and cleanup
//
//   blocking_sender [--file PATH] [--confirm | --transaction | --exchange-bind]
//                   [--host H --port P --user U --password P --vhost V]
//                   [--queue Q --exchange E --routing-key K] [URI]
#include <fstream>
#include <stdexcept>
#include <vector>

#include "blocking_client.hpp"

namespace {

using example::sender_client;

int send_lines(sender_client& client, const std::vector<std::string>& lines, bool confirm) {
  auto& ch = client.channel_mq();
  if (confirm) ch.confirm_select();  // pika's confirm_delivery()
  std::uint64_t acked = 0, nacked = 0;
  for (const auto& line : lines) {
    auto outcome = client.send_data(line);
    if (outcome.status == warren::publish_status::acked) ++acked;
    if (outcome.status == warren::publish_status::nacked) ++nacked;
  }
  const auto& s = client.settings();
  std::cout << "sent " << lines.size() << " persistent message(s) to exchange '" << s.exchange
            << "' with routing key '" << s.routing_key << "'\n";
  bool ok = true;
  if (confirm) {
    std::cout << "confirm mode: " << acked << " acked, " << nacked << " nacked\n";
    // Without a queue bound for the key, a mandatory publish comes back.
    auto lost = ch.publish(s.exchange, "no-queue-has-this-key", "lost", {.mandatory = true});
    std::cout << "unroutable mandatory publish: "
              << (lost.status == warren::publish_status::returned ? "returned" : "not returned")
              << " (" << lost.reply_code << ' ' << lost.reply_text << ")\n";
    ok = acked == lines.size() && lost.status == warren::publish_status::returned;
  }
  // close-ok comes after the broker has handled every publish on the channel.
  client.close_channel();
  client.close_connect();
  return ok ? 0 : 1;
}

// Stands for the application's work between the publishes and the commit;
// this one fails, as the guide's `1/0` does.
void check_stock(int wanted, int in_stock) {
  if (wanted > in_stock) throw std::runtime_error("only " + std::to_string(in_stock) + " in stock");
}

int transaction(sender_client& client) {
  client.connect_mq();
  auto ch = client.connection().open_channel();
  const std::string queue = client.settings().queue + ".blocking-tx";
  ch.queue_declare(queue, {.durable = true});
  ch.queue_purge(queue);
  warren::basic_properties persistent;
  persistent.delivery_mode = 2;

  ch.tx_select();  // everything up to tx_commit is one transaction
  for (int i = 1; i <= 3; ++i) ch.publish("", queue, "committed " + std::to_string(i), persistent);
  ch.tx_commit();
  const auto after_commit = ch.queue_declare(queue, {.passive = true}).message_count;
  std::cout << "commit:   3 published, queue '" << queue << "' holds " << after_commit << '\n';

  try {
    for (int i = 1; i <= 2; ++i) ch.publish("", queue, "doomed " + std::to_string(i), persistent);
    check_stock(2, 1);
    ch.tx_commit();
  } catch (const std::runtime_error& e) {
    std::cout << "error:    " << e.what() << ", rolling back\n";
    ch.tx_rollback();
  }
  const auto after_rollback = ch.queue_declare(queue, {.passive = true}).message_count;
  std::cout << "rollback: 2 published, queue '" << queue << "' holds " << after_rollback << '\n';
  ch.queue_delete(queue);
  const bool ok = after_commit == 3 && after_rollback == 3;
  std::cout << (ok ? "OK\n" : "FAILED\n");
  return ok ? 0 : 1;
}

int exchange_bind(sender_client& client) {
  const std::string prefix = client.settings().exchange + ".";
  const std::string source = prefix + "myname", destination = prefix + "youname";
  const std::string test1 = prefix + "test1", test2 = prefix + "test2";
  const std::string key = "ourheart";
  client.connect_mq();
  auto ch = client.connection().open_channel();
  ch.queue_declare(test1, {.durable = true});
  ch.queue_declare(test2, {.durable = true});
  ch.queue_purge(test1);
  ch.queue_purge(test2);
  ch.exchange_declare(source);
  ch.exchange_declare(destination);
  ch.exchange_bind(destination, source, key);  // destination first, as in AMQP and pika
  ch.queue_bind(test1, source, key);
  ch.queue_bind(test2, destination, key);

  ch.confirm_select();                       // so the counts below see every publish
  ch.publish(source, key, "to the source");  // reaches test1 and, through the binding, test2
  ch.publish(destination, key, "to the destination");  // test2 only: nothing flows back
  auto count = [&ch](const std::string& q) {
    return ch.queue_declare(q, {.passive = true}).message_count;
  };
  const auto n1 = count(test1), n2 = count(test2);
  std::cout << "queue '" << test1 << "' holds " << n1 << " message(s)\n";
  std::cout << "queue '" << test2 << "' holds " << n2 << " message(s)\n";

  ch.exchange_unbind(destination, source, key);
  ch.publish(source, key, "after the unbind");
  const auto m1 = count(test1), m2 = count(test2);
  std::cout << "after exchange_unbind: '" << test1 << "' holds " << m1 << ", '" << test2
            << "' holds " << m2 << '\n';

  // Cleanup: unbind the queues, delete queues and exchanges.
  ch.queue_unbind(test1, source, key);
  ch.queue_unbind(test2, destination, key);
  const auto purged = ch.queue_purge(test1);
  ch.queue_delete(test1);
  const auto deleted = ch.queue_delete(test2);
  ch.exchange_delete(source);
  ch.exchange_delete(destination);
  std::cout << "cleanup: purged " << purged << " from '" << test1 << "', deleted '" << test2
            << "' with " << deleted << ", deleted both exchanges\n";
  const bool ok = n1 == 1 && n2 == 2 && m1 == 2 && m2 == 2 && purged == 2 && deleted == 2;
  std::cout << (ok ? "OK\n" : "FAILED\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(
      argc, argv,
      "usage: blocking_sender [--file PATH] [--confirm | --transaction | --exchange-bind]\n"
      "                       [options] [URI]   (stdin without --file)\n" +
          std::string(example::blocking_options_help));
  auto path = cli.option("--file");
  const bool confirm = cli.flag("--confirm");
  const bool tx = cli.flag("--transaction");
  const bool e2e = cli.flag("--exchange-bind");
  if (confirm + tx + e2e > 1)
    cli.fail("--confirm, --transaction and --exchange-bind exclude each other");
  auto settings = example::read_client_settings(cli);

  return example::run_blocking("blocking_sender", [&] {
    sender_client client(std::move(settings));
    if (tx) return transaction(client);
    if (e2e) return exchange_bind(client);
    std::ifstream file;
    if (path) {
      file.open(*path);
      if (!file) cli.fail("cannot read " + *path);
    }
    std::istream& in = path ? file : std::cin;
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
    return send_lines(client, lines, confirm);
  });
}
