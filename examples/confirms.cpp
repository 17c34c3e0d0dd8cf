// confirms: publisher confirms (confirm.select), two ways.
//   per message  each publish waits for the broker's ack, nack or return
//   windowed     publish_pipelined keeps up to --window publishes unconfirmed,
//                then wait_for_confirms() collects the rest
//
//   confirms [--messages N] [--window W] [URI]
#include <chrono>

#include "example.hpp"

namespace {

const char* status_name(warren::publish_status s) {
  switch (s) {
    case warren::publish_status::sent: return "sent (no confirm mode)";
    case warren::publish_status::acked: return "acked";
    case warren::publish_status::nacked: return "nacked";
    case warren::publish_status::returned: return "returned";
    case warren::publish_status::unknown: return "unknown (the connection was lost)";
  }
  return "?";
}

asio::awaitable<int> confirms(std::string uri, std::uint64_t messages, std::uint64_t window) {
  auto conn = co_await warren::connect(uri);
  auto ch = co_await conn.open_channel();
  // A queue named by the broker, private to this connection.
  auto q = co_await ch.queue_declare("", {.exclusive = true});
  bool ok = true;

  // Per message: await each outcome.
  co_await ch.confirm_select();
  for (int i = 1; i <= 3; ++i) {
    auto body = "confirmed message " + std::to_string(i);
    auto outcome = co_await ch.publish("", q.queue, body);
    std::cout << "per message: #" << outcome.sequence << ' ' << status_name(outcome.status) << '\n';
    ok = ok && outcome.status == warren::publish_status::acked;
  }
  // A mandatory publish no queue is bound for comes back with basic.return.
  auto lost = co_await ch.publish("", "no-such-queue", "lost", {.mandatory = true});
  std::cout << "per message: #" << lost.sequence << ' ' << status_name(lost.status) << " ("
            << lost.reply_code << ' ' << lost.reply_text << ")\n";
  ok = ok && lost.status == warren::publish_status::returned && lost.reply_code == 312;

  // Windowed: a second channel, at most `window` publishes awaiting their confirm.
  auto pipelined = co_await conn.open_channel();
  co_await pipelined.confirm_select(window);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 1; i <= messages; ++i) {
    auto body = "pipelined message " + std::to_string(i);
    co_await pipelined.publish_pipelined("", q.queue, body);
  }
  auto summary = co_await pipelined.wait_for_confirms();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::cout << "windowed:    " << messages << " published with window " << window << ", "
            << summary.acked << " acked, " << summary.nacked << " nacked in " << took.count()
            << " ms\n";
  ok = ok && summary.acked == messages && summary.nacked == 0;

  auto check = co_await ch.queue_declare(q.queue, {.passive = true});
  std::cout << "queue holds " << check.message_count << " messages\n";
  ok = ok && check.message_count == messages + 3;

  co_await conn.close();  // the exclusive queue goes with the connection
  std::cout << (ok ? "OK\n" : "FAILED\n");
  co_return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(argc, argv, "usage: confirms [--messages N] [--window W] [URI]");
  auto messages = cli.number("--messages", 1000);
  auto window = cli.number("--window", 100);
  return example::run("confirms", confirms(cli.uri(), messages, window));
}
