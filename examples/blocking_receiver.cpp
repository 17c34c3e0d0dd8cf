// blocking_receiver: the pika guide's ReceiverClient (receiver.py) on
// warren's blocking API. By default it subscribes to the queue 'eeg' with a
// callback (basic_consume), acks each message by hand from the callback and
// prints its body on a line of its own, inside start_consuming(), until
// --count messages have come (the callback calls stop_consuming()) or
// Ctrl-C. The guide's other ways to receive and to tidy up are flags:
//   --get       basic_get until the queue is empty, acking each message
//   --cleanup   purge the queue, cancel a consumer, unbind, delete the queue
//               and the exchange
//
//   blocking_receiver [--count N | --get | --cleanup]
//                     [--host H --port P --user U --password P --vhost V]
//                     [--queue Q --exchange E --routing-key K] [URI]
#include <atomic>
#include <chrono>
#include <csignal>

#include "blocking_client.hpp"

namespace {

std::atomic<bool> interrupted{false};

extern "C" void on_signal(int) { interrupted = true; }

class receiver_client : public example::sender_client {
 public:
  using sender_client::sender_client;

  // Subscribes and consumes on this thread. The callback runs here too, so
  // it may ack, publish, or stop the loop.
  std::uint64_t run(std::uint64_t count) {
    auto& ch = channel_mq();
    // At most 100 unacknowledged deliveries in flight to this consumer.
    ch.basic_consume(settings_.queue,
                     [this, count](warren::blocking::channel& c, const warren::message& m) {
                       callback(c, m);
                       if (count != 0 && received_ == count) c.stop_consuming();
                     },
                     {.prefetch = 100});
    std::cerr << "blocking_receiver: waiting for messages on queue '" << settings_.queue << "'"
              << (count ? ", stopping after " + std::to_string(count) : ", Ctrl-C to stop") << '\n';
    // The guide's start_consuming() blocks for good; a time limit lets this
    // loop look at Ctrl-C now and then.
    while (!interrupted) {
      auto end = ch.start_consuming(std::chrono::milliseconds(200));
      if (end != warren::blocking::consuming_end::time_limit) break;
    }
    if (interrupted) ch.stop_consuming();
    return received_;
  }

  // basic_get: one message at a time, acked by hand.
  std::uint64_t get_all() {
    auto& ch = channel_mq();
    while (auto m = ch.get(settings_.queue)) {
      std::cout << m->body << std::endl;
      ch.ack(m->delivery_tag);
      ++received_;
    }
    return received_;
  }

  // Undoes the scenario step by step.
  void cleanup() {
    auto& ch = channel_mq();
    const auto& s = settings_;
    std::cout << "purged " << ch.queue_purge(s.queue) << " message(s) from queue '" << s.queue
              << "'\n";
    const auto tag =
        ch.basic_consume(s.queue, [](warren::blocking::channel&, const warren::message&) {});
    ch.basic_cancel(tag);
    std::cout << "cancelled consumer " << tag << '\n';
    ch.queue_unbind(s.queue, s.exchange, s.routing_key);
    std::cout << "unbound queue '" << s.queue << "' from exchange '" << s.exchange << "'\n";
    std::cout << "deleted queue '" << s.queue << "' with " << ch.queue_delete(s.queue)
              << " message(s)\n";
    ch.exchange_delete(s.exchange);
    std::cout << "deleted exchange '" << s.exchange << "'\n";
  }

 private:
  void callback(warren::blocking::channel& ch, const warren::message& m) {
    std::cout << m.body << std::endl;
    ch.ack(m.delivery_tag);  // the guide's basic_ack(delivery_tag=method.delivery_tag)
    ++received_;
  }

  std::uint64_t received_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(argc, argv,
                            "usage: blocking_receiver [--count N | --get | --cleanup] [options] "
                            "[URI]\n" +
                                std::string(example::blocking_options_help));
  const auto count = cli.number("--count", 0);
  const bool get = cli.flag("--get");
  const bool cleanup = cli.flag("--cleanup");
  if ((count != 0) + get + cleanup > 1) cli.fail("--count, --get and --cleanup exclude each other");
  auto settings = example::read_client_settings(cli);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  return example::run_blocking("blocking_receiver", [&] {
    receiver_client client(std::move(settings));
    if (cleanup) {
      client.cleanup();
      return 0;
    }
    const auto received = get ? client.get_all() : client.run(count);
    // Deliveries beyond --count were never acked: closing the channel puts
    // them back in the queue.
    client.close_channel();
    client.close_connect();
    std::cerr << "blocking_receiver: " << received << " message(s) received and acked\n";
    return 0;
  });
}
