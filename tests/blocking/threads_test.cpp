// Many threads sharing one blocking connection: publishing, consuming,
// acking, closing and dropping channels, stopping one another's consuming,
// and closing the connection under them. tests/blocking/run-tsan runs this
// under ThreadSanitizer, where any data race fails it.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "blocking_harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

constexpr int thread_total = 8;

// Collects failures from worker threads (doctest's assertions belong to the
// main thread).
struct failures {
  std::mutex m;
  std::vector<std::string> list;
  void add(std::string what) {
    std::lock_guard lk(m);
    list.push_back(std::move(what));
  }
  void check(bool ok, const std::string& what) {
    if (!ok) add(what);
  }
};

// One worker's rounds on its own channels: publish (confirmed, pipelined or
// plain), then take the messages back by callback consumer, pull consumer or
// basic.get, acking as it goes; then close the channel or just drop it.
void worker(blocking::connection& conn, blocking::channel& shared, const std::string& shared_queue,
            int t, int rounds, int per_round, failures& bad, std::atomic<int>& shared_published) {
  const std::string who = "thread " + std::to_string(t);
  for (int r = 0; r < rounds; ++r) {
    const std::string where = who + " round " + std::to_string(r) + ": ";
    auto ch = conn.open_channel();
    auto q = ch.queue_declare("", {.exclusive = true});
    switch ((t + r) % 3) {
      case 0:
        ch.confirm_select();
        for (int i = 0; i < per_round; ++i) {
          auto out = ch.publish("", q.queue, std::to_string(i));
          bad.check(out.status == publish_status::acked, where + "publish not acked");
        }
        break;
      case 1: {
        ch.confirm_select(8);
        for (int i = 0; i < per_round; ++i) ch.publish_pipelined("", q.queue, std::to_string(i));
        auto sum = ch.wait_for_confirms(30s);
        bad.check(sum.acked == static_cast<std::uint64_t>(per_round), where + "confirms missing");
        break;
      }
      default:
        ch.tx_select();
        for (int i = 0; i < per_round; ++i) ch.publish("", q.queue, std::to_string(i));
        ch.tx_commit();
        break;
    }
    // Meanwhile, a publish on the channel every thread shares.
    shared.publish("", shared_queue, who);
    ++shared_published;

    int expected = 0;
    switch ((t + r) % 3) {
      case 0: {
        ch.basic_consume(q.queue,
                         [&](blocking::channel& c, const message& m) {
                           if (m.body != std::to_string(expected))
                             bad.add(where + "out of order: " + m.body);
                           ++expected;
                           if (expected % 5 == 0 || expected == per_round)
                             c.ack(m.delivery_tag, true);
                           if (expected == per_round) c.stop_consuming();
                         },
                         {.prefetch = 10});
        auto end = ch.start_consuming(60s);
        bad.check(end == blocking::consuming_end::stopped, where + "consuming did not stop");
        break;
      }
      case 1: {
        auto cons = ch.consume(q.queue, {.prefetch = 16});
        message m;
        while (expected < per_round && cons.next(m, 30s)) {
          if (m.body != std::to_string(expected)) bad.add(where + "out of order: " + m.body);
          ++expected;
          ch.ack(m.delivery_tag);
          (void)cons.buffered();
        }
        cons.cancel();
        break;
      }
      default:
        while (auto m = ch.get(q.queue)) {
          if (m->body != std::to_string(expected)) bad.add(where + "out of order: " + m->body);
          ++expected;
          ch.ack(m->delivery_tag);
        }
        break;
    }
    bad.check(expected == per_round, where + "got " + std::to_string(expected));
    bad.check(ch.is_open(), where + "channel closed");
    if (r % 2 == 0) ch.close();  // else: dropped, and closed on the I/O thread
  }
}

}  // namespace

