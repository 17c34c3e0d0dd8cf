// The coroutine API used from several threads in the documented way: each
// thread hands its work to the connection's executor (asio::co_spawn or
// asio::post) and waits for the result; with an io_context run by several
// threads, the connection lives on a strand. Threads publish, consume, ack,
// cancel, close channels and close the connection under one another, with and
// without recovery. tests/blocking/run-tsan runs this file under
// ThreadSanitizer, where any data race fails it.
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include "harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

// Failures seen on worker threads (doctest's assertions belong to the main thread).
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
  void report() {
    std::lock_guard lk(m);
    for (const auto& f : list) FAIL_CHECK(f);
  }
};

// What a coroutine handed to the executor came to. An exception never
// crosses threads as such: it is caught on the executor and thrown afresh on
// the waiting thread (ThreadSanitizer cannot see the reference count that an
// exception_ptr shares between threads inside libstdc++).
template <class V>
struct outcome {
  std::optional<V> value;
  std::optional<error_info> failed;  // a warren::error
  std::string other;                 // what() of any other exception
};

// Spawns the coroutine that `f` makes on `ex`; the future gives its outcome.
template <class F>
auto spawn(const asio::any_io_executor& ex, F f) {
  using T = typename std::invoke_result_t<F&>::value_type;
  using V = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  return asio::co_spawn(
      ex,
      [f = std::move(f)]() mutable -> asio::awaitable<outcome<V>> {
        outcome<V> out;
        try {
          auto pending = f();
          if constexpr (std::is_void_v<T>) {
            co_await std::move(pending);
            out.value.emplace();
          } else {
            out.value.emplace(co_await std::move(pending));
          }
        } catch (const error& e) {
          out.failed = e.info();
        } catch (const std::exception& e) {
          out.other = e.what();
        }
        co_return out;
      },
      asio::use_future);
}

// Waits for a spawned coroutine on this thread and returns its value or
// throws its exception (a warren::error stays one). A completion that does
// not come within `limit` is a hang: it throws.
template <class V>
V result_of(std::future<outcome<V>>& done, std::chrono::seconds limit = 60s) {
  if (done.wait_for(limit) != std::future_status::ready)
    throw std::runtime_error("an operation handed to the connection's executor did not complete");
  outcome<V> out = done.get();
  if (out.failed) throw error(*out.failed);
  if (!out.value) throw std::runtime_error(out.other);
  return std::move(*out.value);
}

// Runs the coroutine that `f` makes on `ex` and waits for it on this thread.
template <class F>
auto on(const asio::any_io_executor& ex, F f, std::chrono::seconds limit = 60s) {
  auto done = spawn(ex, std::move(f));
  using T = typename std::invoke_result_t<F&>::value_type;
  if constexpr (std::is_void_v<T>)
    result_of(done, limit);
  else
    return result_of(done, limit);
}

// io_context threads that keep running until stop(); a stop that has to wait
// more than 20 s for the connection's loops to end is reported.
struct io_threads {
  asio::io_context ctx;
  asio::executor_work_guard<asio::io_context::executor_type> guard{ctx.get_executor()};
  std::vector<std::thread> threads;

  explicit io_threads(int n) {
    for (int i = 0; i < n; ++i) threads.emplace_back([this] { ctx.run(); });
  }
  // True when every thread returned by itself (no work left) within the limit.
  bool stop() {
    guard.reset();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!ctx.stopped() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    const bool clean = ctx.stopped();
    ctx.stop();
    for (auto& t : threads) t.join();
    threads.clear();
    return clean;
  }
  ~io_threads() {
    if (!threads.empty()) stop();
  }
};

// What one worker holds between hand-offs. Touched only on the connection's
// executor: the worker thread keeps the shared_ptr, never the handles.
struct worker_state {
  connection conn;
  channel ch;
  consumer cons;
  std::string queue;
};

constexpr int per_round = 60;

