// demo: the send/receive scenario end to end, measured. A publisher sends
// persistent messages through the exchange 'eeg' to the queue 'eeg' with
// publisher confirms, while a consumer on its own connection takes them with
// manual acks. The demo checks that every message arrived exactly once and
// prints a summary.
//
//   demo [--messages N] [--window W] [--prefetch P] [--ack-every K] [URI]
#include <unistd.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstdio>

#include "example.hpp"

namespace {

struct settings {
  std::uint64_t messages;
  std::uint64_t window;     // unconfirmed publishes allowed in flight
  std::uint64_t prefetch;   // unacked deliveries allowed in flight
  std::uint64_t ack_every;  // 1: ack each message; K: one multiple ack per K messages
  std::string run;          // tags this run's messages
};

struct tally {
  std::uint64_t sent = 0, acked_by_broker = 0, nacked_by_broker = 0;
  std::uint64_t received = 0, acked = 0, duplicates = 0, foreign = 0, redelivered = 0;
  std::vector<bool> seen;
  std::chrono::steady_clock::time_point published;
};

std::string body_of(const settings& s, std::uint64_t i) {
  return "eeg demo " + s.run + " message " + std::to_string(i);
}

// The message number in one of this run's bodies, or -1.
std::int64_t number_in(const settings& s, std::string_view body) {
  const std::string prefix = "eeg demo " + s.run + " message ";
  if (!body.starts_with(prefix)) return -1;
  body.remove_prefix(prefix.size());
  std::uint64_t i = 0;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), i);
  if (ec != std::errc() || end != body.data() + body.size() || i >= s.messages) return -1;
  return static_cast<std::int64_t>(i);
}

asio::awaitable<void> publish_all(warren::channel& ch, const settings& s, tally& t) {
  warren::basic_properties persistent;
  persistent.delivery_mode = 2;
  // With a window, publish_pipelined waits while `window` publishes are unconfirmed.
  co_await ch.confirm_select(s.window);
  for (std::uint64_t i = 0; i < s.messages; ++i) {
    auto body = body_of(s, i);
    co_await ch.publish_pipelined(example::eeg, example::eeg, body, persistent);
    ++t.sent;
  }
  auto confirms = co_await ch.wait_for_confirms();
  t.acked_by_broker = confirms.acked;
  t.nacked_by_broker = confirms.nacked;
  t.published = std::chrono::steady_clock::now();
}

asio::awaitable<void> consume_all(warren::channel& ch, warren::consumer& consumer,
                                  const settings& s, tally& t) {
  std::uint64_t unique = 0;
  std::uint64_t last_tag = 0;
  while (unique < s.messages) {
    std::optional<warren::message> msg;
    try {
      // Give up when nothing arrives for 10 s: a message went missing.
      auto next = warren::with_timeout(consumer.next(), std::chrono::seconds(10));
      msg = co_await std::move(next);
    } catch (const warren::error& e) {
      if (e.code() != warren::errc::timeout) throw;
    }
    if (!msg) break;
    ++t.received;
    if (msg->redelivered) ++t.redelivered;
    if (auto i = number_in(s, msg->body); i < 0) {
      ++t.foreign;
    } else if (t.seen[i]) {
      ++t.duplicates;
    } else {
      t.seen[i] = true;
      ++unique;
    }
    last_tag = msg->delivery_tag;
    if (t.received % s.ack_every == 0 || unique == s.messages) {
      ch.ack(last_tag, s.ack_every > 1);  // multiple: this one and every earlier one
      t.acked = t.received;
    }
  }
  if (t.acked < t.received) {
    ch.ack(last_tag, true);
    t.acked = t.received;
  }
}

asio::awaitable<int> demo(std::string uri, settings s) {
  using namespace asio::experimental::awaitable_operators;
  std::cout << "warren demo: exchange 'eeg' -> queue 'eeg' on "
            << warren::to_uri(warren::parse_uri(uri), true) << '\n'
            << "  " << s.messages << " persistent messages, confirm window " << s.window
            << ", prefetch " << s.prefetch << ", "
            << (s.ack_every > 1 ? "one multiple ack per " + std::to_string(s.ack_every)
                                : std::string("one ack per message"))
            << "\n\n";

  // Publisher and consumer on their own connections, as RabbitMQ advises:
  // flow control that slows a publishing connection then leaves acks alone.
  auto publisher = co_await warren::connect(uri);
  auto subscriber = co_await warren::connect(uri);
  auto pub = co_await publisher.open_channel();
  auto sub = co_await subscriber.open_channel();

  co_await example::declare_eeg(pub);
  if (auto stale = co_await pub.queue_purge(example::eeg); stale > 0)
    std::cout << "  (purged " << stale << " message(s) left in queue 'eeg' by earlier runs)\n";
  auto consumer =
      co_await sub.consume(example::eeg, {.prefetch = static_cast<std::uint16_t>(s.prefetch)});

  tally t;
  t.seen.assign(s.messages, false);
  const auto start = std::chrono::steady_clock::now();
  auto both = publish_all(pub, s, t) && consume_all(sub, consumer, s, t);
  co_await std::move(both);
  const auto end = std::chrono::steady_clock::now();

  co_await consumer.cancel();
  auto left = co_await pub.queue_declare(example::eeg, {.passive = true});
  co_await subscriber.close();
  co_await publisher.close();

  std::uint64_t missing = 0;
  for (bool got : t.seen) missing += !got;
  const bool ok = t.sent == s.messages && t.acked_by_broker == s.messages && missing == 0 &&
                  t.duplicates == 0 && t.foreign == 0 && left.message_count == 0;

  const std::chrono::duration<double> total = end - start, publishing = t.published - start;
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.0f", total.count() > 0 ? s.messages / total.count() : 0.0);
  char times[96];
  std::snprintf(times, sizeof times, "%.3f s (publishing and confirming: %.3f s)", total.count(),
                publishing.count());
  std::cout << "  sent       " << t.sent << '\n'
            << "  confirmed  " << t.acked_by_broker << " acked, " << t.nacked_by_broker
            << " nacked\n"
            << "  received   " << t.received << " (" << missing << " missing, " << t.duplicates
            << " duplicate, " << t.foreign << " foreign, " << t.redelivered << " redelivered)\n"
            << "  acked      " << t.acked << '\n'
            << "  left       " << left.message_count << " in queue 'eeg'\n"
            << "  time       " << times << '\n'
            << "  rate       " << rate << " msg/s, end to end\n\n"
            << (ok ? "OK: every message was confirmed, and received and acked exactly once\n"
                   : "FAILED: see the counts above\n");
  co_return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(
      argc, argv,
      "usage: demo [--messages N] [--window W] [--prefetch P] [--ack-every K] [URI]\n"
      "  defaults: 5000 messages, window 500, prefetch 200, ack every 50 (1 = per message)");
  settings s{
      .messages = cli.number("--messages", 5000),
      .window = cli.number("--window", 500),
      .prefetch = cli.number("--prefetch", 200),
      .ack_every = cli.number("--ack-every", 50),
      .run = std::to_string(::getpid()) + "." +
             std::to_string(std::chrono::system_clock::now().time_since_epoch().count()),
  };
  if (s.prefetch == 0 || s.prefetch > 65535) cli.fail("--prefetch must be 1..65535");
  if (s.ack_every == 0) cli.fail("--ack-every must be at least 1");
  return example::run("demo", demo(cli.uri(), std::move(s)));
}