TEST_CASE("8 threads share one blocking connection: publish, consume, ack, close channels") {
  constexpr int rounds = 6;
  constexpr int per_round = 40;
  failures bad;
  std::atomic<int> shared_published{0};
  std::atomic<bool> done{false};
  std::atomic<int> shared_received{0};
  {
    auto conn = test::open_blocking();
    auto shared = conn.open_channel();
    auto shared_queue = shared.queue_declare("", {.exclusive = true}).queue;
    auto consuming = conn.open_channel();
    consuming.basic_consume(shared_queue, [&](blocking::channel& c, const message& m) {
      c.ack(m.delivery_tag);
      ++shared_received;
    });
    std::thread shared_consumer([&] {
      try {
        consuming.start_consuming(120s);
      } catch (const std::exception& e) {
        bad.add(std::string("shared consumer: ") + e.what());
      }
    });
    // A thread that only asks questions meanwhile.
    std::thread observer([&] {
      while (!done) {
        (void)conn.is_open();
        (void)shared.is_open();
        (void)shared.unconfirmed();
        (void)conn.close_reason();
        std::this_thread::sleep_for(1ms);
      }
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < thread_total; ++t) {
      workers.emplace_back([&, t] {
        try {
          worker(conn, shared, shared_queue, t, rounds, per_round, bad, shared_published);
        } catch (const std::exception& e) {
          bad.add("thread " + std::to_string(t) + ": " + e.what());
        }
      });
    }
    for (auto& w : workers) w.join();
    CHECK(test::eventually([&] { return shared_received.load() == shared_published.load(); },
                           30000ms));
    consuming.stop_consuming();
    shared_consumer.join();
    done = true;
    observer.join();
    CHECK(shared_published.load() == thread_total * rounds);
    CHECK(conn.is_open());
  }
  for (const auto& f : bad.list) FAIL_CHECK(f);
  CHECK(bad.list.empty());
}

TEST_CASE("threads stop one another's consuming; closing the connection ends the rest") {
  failures bad;
  auto conn = test::open_blocking();
  auto feeder = conn.open_channel();
  std::vector<blocking::channel> channels;
  std::vector<std::string> queues;
  std::atomic<int> delivered{0};
  for (int i = 0; i < thread_total / 2; ++i) {
    auto ch = conn.open_channel();
    auto q = ch.queue_declare("", {.exclusive = true}).queue;
    ch.basic_consume(q, [&](blocking::channel& c, const message& m) {
      ++delivered;
      c.ack(m.delivery_tag);
    });
    channels.push_back(ch);
    queues.push_back(q);
  }
  // Consumers: each consumes its channel until stopped from another thread,
  // then starts again (with a new consumer) until the connection closes.
  std::atomic<int> stopped{0}, ended{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < thread_total / 2; ++i) {
    threads.emplace_back([&, i] {
      auto ch = channels[i];
      try {
        // Stopped, or (if the stop came first) left with no consumers.
        if (ch.start_consuming(60s) != blocking::consuming_end::time_limit) ++stopped;
        ch.basic_consume(queues[i], [&](blocking::channel& c, const message& m) {
          ++delivered;
          c.ack(m.delivery_tag);
        });
        ch.start_consuming(60s);
        bad.add("consumer " + std::to_string(i) + " returned without an error");
      } catch (const error& e) {
        if (e.code() == errc::connection_closed)
          ++ended;
        else
          bad.add("consumer " + std::to_string(i) + ": " + e.what());
      }
    });
  }
  // Publishers: feed every queue, then stop "their" consumer.
  for (int i = 0; i < thread_total / 2; ++i) {
    threads.emplace_back([&, i] {
      try {
        auto ch = conn.open_channel();
        for (int n = 0; n < 30; ++n) ch.publish("", queues[(i + n) % queues.size()], "x");
        std::this_thread::sleep_for(50ms);
        channels[i].stop_consuming();
        for (int n = 0; n < 30; ++n) feeder.publish("", queues[n % queues.size()], "y");
      } catch (const std::exception& e) {
        bad.add("publisher " + std::to_string(i) + ": " + e.what());
      }
    });
  }
  CHECK(test::eventually([&] { return stopped.load() == thread_total / 2; }, 30000ms));
  CHECK(test::eventually([&] { return delivered.load() == 4 * 30 + 4 * 30; }, 30000ms));
  conn.close();
  for (auto& t : threads) t.join();
  CHECK(ended.load() == thread_total / 2);
  for (const auto& f : bad.list) FAIL_CHECK(f);
  CHECK(bad.list.empty());
}

TEST_CASE("a connection destroyed while threads wait in next(): they fail, nothing hangs") {
  const int threads_before = test::settled_thread_count();
  std::vector<std::thread> waiting;
  std::atomic<int> failed{0};
  {
    auto conn = test::open_blocking();
    for (int i = 0; i < thread_total; ++i) {
      auto ch = conn.open_channel();
      auto q = ch.queue_declare("", {.exclusive = true}).queue;
      auto cons = ch.consume(q);
      waiting.emplace_back([cons, &failed]() mutable {
        std::error_code ec;
        auto m = cons.next(60s, ec);
        if (ec && !m) ++failed;
      });
    }
    std::this_thread::sleep_for(100ms);
  }
  for (auto& t : waiting) t.join();
  CHECK(failed.load() == thread_total);
  CHECK(test::thread_count_becomes(threads_before));
}