// One round on a worker thread: open a channel and a consumer, publish
// `per_round` confirmed messages as separate concurrent coroutines, take them
// back, ack them from this thread by posting, check the queue is empty,
// cancel, close. Throws warren::error when the connection goes away under it.
void round(const asio::any_io_executor& ex, const std::shared_ptr<worker_state>& st, int t, int r,
           failures& bad) {
  on(ex, [st]() -> asio::awaitable<void> {
    st->ch = co_await st->conn.open_channel();
    co_await st->ch.confirm_select();
    consume_options o;
    o.prefetch = per_round;
    st->cons = co_await st->ch.consume(st->queue, o);
  });

  std::vector<std::future<outcome<publish_outcome>>> published;
  for (int i = 0; i < per_round; ++i) {
    const std::string body = "t" + std::to_string(t) + " r" + std::to_string(r) + " m" + std::to_string(i);
    published.push_back(spawn(ex, [st, body]() -> asio::awaitable<publish_outcome> {
      auto pending = st->ch.publish("", st->queue, body);
      publish_outcome out = co_await std::move(pending);
      co_return out;
    }));
  }
  for (auto& p : published) {
    const publish_outcome out = result_of(p);
    bad.check(out.status == publish_status::acked, "a publish was not acked");
  }

  const std::vector<std::uint64_t> tags = on(ex, [st]() -> asio::awaitable<std::vector<std::uint64_t>> {
    std::vector<std::uint64_t> got;
    for (int i = 0; i < per_round; ++i) {
      auto m = co_await with_timeout(st->cons.next(), std::chrono::milliseconds(20000));
      if (!m) break;
      got.push_back(m->delivery_tag);
    }
    co_return got;
  });
  bad.check(tags.size() == per_round, "worker " + std::to_string(t) + " received " +
                                          std::to_string(tags.size()) + " of " +
                                          std::to_string(per_round));

  // Acks posted from this thread: every other one alone, the rest by a
  // multiple ack of the last tag. A posted handler has no caller to throw
  // to: an ack may fail only because the connection was closed under it.
  auto ack = [st, &bad](std::uint64_t tag, bool multiple) {
    try {
      st->ch.ack(tag, multiple);
    } catch (const error& e) {
      bad.check(!st->conn.is_open(), std::string("an ack failed while open: ") + e.what());
    }
  };
  for (std::size_t i = 0; i + 1 < tags.size(); i += 2)
    asio::post(ex, [ack, tag = tags[i]] { ack(tag, false); });
  if (!tags.empty()) asio::post(ex, [ack, tag = tags.back()] { ack(tag, true); });

  const bool empty = on(ex, [st]() -> asio::awaitable<bool> {
    co_await st->cons.cancel();
    // The acks were posted before this coroutine, and the broker handles a
    // channel's methods in order: every message is settled by now.
    auto left = co_await st->ch.get(st->queue);
    co_await st->ch.close();
    st->cons = {};
    st->ch = {};
    co_return !left.has_value();
  });
  bad.check(empty, "worker " + std::to_string(t) + ": the queue was not empty after the acks");
}

// Declares one queue per worker, runs `rounds` rounds on `workers` threads
// (or until the connection closes under them), and returns how many rounds
// completed. A worker may stop only with a warren::error, and only when
// `closing` says the connection is being closed.
int run_workers(const asio::any_io_executor& ex, const connection& conn, int workers, int rounds,
                const std::atomic<bool>& closing, failures& bad,
                const std::function<void(int completed)>& after_each_round = {}) {
  std::vector<std::shared_ptr<worker_state>> states;
  for (int t = 0; t < workers; ++t) {
    auto st = std::make_shared<worker_state>();
    st->queue = test::unique_name("threads");
    on(ex, [st, conn]() -> asio::awaitable<void> {
      st->conn = conn;
      channel setup = co_await st->conn.open_channel();
      queue_declare_options o;
      o.auto_delete = false;
      co_await setup.queue_declare(st->queue, o);
      co_await setup.close();
    });
    states.push_back(st);
  }

  std::atomic<int> completed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < workers; ++t) {
    threads.emplace_back([&, t] {
      const auto& st = states[t];
      try {
        for (int r = 0; r < rounds; ++r) {
          round(ex, st, t, r, bad);
          const int n = ++completed;
          if (after_each_round) after_each_round(n);
        }
      } catch (const error& e) {
        bad.check(closing.load(), "worker " + std::to_string(t) + " failed while open: " + e.what());
      } catch (const std::exception& e) {
        bad.add("worker " + std::to_string(t) + ": " + e.what());
      }
    });
  }
  for (auto& th : threads) th.join();

  // Delete the queues (on a new connection if this one was closed) and drop
  // every handle on the executor.
  try {
    on(ex, [states, conn]() -> asio::awaitable<void> {
      connection c = conn;
      if (!c.is_open()) c = co_await test::open_connection();
      channel ch = co_await c.open_channel();
      for (const auto& st : states) {
        co_await ch.queue_delete(st->queue);
        st->cons = {};
        st->ch = {};
        st->conn = {};
      }
      co_await ch.close();
      if (c.is_open() && !conn.is_open()) co_await c.close();
    });
  } catch (const std::exception& e) {
    bad.add(std::string("cleanup: ") + e.what());
  }
  return completed.load();
}

