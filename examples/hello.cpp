// hello: the two examples the README opens with, compiled and run as they
// are printed there (tests/examples checks that the README's text matches
// this file): one message through a private queue, first with the
// coroutine API, then with the blocking API. Prints "hello" twice.
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <exception>
#include <iostream>
#include <warren/client/warren.hpp>

// [readme: coroutine]
asio::awaitable<void> hello() {
  auto conn = co_await warren::connect("amqp://guest:guest@127.0.0.1:5672/");
  auto ch = co_await conn.open_channel();
  auto q = co_await ch.queue_declare("", {.exclusive = true});
  co_await ch.publish("", q.queue, "hello");
  auto consumer = co_await ch.consume(q.queue, {.no_ack = true});
  auto msg = co_await consumer.next();
  std::cout << msg->body << '\n';
}
// [end]

// [readme: blocking]
void hello_blocking() {
  auto conn = warren::blocking::connect("amqp://guest:guest@127.0.0.1:5672/");
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  ch.publish("", q.queue, "hello");
  auto consumer = ch.consume(q.queue, {.no_ack = true});
  auto msg = consumer.next();
  std::cout << msg->body << '\n';
}
// [end]

int main() {
  asio::io_context io;
  asio::co_spawn(io, hello(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  hello_blocking();
}
