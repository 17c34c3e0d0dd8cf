// send: publishes each line of a file (or of stdin) as one persistent message
// to the durable direct exchange 'eeg', routed to the durable queue 'eeg'.
//
//   send [--file PATH] [URI]
#include <fstream>

#include "example.hpp"

namespace {

asio::awaitable<int> send(std::string uri, std::vector<std::string> lines) {
  auto conn = co_await warren::connect(uri);
  auto ch = co_await conn.open_channel();
  co_await example::declare_eeg(ch);

  warren::basic_properties persistent;
  persistent.delivery_mode = 2;  // written to disk by the broker
  for (const auto& line : lines) co_await ch.publish(example::eeg, example::eeg, line, persistent);

  // The broker handles a channel's methods in order, so close-ok means every
  // publish above has been routed to the queue.
  co_await ch.close();
  co_await conn.close();
  std::cout << "sent " << lines.size() << " message(s) to exchange 'eeg' with routing key 'eeg'\n";
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  example::command_line cli(argc, argv, "usage: send [--file PATH] [URI]   (stdin without --file)");
  auto path = cli.option("--file");
  auto uri = cli.uri();

  std::ifstream file;
  if (path) {
    file.open(*path);
    if (!file) cli.fail("cannot read " + *path);
  }
  std::istream& in = path ? file : std::cin;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));

  return example::run("send", send(std::move(uri), std::move(lines)));
}