// Releases the last handle of `conn` on its executor.
void release(const asio::any_io_executor& ex, connection& conn) {
  on(ex, [c = std::move(conn)]() mutable -> asio::awaitable<void> {
    c = {};
    co_return;
  });
}

// The end of a test: close the connection and drop it on its executor,
// report the workers' failures, and check that the I/O threads then run out
// of work by themselves.
void close_and_stop(io_threads& io, const asio::any_io_executor& ex, connection& conn,
                    failures& bad) {
  on(ex, [conn]() mutable -> asio::awaitable<void> { co_await conn.close(); });
  release(ex, conn);
  bad.report();
  CHECK(io.stop());
}

}  // namespace

TEST_CASE("threads hand publish, consume, ack, cancel and close to the connection's executor") {
  io_threads io(1);
  failures bad;
  std::atomic<bool> closing{false};
  connection conn = on(io.ctx.get_executor(), [] { return test::open_connection(); });
  const asio::any_io_executor ex = conn.get_executor();

  const int done = run_workers(ex, conn, 4, 4, closing, bad);
  CHECK(done == 16);
  MESSAGE("one I/O thread, 4 workers: " << done << " rounds of " << per_round << " messages");

  closing = true;
  close_and_stop(io, ex, conn, bad);
}

TEST_CASE("a connection on a strand over an io_context run by three threads") {
  io_threads io(3);
  failures bad;
  std::atomic<bool> closing{false};
  auto strand = asio::make_strand(io.ctx);
  connection conn = on(strand, [] { return test::open_connection(); });
  const asio::any_io_executor ex = conn.get_executor();
  // The connection's own work runs where connect() ran: on the strand.
  CHECK(ex == asio::any_io_executor(strand));

  const int done = run_workers(ex, conn, 4, 4, closing, bad);
  CHECK(done == 16);
  MESSAGE("a strand over 3 I/O threads, 4 workers: " << done << " rounds");

  closing = true;
  close_and_stop(io, ex, conn, bad);
}

TEST_CASE("closing the connection from another thread while workers are busy") {
  io_threads io(3);
  failures bad;
  std::atomic<bool> closing{false};
  auto strand = asio::make_strand(io.ctx);
  connection conn = on(strand, [] { return test::open_connection(); });
  const asio::any_io_executor ex = conn.get_executor();

  // After the fourth completed round, a thread of its own closes the
  // connection while the others are mid-round: their pending operations fail
  // with a warren::error, none hangs, nothing races.
  std::thread closer;
  std::once_flag once;
  const int done = run_workers(ex, conn, 4, 50, closing, bad, [&](int completed) {
    if (completed < 4) return;
    std::call_once(once, [&] {
      closing = true;
      closer = std::thread([&] {
        try {
          on(ex, [conn]() mutable -> asio::awaitable<void> { co_await conn.close(); });
        } catch (const std::exception& e) {
          bad.add(std::string("close: ") + e.what());
        }
      });
    });
  });
  if (closer.joinable()) closer.join();
  CHECK(closing.load());
  CHECK(done >= 4);
  CHECK(done < 200);
  MESSAGE("closed under 4 workers after " << done << " rounds");
  CHECK_FALSE(on(ex, [conn]() -> asio::awaitable<bool> { co_return conn.is_open(); }));

  release(ex, conn);
  bad.report();
  CHECK(io.stop());
}

TEST_CASE("with recovery on a strand: a forced close while threads publish and consume") {
  io_threads io(3);
  failures bad;
  auto strand = asio::make_strand(io.ctx);
  const std::string name = test::unique_name("threads-recovery");
  connect_options opts;
  opts.connection_name = name;
  opts.recovery.enabled = true;
  opts.recovery.initial_backoff = 50ms;
  opts.recovery.max_backoff = 500ms;
  connection conn = on(strand, [&opts] { return test::open_connection(opts); });
  const asio::any_io_executor ex = conn.get_executor();

  auto st = std::make_shared<worker_state>();
  st->queue = test::unique_name("threads-recovery");
  on(ex, [st, conn]() -> asio::awaitable<void> {
    st->conn = conn;
    st->ch = co_await st->conn.open_channel();
    co_await st->ch.confirm_select();
    queue_declare_options o;
    o.durable = true;
    co_await st->ch.queue_declare(st->queue, o);
    consume_options c;
    c.prefetch = 100;
    st->cons = co_await st->ch.consume(st->queue, c);
  });

  // Two publisher threads (confirmed publishes handed over one by one, a
  // publish interrupted by the loss is retried) and one consumer thread (it
  // takes a delivery on the executor and posts its ack) until `stop`.
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0}, unknown{0}, interrupted{0}, received{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        try {
          const std::string body = std::to_string(t) + ":" + std::to_string(i);
          const publish_outcome out = on(ex, [st, body]() -> asio::awaitable<publish_outcome> {
            auto pending = st->ch.publish("", st->queue, body);
            publish_outcome o = co_await std::move(pending);
            co_return o;
          });
          if (out.status == publish_status::acked) ++acked;
          else if (out.status == publish_status::unknown) ++unknown;
          else bad.add("publish outcome neither acked nor unknown");
        } catch (const error& e) {
          if (e.code() == errc::interrupted) ++interrupted;
          else bad.add(std::string("publisher: ") + e.what());
        } catch (const std::exception& e) {
          bad.add(std::string("publisher: ") + e.what());
          return;
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop) {
      try {
        const auto tag = on(ex, [st]() -> asio::awaitable<std::optional<std::uint64_t>> {
          std::optional<message> m;
          try {
            m = co_await with_timeout(st->cons.next(), std::chrono::milliseconds(200));
          } catch (const error& e) {
            if (e.code() != errc::timeout) throw;
          }
          if (!m) co_return std::nullopt;
          co_return m->delivery_tag;
        });
        if (tag) {
          ++received;
          asio::post(ex, [st, tag = *tag] { st->ch.ack(tag); });
        }
      } catch (const error& e) {
        if (e.code() != errc::interrupted) bad.add(std::string("consumer: ") + e.what());
      } catch (const std::exception& e) {
        bad.add(std::string("consumer: ") + e.what());
        return;
      }
    }
  });

  std::this_thread::sleep_for(1500ms);
  const int before = acked.load();
  const std::string pid = test::connection_pid(name);
  CHECK_FALSE(pid.empty());
  CHECK(test::rabbitmqctl("close_connection '" + pid + "' 'threads test'").status == 0);
  // Publishing carries on once the connection is back.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (acked.load() < before + 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  stop = true;
  for (auto& t : threads) t.join();
  CHECK(acked.load() >= before + 200);
  CHECK(received.load() > 0);
  MESSAGE("recovery under 3 threads: acked " << acked.load() << " (" << before
          << " before the close), unknown " << unknown.load() << ", interrupted "
          << interrupted.load() << ", received " << received.load());

  on(ex, [st, conn]() mutable -> asio::awaitable<void> {
    co_await st->ch.queue_delete(st->queue);
    co_await conn.close();
    st->cons = {};
    st->ch = {};
    st->conn = {};
  });
  release(ex, conn);
  bad.report();
  CHECK(io.stop());
}
