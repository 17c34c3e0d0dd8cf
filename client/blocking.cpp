#include "warren/client/blocking.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <variant>

#include "warren/client/rpc.hpp"
#include "warren/client/timeout.hpp"
#include "warren/client/unique_function.hpp"

namespace warren::blocking {
namespace detail {

namespace {

error_info make_error(std::error_code code, std::string text) {
  error_info e;
  e.code = code;
  e.text = std::move(text);
  return e;
}

error_info refused_on_io_thread() {
  return make_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                    "warren::blocking: a blocking call on the connection's own I/O thread (from "
                    "a handler or coroutine running there) would wait for itself; make it from "
                    "another thread, or use the coroutine API there");
}

error_info connection_gone() {
  return make_error(errc::connection_closed, "the blocking connection is closed");
}

error_info no_channel() { return make_error(errc::channel_closed, "no channel (an empty handle)"); }

error_info from_exception(std::exception_ptr p) {
  try {
    std::rethrow_exception(p);
  } catch (const warren::error& e) {
    return e.info();
  } catch (const std::system_error& e) {
    return make_error(e.code(), e.what());
  } catch (const std::exception& e) {
    return make_error(errc::internal_error, e.what());
  } catch (...) {
    return make_error(errc::internal_error, "unknown exception");
  }
}

// What a call returns, with void as an empty value.
template <class T>
using value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// Hands a call's outcome to its caller: the value, or the error thrown or
// stored in *ec.
template <class V>
V deliver(error_info failure, std::optional<V>& out, std::error_code* ec) {
  if (failure || !out) {
    if (!failure) failure = connection_gone();
    if (ec) {
      *ec = failure.code;
      return V{};
    }
    throw warren::error(std::move(failure));
  }
  if (ec) ec->clear();
  return std::move(*out);
}

constexpr auto no_throw = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace

// One call in flight. The caller waits on it; the I/O thread completes it,
// or the thread's epilogue fails it if the thread ended first.
struct waiter {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  error_info failure;
  waiter* prev = nullptr;  // in io_state::waiters_, under io_state::m
  waiter* next = nullptr;

  void finish(error_info e) {
    std::lock_guard lk(m);
    if (done) return;
    failure = std::move(e);
    done = true;
    cv.notify_one();
  }
  void wait() {
    std::unique_lock lk(m);
    cv.wait(lk, [this] { return done; });
  }
};

// Makes the operation a call runs on the I/O thread. Type-erased, with the
// result stored by store_result: one small coroutine per result type and one
// run_op for all, instead of a coroutine and a deadline race per call site.
template <class T>
using op_factory = warren::detail::unique_function<asio::awaitable<T>()>;

template <class T>
asio::awaitable<void> store_result(asio::awaitable<T> op, std::optional<value_t<T>>* out) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(op);
    out->emplace();
  } else {
    T value = co_await std::move(op);
    out->emplace(std::move(value));
  }
}

// Runs `make()`'s operation (within `timeout`, if non-zero) and completes *w,
// which belongs to a caller waiting for it.
asio::awaitable<void> run_op(op_factory<void> make, duration timeout, waiter* w) {
  error_info failure;
  try {
    asio::awaitable<void> op = make();
    if (timeout > duration::zero()) {
      auto bounded = warren::with_timeout(std::move(op), timeout);
      co_await std::move(bounded);
    } else {
      co_await std::move(op);
    }
  } catch (...) {
    failure = from_exception(std::current_exception());
  }
  w->finish(std::move(failure));
}

struct callback_consumer;

struct delivery {
  std::shared_ptr<callback_consumer> from;
  message msg;
};

// An io_context whose services can be shut down before it is destroyed: the
// I/O thread does so as it ends, which also joins the thread Asio's resolver
// keeps, so that nothing runs once the connection is gone even while
// handles to it are still held.
struct owned_io_context : asio::io_context {
  using asio::io_context::shutdown;
};

// The state of one connection: its io_context, the I/O thread, and the calls
// in flight.
struct io_state : std::enable_shared_from_this<io_state> {
  enum class phase : std::uint8_t {
    open,      // calls are taken
    closing,   // the connection is closed; the I/O thread is winding down
    finished,  // the I/O thread has left io.run(): what remains runs inline, under m
  };

  owned_io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::atomic<std::thread::id> io_thread{};

  std::mutex m;
  std::condition_variable cv;
  phase phase_ = phase::open;
  bool close_started = false;
  waiter* waiters = nullptr;
  // Handle releases that came after the connection closed: the I/O thread
  // runs them when it leaves io.run().
  std::vector<warren::detail::unique_function<void(bool)>> deferred;

  // Set while connecting (on the I/O thread, before the connect call
  // completes); read-only afterwards.
  std::uint32_t frame_max = 0;
  std::uint16_t channel_max = 0;
  std::uint16_t heartbeat = 0;
  field_table server_properties;
  std::string endpoint;

  // The I/O thread's own (and, once finished, anyone's under m).
  warren::connection conn;
  error_info final_reason;
  connection_counters final_counters;
  std::vector<std::weak_ptr<channel_state>> channels;

  ~io_state() {
    if (thread.joinable()) {
      if (thread.get_id() == std::this_thread::get_id())
        thread.detach();
      else
        thread.join();
    }
  }

  static connection wrap(std::shared_ptr<io_state> s) { return connection(std::move(s)); }

  void start() {
    work.emplace(io.get_executor());
    thread = std::thread([self = shared_from_this()] { self->run(); });
    io_thread.store(thread.get_id());
  }

  bool on_io_thread() const noexcept { return std::this_thread::get_id() == io_thread.load(); }

  void run() {
    for (;;) {
      try {
        io.run();
        break;
      } catch (...) {
        // A handler of the user's threw out of io.run(); the connection's
        // own handlers catch everything. Keep serving the others.
      }
    }
    // What is still queued is destroyed here; handles it held that are
    // released by that go to `deferred`.
    io.shutdown();
    std::lock_guard lk(m);
    phase_ = phase::finished;
    fail_consumers(true);
    for (waiter* w = waiters; w != nullptr; w = w->next) w->finish(connection_gone());
    for (auto& release : deferred) release(false);
    deferred.clear();
    // Thread ids are reused: no later thread may pass for this one.
    io_thread.store(std::thread::id{});
    cv.notify_all();
  }

  void link(waiter& w) {
    w.next = waiters;
    if (waiters) waiters->prev = &w;
    waiters = &w;
  }
  void unlink(waiter& w) {
    if (w.prev)
      w.prev->next = w.next;
    else
      waiters = w.next;
    if (w.next) w.next->prev = w.prev;
  }

  // Runs the operation make() returns on the I/O thread and waits for it.
  // Refused on the I/O thread and once the connection is closed.
  template <class T>
  error_info call(op_factory<T> make, duration timeout, std::optional<value_t<T>>& out) {
    if (on_io_thread()) return refused_on_io_thread();
    waiter w;
    {
      std::lock_guard lk(m);
      if (phase_ != phase::open) return connection_gone();
      link(w);
      auto* result = &out;
      op_factory<void> stored = [make = std::move(make), result]() mutable {
        return store_result<T>(make(), result);
      };
      asio::co_spawn(io, run_op(std::move(stored), timeout, &w), asio::detached);
    }
    w.wait();
    std::lock_guard lk(m);
    unlink(w);
    return std::move(w.failure);
  }

  // Runs f() on the I/O thread (at once when already there) and returns
  // what it returns; once the I/O thread has finished, runs it here under m.
  // For work that does not wait: queries, acks. f may throw.
  template <class F>
  error_info run_now(F&& f) {
    if (on_io_thread()) {
      try {
        f();
        return {};
      } catch (...) {
        return from_exception(std::current_exception());
      }
    }
    waiter w;
    bool ran = false;
    {
      std::unique_lock lk(m);
      if (phase_ == phase::closing) cv.wait(lk, [this] { return phase_ == phase::finished; });
      if (phase_ == phase::finished) {
        try {
          f();
          return {};
        } catch (...) {
          return from_exception(std::current_exception());
        }
      }
      link(w);
      asio::post(io, [&f, &w, &ran] {
        ran = true;
        error_info e;
        try {
          f();
        } catch (...) {
          e = from_exception(std::current_exception());
        }
        w.finish(std::move(e));
      });
    }
    w.wait();
    std::unique_lock lk(m);
    unlink(w);
    if (ran) return std::move(w.failure);
    // The thread ended before running f: run it here.
    try {
      f();
      return {};
    } catch (...) {
      return from_exception(std::current_exception());
    }
  }

  // A query: f() on the I/O thread, or here once it has finished.
  template <class F>
  auto query(F f) -> decltype(f()) {
    std::optional<decltype(f())> out;
    run_now([&] { out.emplace(f()); });
    return out ? std::move(*out) : decltype(f()){};
  }

  // Lets go of handles on the I/O thread: release(true) there while it runs,
  // release(false) once it has finished.
  void release(warren::detail::unique_function<void(bool)> fn) {
    std::lock_guard lk(m);
    switch (phase_) {
      case phase::open: asio::post(io, [fn = std::move(fn)]() mutable { fn(true); }); break;
      case phase::closing: deferred.push_back(std::move(fn)); break;
      case phase::finished: fn(false); break;
    }
  }

  error_info shutdown(std::uint16_t code, std::string_view text, duration timeout);
  void fail_consumers(bool forget);
  void shutdown_from_io_thread();
  void stop_everything();
};

// A consumer whose deliveries go to a callback: a pump on the I/O thread moves
// them from the stream into the channel's inbox, whence start_consuming()
// hands them to the callback.
struct callback_consumer {
  explicit callback_consumer(asio::io_context& io) : space(io) {}

  // Set before the consumer is published; read-only afterwards.
  consume_callback callback;
  std::string tag;
  bool no_ack = false;
  std::size_t capacity = 1;

  // The I/O thread's own.
  warren::consumer stream;
  warren::channel ch;
  asio::steady_timer space;  // the pump waits on it while the inbox holds `capacity`
  bool cancelling = false;   // basic.cancel sent by us: what still comes is nacked
  bool stopping = false;     // the channel or connection is going: the pump ends
  bool ended = false;        // the pump has ended

  // Under channel_state::m.
  std::size_t queued = 0;     // in the inbox
  bool pump_waiting = false;  // the pump waits for room
};

struct channel_state {
  std::shared_ptr<io_state> io;
  std::uint16_t id = 0;  // set before the channel is published

  // The I/O thread's own.
  warren::channel ch;

  std::mutex m;
  std::condition_variable cv;
  std::deque<delivery> inbox;
  std::vector<std::shared_ptr<callback_consumer>> consumers;  // pumps running
  std::uint64_t stop_generation = 0;
  error_info failure;  // the channel or connection failed under a pump
};

// What blocking::channel holds: when the last copy goes, the channel goes.
struct channel_handle {
  std::shared_ptr<channel_state> st;
  explicit channel_handle(std::shared_ptr<channel_state> s) : st(std::move(s)) {}
  channel_handle(const channel_handle&) = delete;
  channel_handle& operator=(const channel_handle&) = delete;
  ~channel_handle();
};

struct consumer_handle {
  std::shared_ptr<io_state> io;
  warren::consumer c;  // the I/O thread's own
  std::string tag;
  consumer_handle() = default;
  consumer_handle(const consumer_handle&) = delete;
  consumer_handle& operator=(const consumer_handle&) = delete;
  ~consumer_handle() {
    if (!io) return;
    io->release([c = std::move(c)](bool) mutable { warren::consumer gone(std::move(c)); });
  }
};

struct rpc_holder {
  std::shared_ptr<io_state> io;
  warren::rpc_client rpc;  // the I/O thread's own
  rpc_holder() = default;
  rpc_holder(const rpc_holder&) = delete;
  rpc_holder& operator=(const rpc_holder&) = delete;
  ~rpc_holder() {
    if (!io) return;
    io->release([r = std::move(rpc)](bool) mutable { warren::rpc_client gone(std::move(r)); });
  }
};

namespace {

asio::awaitable<void> close_quietly(warren::channel ch) {
  try {
    auto op = ch.close();
    co_await std::move(op);
  } catch (...) {
  }
}

// Stops the pumps of a channel that is going away (they end once woken or
// once their stream fails); with the I/O thread running, also closes the
// channel.
void drop_channel(channel_state& st, bool running) {
  std::vector<std::shared_ptr<callback_consumer>> pumps;
  {
    std::lock_guard lk(st.m);
    pumps = st.consumers;
    st.inbox.clear();
  }
  for (auto& p : pumps) {
    p->stopping = true;
    if (running) p->space.cancel();
  }
  warren::channel ch = std::move(st.ch);
  if (running && ch) asio::co_spawn(st.io->io, close_quietly(std::move(ch)), asio::detached);
}

}  // namespace

channel_handle::~channel_handle() {
  if (!st || !st->io) return;
  auto io = st->io;
  io->release([s = std::move(st)](bool running) { drop_channel(*s, running); });
}

namespace {

asio::awaitable<void> close_connection(io_state* s, std::uint16_t code, std::string_view text) {
  if (!s->conn) co_return;
  auto op = s->conn.close(code, text);
  co_await std::move(op);
}

}  // namespace

// On the I/O thread, once the connection is closed: every start_consuming()
// learns why, and the pumps end.
void io_state::stop_everything() {
  if (conn) {
    final_reason = conn.close_reason();
    final_counters = conn.counters();
  }
  if (!final_reason) final_reason = connection_gone();
  fail_consumers(false);
  for (auto& weak : channels) {
    auto st = weak.lock();
    if (!st) continue;
    std::vector<std::shared_ptr<callback_consumer>> pumps;
    {
      std::lock_guard lk(st->m);
      pumps = st->consumers;
    }
    for (auto& p : pumps) {
      p->stopping = true;
      p->space.cancel();
    }
  }
  conn = {};
}

// On the I/O thread: marks every channel's consuming as failed with the
// connection's end; with `forget`, also forgets pumps that will never run
// again (the thread has left io.run()).
void io_state::fail_consumers(bool forget) {
  error_info why = final_reason ? final_reason : connection_gone();
  for (auto& weak : channels) {
    auto st = weak.lock();
    if (!st) continue;
    {
      std::lock_guard lk(st->m);
      if (!st->failure) st->failure = why;
      if (forget) st->consumers.clear();
    }
    st->cv.notify_all();
  }
  if (forget) channels.clear();
}

error_info io_state::shutdown(std::uint16_t code, std::string_view text, duration timeout) {
  if (on_io_thread()) return refused_on_io_thread();
  {
    std::unique_lock lk(m);
    if (close_started) {
      cv.wait(lk, [this] { return phase_ == phase::finished; });
      return {};
    }
    close_started = true;
  }
  std::optional<std::monostate> closed;
  error_info failure = call<void>([this, code, text] { return close_connection(this, code, text); },
                                  timeout, closed);
  run_now([this] { stop_everything(); });
  {
    std::lock_guard lk(m);
    if (phase_ == phase::open) phase_ = phase::closing;
  }
  work.reset();
  {
    // With the socket closed nothing is left to wait for; a connection that
    // could not be closed (its close timed out) is stopped where it stands.
    std::unique_lock lk(m);
    const auto grace = failure ? std::chrono::seconds(1) : std::chrono::seconds(5);
    if (!cv.wait_for(lk, grace, [this] { return phase_ == phase::finished; })) io.stop();
  }
  if (thread.joinable()) thread.join();
  return failure;
}

namespace {

asio::awaitable<void> close_from_io_thread(std::shared_ptr<io_state> s) {
  try {
    auto op = close_connection(s.get(), 200, "closed by the client");
    co_await std::move(op);
  } catch (...) {
  }
  s->stop_everything();
  {
    std::lock_guard lk(s->m);
    if (s->phase_ == io_state::phase::open) s->phase_ = io_state::phase::closing;
  }
  s->work.reset();
}

}  // namespace

void io_state::shutdown_from_io_thread() {
  {
    std::lock_guard lk(m);
    if (close_started) return;
    close_started = true;
  }
  asio::co_spawn(io, close_from_io_thread(shared_from_this()), asio::detached);
  thread.detach();
}

namespace {

asio::awaitable<void> store_connection(io_state* s, asio::awaitable<warren::connection> op) {
  warren::connection c = co_await std::move(op);
  s->frame_max = c.frame_max();
  s->channel_max = c.channel_max();
  s->heartbeat = c.heartbeat();
  s->server_properties = c.server_properties();
  s->endpoint = c.endpoint();
  s->conn = std::move(c);
}

// Starts an I/O thread, connects on it with make() and returns the
// connection, or the error (thrown, or in *ec).
template <class Make>
connection open_connection(Make make, duration timeout, std::error_code* ec) {
  auto s = std::make_shared<io_state>();
  s->start();
  std::optional<std::monostate> out;
  io_state* raw = s.get();
  error_info failure =
      s->call<void>([raw, &make] { return store_connection(raw, make()); }, timeout, out);
  if (failure) {
    s->shutdown(200, "closed by the client", duration::zero());
    deliver(std::move(failure), out, ec);
    return connection();
  }
  if (ec) ec->clear();
  return io_state::wrap(std::move(s));
}

}  // namespace

connection connect_uri(std::string_view uri, const connect_options& options, duration timeout,
                       std::error_code* ec) {
  return open_connection([uri, &options] { return warren::connect(uri, options); }, timeout, ec);
}

// ---- the pump of a callback consumer --------------------------------------

namespace {

// Room in the inbox for one more of rec's deliveries? If not, the pump is
// marked as waiting, and start_consuming() wakes it when it takes one.
bool has_room(channel_state& st, callback_consumer& rec) {
  std::lock_guard lk(st.m);
  if (rec.queued < rec.capacity) return true;
  rec.pump_waiting = true;
  return false;
}

void push(channel_state& st, const std::shared_ptr<callback_consumer>& rec, message&& m) {
  {
    std::lock_guard lk(st.m);
    st.inbox.push_back(delivery{rec, std::move(m)});
    ++rec->queued;
  }
  st.cv.notify_all();
}

asio::awaitable<void> pump(std::shared_ptr<channel_state> st,
                           std::shared_ptr<callback_consumer> rec) {
  error_info failure;
  try {
    message m;
    for (;;) {
      if (rec->stopping) break;
      if (!rec->cancelling && !has_room(*st, *rec)) {
        rec->space.expires_at(asio::steady_timer::time_point::max());
        auto wait = rec->space.async_wait(no_throw);
        co_await std::move(wait);
        continue;
      }
      auto next = rec->stream.next(m);
      const bool got = co_await std::move(next);
      if (!got) break;  // cancelled, by us or by the broker
      if (rec->stopping) break;
      if (rec->cancelling && !rec->no_ack) {
        // Cancelled by us: what was still on its way goes back to the queue.
        rec->ch.nack(m.delivery_tag, false, true);
        continue;
      }
      push(*st, rec, std::move(m));
      m = message{};
    }
  } catch (...) {
    failure = from_exception(std::current_exception());
  }
  rec->ended = true;
  {
    std::lock_guard lk(st->m);
    std::erase(st->consumers, rec);
    if (failure && !rec->stopping && !st->failure) st->failure = std::move(failure);
  }
  st->cv.notify_all();
  rec->stream = {};
  rec->ch = {};
}

asio::awaitable<std::string> start_callback_consumer(std::shared_ptr<channel_state> st,
                                                     std::shared_ptr<callback_consumer> rec,
                                                     std::string_view queue, consume_options o) {
  if (!st->ch) throw warren::error(no_channel());
  auto op = st->ch.consume(queue, o);
  warren::consumer c = co_await std::move(op);
  rec->stream = std::move(c);
  rec->ch = st->ch;
  rec->tag = rec->stream.tag();
  {
    std::lock_guard lk(st->m);
    st->consumers.push_back(rec);
  }
  asio::co_spawn(st->io->io, pump(st, rec), asio::detached);
  co_return rec->tag;
}

// basic.cancel for callback consumers; deliveries of theirs that wait in the
// inbox are nacked (no_ack ones stay for the next start_consuming()).
asio::awaitable<void> cancel_callback_consumers(
    std::shared_ptr<channel_state> st, std::vector<std::shared_ptr<callback_consumer>> recs) {
  error_info first;
  for (auto& rec : recs) {
    if (rec->ended || rec->cancelling || rec->stopping) continue;
    rec->cancelling = true;
    rec->space.cancel();
    try {
      auto op = rec->stream.cancel();
      co_await std::move(op);
    } catch (...) {
      if (!first) first = from_exception(std::current_exception());
      continue;
    }
    if (rec->no_ack) continue;
    std::vector<std::uint64_t> tags;
    {
      std::lock_guard lk(st->m);
      for (auto it = st->inbox.begin(); it != st->inbox.end();) {
        if (it->from == rec) {
          tags.push_back(it->msg.delivery_tag);
          it = st->inbox.erase(it);
          --rec->queued;
        } else {
          ++it;
        }
      }
    }
    for (std::uint64_t tag : tags) {
      try {
        if (st->ch) st->ch.nack(tag, false, true);
      } catch (...) {
      }
    }
  }
  if (first) throw warren::error(std::move(first));
}

asio::awaitable<std::shared_ptr<channel_state>> open_channel_on(std::shared_ptr<io_state> s) {
  if (!s->conn) throw warren::error(connection_gone());
  auto op = s->conn.open_channel();
  warren::channel ch = co_await std::move(op);
  auto st = std::make_shared<channel_state>();
  st->io = s;
  st->id = ch.id();
  st->ch = std::move(ch);
  std::erase_if(s->channels, [](const std::weak_ptr<channel_state>& w) { return w.expired(); });
  s->channels.push_back(st);
  co_return st;
}

asio::awaitable<std::shared_ptr<rpc_holder>> open_rpc_on(std::shared_ptr<io_state> s) {
  if (!s->conn) throw warren::error(connection_gone());
  auto op = warren::rpc_client::open(s->conn);
  warren::rpc_client rpc = co_await std::move(op);
  auto h = std::make_shared<rpc_holder>();
  h->rpc = std::move(rpc);
  h->io = s;
  co_return h;
}

asio::awaitable<std::shared_ptr<consumer_handle>> consume_on(std::shared_ptr<channel_state> st,
                                                             std::string_view queue,
                                                             consume_options o) {
  if (!st->ch) throw warren::error(no_channel());
  auto op = st->ch.consume(queue, o);
  warren::consumer c = co_await std::move(op);
  auto h = std::make_shared<consumer_handle>();
  h->tag = c.tag();
  h->c = std::move(c);
  h->io = st->io;
  co_return h;
}

}  // namespace
}  // namespace detail

using detail::deliver;
using detail::value_t;

namespace {

// A channel operation: f(warren::channel&) returns the operation's awaitable.
template <class T, class F>
value_t<T> on_channel(const std::shared_ptr<detail::channel_handle>& h, duration timeout,
                      std::error_code* ec, F f) {
  std::optional<value_t<T>> out;
  if (!h) return deliver(detail::no_channel(), out, ec);
  detail::channel_state* st = h->st.get();
  error_info failure = st->io->call<T>(
      [st, f]() -> asio::awaitable<T> {
        if (!st->ch) throw warren::error(detail::no_channel());
        return f(st->ch);
      },
      timeout, out);
  return deliver(std::move(failure), out, ec);
}

// An operation that does not wait (ack, nack, reject): f(warren::channel&).
template <class F>
void now_on_channel(const std::shared_ptr<detail::channel_handle>& h, std::error_code* ec, F f) {
  std::optional<std::monostate> out;
  if (!h) {
    deliver(detail::no_channel(), out, ec);
    return;
  }
  detail::channel_state* st = h->st.get();
  error_info failure = st->io->run_now([st, &f] {
    if (!st->ch) throw warren::error(detail::no_channel());
    f(st->ch);
  });
  if (!failure) out.emplace();
  deliver(std::move(failure), out, ec);
}

// A query of the channel: f(const warren::channel&), or `fallback` without one.
template <class F, class R = std::invoke_result_t<F, const warren::channel&>>
R ask_channel(const std::shared_ptr<detail::channel_handle>& h, F f, R fallback = R{}) {
  if (!h) return fallback;
  detail::channel_state* st = h->st.get();
  return st->io->query([st, &f, &fallback]() -> R { return st->ch ? f(st->ch) : fallback; });
}

}  // namespace

// ---- connect ---------------------------------------------------------------

connection connect(const connection_params& params, const connect_options& options,
                   duration timeout) {
  return detail::open_connection([&] { return warren::connect(params, options); }, timeout,
                                 nullptr);
}
connection connect(const connection_params& params, const connect_options& options,
                   duration timeout, std::error_code& ec) {
  return detail::open_connection([&] { return warren::connect(params, options); }, timeout, &ec);
}

connection connect(std::vector<connection_params> candidates, const connect_options& options,
                   duration timeout) {
  return detail::open_connection([&] { return warren::connect(candidates, options); }, timeout,
                                 nullptr);
}
connection connect(std::vector<connection_params> candidates, const connect_options& options,
                   duration timeout, std::error_code& ec) {
  return detail::open_connection([&] { return warren::connect(candidates, options); }, timeout,
                                 &ec);
}

connection connect(const std::vector<std::string>& uris, const connect_options& options,
                   duration timeout) {
  return detail::open_connection([&] { return warren::connect(uris, options); }, timeout, nullptr);
}
connection connect(const std::vector<std::string>& uris, const connect_options& options,
                   duration timeout, std::error_code& ec) {
  return detail::open_connection([&] { return warren::connect(uris, options); }, timeout, &ec);
}

connection connect(const connection_params& shared, const std::vector<endpoint>& endpoints,
                   const connect_options& options, duration timeout) {
  return detail::open_connection([&] { return warren::connect(shared, endpoints, options); },
                                 timeout, nullptr);
}
connection connect(const connection_params& shared, const std::vector<endpoint>& endpoints,
                   const connect_options& options, duration timeout, std::error_code& ec) {
  return detail::open_connection([&] { return warren::connect(shared, endpoints, options); },
                                 timeout, &ec);
}

// ---- connection -------------------------------------------------------------

connection::connection(connection&&) noexcept = default;

connection& connection::operator=(connection&& o) noexcept {
  if (this != &o) {
    connection gone(std::move(*this));
    state_ = std::move(o.state_);
  }
  return *this;
}

connection::~connection() {
  if (!state_) return;
  if (state_->on_io_thread())
    state_->shutdown_from_io_thread();
  else
    state_->shutdown(200, "closed by the client", duration::zero());
}

channel connection::open_channel(duration timeout) {
  std::error_code* none = nullptr;
  std::optional<std::shared_ptr<detail::channel_state>> out;
  if (!state_) deliver(detail::connection_gone(), out, none);
  auto s = state_;
  error_info failure = s->call<std::shared_ptr<detail::channel_state>>(
      [s] { return detail::open_channel_on(s); }, timeout, out);
  auto st = deliver(std::move(failure), out, none);
  return channel(std::make_shared<detail::channel_handle>(std::move(st)));
}

channel connection::open_channel(duration timeout, std::error_code& ec) {
  std::optional<std::shared_ptr<detail::channel_state>> out;
  if (!state_) {
    deliver(detail::connection_gone(), out, &ec);
    return channel();
  }
  auto s = state_;
  error_info failure = s->call<std::shared_ptr<detail::channel_state>>(
      [s] { return detail::open_channel_on(s); }, timeout, out);
  auto st = deliver(std::move(failure), out, &ec);
  if (!st) return channel();
  return channel(std::make_shared<detail::channel_handle>(std::move(st)));
}

namespace {

std::shared_ptr<detail::rpc_holder> open_rpc_impl(const std::shared_ptr<detail::io_state>& s,
                                                  duration timeout, std::error_code* ec) {
  std::optional<std::shared_ptr<detail::rpc_holder>> out;
  if (!s) return deliver(detail::connection_gone(), out, ec);
  error_info failure = s->call<std::shared_ptr<detail::rpc_holder>>(
      [s] { return detail::open_rpc_on(s); }, timeout, out);
  return deliver(std::move(failure), out, ec);
}

}  // namespace

rpc_client connection::open_rpc_client(duration timeout) {
  return rpc_client(open_rpc_impl(state_, timeout, nullptr));
}
rpc_client connection::open_rpc_client(duration timeout, std::error_code& ec) {
  return rpc_client(open_rpc_impl(state_, timeout, &ec));
}

void connection::close(std::uint16_t code, std::string_view text, duration timeout) {
  std::error_code* none = nullptr;
  std::optional<std::monostate> out{std::in_place};
  if (!state_) return;
  error_info failure = state_->shutdown(code, text, timeout);
  deliver(std::move(failure), out, none);
}

void connection::close(std::uint16_t code, std::string_view text, duration timeout,
                       std::error_code& ec) {
  std::optional<std::monostate> out{std::in_place};
  if (!state_) {
    ec.clear();
    return;
  }
  error_info failure = state_->shutdown(code, text, timeout);
  deliver(std::move(failure), out, &ec);
}

namespace {

template <class T, class F>
value_t<T> on_connection(const std::shared_ptr<detail::io_state>& s, duration timeout,
                         std::error_code* ec, F f) {
  std::optional<value_t<T>> out;
  if (!s) return deliver(detail::connection_gone(), out, ec);
  detail::io_state* raw = s.get();
  error_info failure = s->call<T>(
      [raw, f]() -> asio::awaitable<T> {
        if (!raw->conn) throw warren::error(detail::connection_gone());
        return f(raw->conn);
      },
      timeout, out);
  return deliver(std::move(failure), out, ec);
}

}  // namespace

connection_notice connection::next_notice(duration timeout) {
  return on_connection<connection_notice>(state_, timeout, nullptr,
                                          [](warren::connection& c) { return c.next_notice(); });
}
connection_notice connection::next_notice(duration timeout, std::error_code& ec) {
  return on_connection<connection_notice>(state_, timeout, &ec,
                                          [](warren::connection& c) { return c.next_notice(); });
}

void connection::update_secret(std::string_view new_secret, std::string_view reason,
                               duration timeout) {
  on_connection<void>(state_, timeout, nullptr, [new_secret, reason](warren::connection& c) {
    return c.update_secret(std::string(new_secret), std::string(reason));
  });
}
void connection::update_secret(std::string_view new_secret, std::string_view reason,
                               duration timeout, std::error_code& ec) {
  on_connection<void>(state_, timeout, &ec, [new_secret, reason](warren::connection& c) {
    return c.update_secret(std::string(new_secret), std::string(reason));
  });
}

bool connection::is_open() const {
  if (!state_) return false;
  auto* s = state_.get();
  return s->query([s] { return s->conn && s->conn.is_open(); });
}
bool connection::blocked() const {
  if (!state_) return false;
  auto* s = state_.get();
  return s->query([s] { return s->conn && s->conn.blocked(); });
}
error_info connection::close_reason() const {
  if (!state_) return detail::connection_gone();
  auto* s = state_.get();
  return s->query([s] { return s->conn ? s->conn.close_reason() : s->final_reason; });
}
std::uint32_t connection::frame_max() const { return state_ ? state_->frame_max : 0; }
std::uint16_t connection::channel_max() const { return state_ ? state_->channel_max : 0; }
std::uint16_t connection::heartbeat() const { return state_ ? state_->heartbeat : 0; }
field_table connection::server_properties() const {
  return state_ ? state_->server_properties : field_table{};
}
std::string connection::endpoint() const { return state_ ? state_->endpoint : std::string(); }
connection_counters connection::counters() const {
  if (!state_) return {};
  auto* s = state_.get();
  return s->query([s] { return s->conn ? s->conn.counters() : s->final_counters; });
}
asio::any_io_executor connection::get_executor() const {
  if (!state_) return {};
  return state_->io.get_executor();
}
bool connection::on_io_thread() const noexcept { return state_ && state_->on_io_thread(); }

// ---- consumer ---------------------------------------------------------------

namespace {

template <class T, class F>
value_t<T> on_consumer(const std::shared_ptr<detail::consumer_handle>& h, duration timeout,
                       std::error_code* ec, F f) {
  std::optional<value_t<T>> out;
  if (!h) return deliver(detail::no_channel(), out, ec);
  detail::consumer_handle* raw = h.get();
  error_info failure =
      h->io->call<T>([raw, f]() -> asio::awaitable<T> { return f(raw->c); }, timeout, out);
  return deliver(std::move(failure), out, ec);
}

}  // namespace

const std::string& consumer::tag() const noexcept {
  static const std::string none;
  return handle_ ? handle_->tag : none;
}

std::optional<message> consumer::next(duration timeout) {
  return on_consumer<std::optional<message>>(handle_, timeout, nullptr,
                                             [](warren::consumer& c) { return c.next(); });
}
std::optional<message> consumer::next(duration timeout, std::error_code& ec) {
  return on_consumer<std::optional<message>>(handle_, timeout, &ec,
                                             [](warren::consumer& c) { return c.next(); });
}
bool consumer::next(message& m, duration timeout) {
  return on_consumer<bool>(handle_, timeout, nullptr,
                           [&m](warren::consumer& c) { return c.next(m); });
}
bool consumer::next(message& m, duration timeout, std::error_code& ec) {
  return on_consumer<bool>(handle_, timeout, &ec, [&m](warren::consumer& c) { return c.next(m); });
}
void consumer::cancel(duration timeout) {
  on_consumer<void>(handle_, timeout, nullptr, [](warren::consumer& c) { return c.cancel(); });
}
void consumer::cancel(duration timeout, std::error_code& ec) {
  on_consumer<void>(handle_, timeout, &ec, [](warren::consumer& c) { return c.cancel(); });
}
error_info consumer::end_reason() const {
  if (!handle_) return {};
  auto* h = handle_.get();
  return h->io->query([h] { return h->c.end_reason(); });
}
std::size_t consumer::buffered() const {
  if (!handle_) return 0;
  auto* h = handle_.get();
  return h->io->query([h] { return h->c.buffered(); });
}

// ---- channel ----------------------------------------------------------------

std::uint16_t channel::id() const noexcept { return handle_ ? handle_->st->id : 0; }

bool channel::is_open() const {
  return ask_channel(handle_, [](const warren::channel& c) { return c.is_open(); });
}

error_info channel::close_reason() const {
  return ask_channel(
      handle_, [](const warren::channel& c) { return c.close_reason(); }, detail::no_channel());
}

void channel::close(duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [](warren::channel& c) { return c.close(); });
}
void channel::close(duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [](warren::channel& c) { return c.close(); });
}

bool channel::flow(bool active, duration timeout) {
  return on_channel<bool>(handle_, timeout, nullptr,
                          [active](warren::channel& c) { return c.flow(active); });
}
bool channel::flow(bool active, duration timeout, std::error_code& ec) {
  return on_channel<bool>(handle_, timeout, &ec,
                          [active](warren::channel& c) { return c.flow(active); });
}

void channel::exchange_declare(std::string_view name, const exchange_declare_options& o,
                               duration timeout) {
  on_channel<void>(handle_, timeout, nullptr,
                   [name, &o](warren::channel& c) { return c.exchange_declare(name, o); });
}
void channel::exchange_declare(std::string_view name, const exchange_declare_options& o,
                               duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec,
                   [name, &o](warren::channel& c) { return c.exchange_declare(name, o); });
}

void channel::exchange_delete(std::string_view name, const exchange_delete_options& o,
                              duration timeout) {
  on_channel<void>(handle_, timeout, nullptr,
                   [name, &o](warren::channel& c) { return c.exchange_delete(name, o); });
}
void channel::exchange_delete(std::string_view name, const exchange_delete_options& o,
                              duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec,
                   [name, &o](warren::channel& c) { return c.exchange_delete(name, o); });
}

void channel::exchange_bind(std::string_view destination, std::string_view source,
                            std::string_view routing_key, const bind_options& o, duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [=, &o](warren::channel& c) {
    return c.exchange_bind(destination, source, routing_key, o);
  });
}
void channel::exchange_bind(std::string_view destination, std::string_view source,
                            std::string_view routing_key, const bind_options& o, duration timeout,
                            std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [=, &o](warren::channel& c) {
    return c.exchange_bind(destination, source, routing_key, o);
  });
}

void channel::exchange_unbind(std::string_view destination, std::string_view source,
                              std::string_view routing_key, const bind_options& o,
                              duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [=, &o](warren::channel& c) {
    return c.exchange_unbind(destination, source, routing_key, o);
  });
}
void channel::exchange_unbind(std::string_view destination, std::string_view source,
                              std::string_view routing_key, const bind_options& o, duration timeout,
                              std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [=, &o](warren::channel& c) {
    return c.exchange_unbind(destination, source, routing_key, o);
  });
}

queue_declare_result channel::queue_declare(std::string_view name, const queue_declare_options& o,
                                            duration timeout) {
  return on_channel<queue_declare_result>(
      handle_, timeout, nullptr,
      [name, &o](warren::channel& c) { return c.queue_declare(name, o); });
}
queue_declare_result channel::queue_declare(std::string_view name, const queue_declare_options& o,
                                            duration timeout, std::error_code& ec) {
  return on_channel<queue_declare_result>(
      handle_, timeout, &ec, [name, &o](warren::channel& c) { return c.queue_declare(name, o); });
}

void channel::queue_bind(std::string_view queue, std::string_view exchange,
                         std::string_view routing_key, const bind_options& o, duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [=, &o](warren::channel& c) {
    return c.queue_bind(queue, exchange, routing_key, o);
  });
}
void channel::queue_bind(std::string_view queue, std::string_view exchange,
                         std::string_view routing_key, const bind_options& o, duration timeout,
                         std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [=, &o](warren::channel& c) {
    return c.queue_bind(queue, exchange, routing_key, o);
  });
}

void channel::queue_unbind(std::string_view queue, std::string_view exchange,
                           std::string_view routing_key, const field_table* arguments,
                           duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [=](warren::channel& c) {
    return c.queue_unbind(queue, exchange, routing_key, arguments);
  });
}
void channel::queue_unbind(std::string_view queue, std::string_view exchange,
                           std::string_view routing_key, const field_table* arguments,
                           duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [=](warren::channel& c) {
    return c.queue_unbind(queue, exchange, routing_key, arguments);
  });
}

std::uint32_t channel::queue_purge(std::string_view queue, duration timeout) {
  return on_channel<std::uint32_t>(handle_, timeout, nullptr,
                                   [queue](warren::channel& c) { return c.queue_purge(queue); });
}
std::uint32_t channel::queue_purge(std::string_view queue, duration timeout, std::error_code& ec) {
  return on_channel<std::uint32_t>(handle_, timeout, &ec,
                                   [queue](warren::channel& c) { return c.queue_purge(queue); });
}

std::uint32_t channel::queue_delete(std::string_view queue, const queue_delete_options& o,
                                    duration timeout) {
  return on_channel<std::uint32_t>(handle_, timeout, nullptr, [queue, &o](warren::channel& c) {
    return c.queue_delete(queue, o);
  });
}
std::uint32_t channel::queue_delete(std::string_view queue, const queue_delete_options& o,
                                    duration timeout, std::error_code& ec) {
  return on_channel<std::uint32_t>(
      handle_, timeout, &ec, [queue, &o](warren::channel& c) { return c.queue_delete(queue, o); });
}

void channel::qos(const qos_options& o, duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [&o](warren::channel& c) { return c.qos(o); });
}
void channel::qos(const qos_options& o, duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [&o](warren::channel& c) { return c.qos(o); });
}

namespace {

std::shared_ptr<detail::consumer_handle> make_consumer(
    const std::shared_ptr<detail::channel_handle>& h, std::string_view queue,
    const consume_options& o, duration timeout, std::error_code* ec) {
  std::optional<std::shared_ptr<detail::consumer_handle>> out;
  if (!h) return deliver(detail::no_channel(), out, ec);
  auto st = h->st;
  error_info failure = st->io->call<std::shared_ptr<detail::consumer_handle>>(
      [st, queue, &o] { return detail::consume_on(st, queue, o); }, timeout, out);
  return deliver(std::move(failure), out, ec);
}

}  // namespace

consumer channel::consume(std::string_view queue, const consume_options& o, duration timeout) {
  return consumer(make_consumer(handle_, queue, o, timeout, nullptr));
}
consumer channel::consume(std::string_view queue, const consume_options& o, duration timeout,
                          std::error_code& ec) {
  return consumer(make_consumer(handle_, queue, o, timeout, &ec));
}

std::optional<message> channel::get(std::string_view queue, bool no_ack, duration timeout) {
  return on_channel<std::optional<message>>(
      handle_, timeout, nullptr,
      [queue, no_ack](warren::channel& c) { return c.get(queue, no_ack); });
}
std::optional<message> channel::get(std::string_view queue, bool no_ack, duration timeout,
                                    std::error_code& ec) {
  return on_channel<std::optional<message>>(
      handle_, timeout, &ec, [queue, no_ack](warren::channel& c) { return c.get(queue, no_ack); });
}

void channel::ack(std::uint64_t delivery_tag, bool multiple) {
  now_on_channel(handle_, nullptr, [=](warren::channel& c) { c.ack(delivery_tag, multiple); });
}
void channel::ack(std::uint64_t delivery_tag, bool multiple, std::error_code& ec) {
  now_on_channel(handle_, &ec, [=](warren::channel& c) { c.ack(delivery_tag, multiple); });
}
void channel::nack(std::uint64_t delivery_tag, bool multiple, bool requeue) {
  now_on_channel(handle_, nullptr,
                 [=](warren::channel& c) { c.nack(delivery_tag, multiple, requeue); });
}
void channel::nack(std::uint64_t delivery_tag, bool multiple, bool requeue, std::error_code& ec) {
  now_on_channel(handle_, &ec,
                 [=](warren::channel& c) { c.nack(delivery_tag, multiple, requeue); });
}
void channel::reject(std::uint64_t delivery_tag, bool requeue) {
  now_on_channel(handle_, nullptr, [=](warren::channel& c) { c.reject(delivery_tag, requeue); });
}
void channel::reject(std::uint64_t delivery_tag, bool requeue, std::error_code& ec) {
  now_on_channel(handle_, &ec, [=](warren::channel& c) { c.reject(delivery_tag, requeue); });
}

void channel::recover(bool requeue, duration timeout) {
  on_channel<void>(handle_, timeout, nullptr,
                   [requeue](warren::channel& c) { return c.recover(requeue); });
}
void channel::recover(bool requeue, duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec,
                   [requeue](warren::channel& c) { return c.recover(requeue); });
}

// ---- callback consuming -------------------------------------------------------

namespace {

std::string basic_consume_impl(const std::shared_ptr<detail::channel_handle>& h,
                               std::string_view queue, consume_callback callback,
                               const consume_options& o, duration timeout, std::error_code* ec) {
  std::optional<std::string> out;
  if (!h) return deliver(detail::no_channel(), out, ec);
  if (!callback)
    return deliver(detail::make_error(std::make_error_code(std::errc::invalid_argument),
                                      "basic_consume needs a callback"),
                   out, ec);
  auto st = h->st;
  auto rec = std::make_shared<detail::callback_consumer>(st->io->io);
  rec->callback = std::move(callback);
  rec->no_ack = o.no_ack;
  const std::size_t cap = (!o.no_ack && o.prefetch != 0) ? o.prefetch : o.buffer;
  rec->capacity = cap == 0 ? 1 : cap;
  error_info failure = st->io->call<std::string>(
      [st, rec, queue, &o] { return detail::start_callback_consumer(st, rec, queue, o); }, timeout,
      out);
  return deliver(std::move(failure), out, ec);
}

error_info cancel_impl(const std::shared_ptr<detail::channel_state>& st,
                       std::vector<std::shared_ptr<detail::callback_consumer>> recs,
                       duration timeout) {
  if (recs.empty()) return {};
  if (st->io->on_io_thread()) {
    asio::co_spawn(st->io->io, detail::cancel_callback_consumers(st, std::move(recs)),
                   asio::detached);
    return {};
  }
  std::optional<std::monostate> out;
  return st->io->call<void>(
      [st, &recs] { return detail::cancel_callback_consumers(st, std::move(recs)); }, timeout, out);
}

void basic_cancel_impl(const std::shared_ptr<detail::channel_handle>& h,
                       std::string_view consumer_tag, duration timeout, std::error_code* ec) {
  std::optional<std::monostate> out{std::in_place};
  if (!h) {
    deliver(detail::no_channel(), out, ec);
    return;
  }
  auto st = h->st;
  std::vector<std::shared_ptr<detail::callback_consumer>> recs;
  {
    std::lock_guard lk(st->m);
    for (auto& r : st->consumers)
      if (r->tag == consumer_tag) recs.push_back(r);
  }
  if (st->io->on_io_thread()) {
    deliver(detail::refused_on_io_thread(), out, ec);
    return;
  }
  deliver(cancel_impl(st, std::move(recs), timeout), out, ec);
}

void stop_consuming_impl(const std::shared_ptr<detail::channel_handle>& h, duration timeout,
                         std::error_code* ec) {
  std::optional<std::monostate> out{std::in_place};
  if (!h) {
    deliver(detail::no_channel(), out, ec);
    return;
  }
  auto st = h->st;
  std::vector<std::shared_ptr<detail::callback_consumer>> recs;
  {
    std::lock_guard lk(st->m);
    ++st->stop_generation;
    recs = st->consumers;
  }
  st->cv.notify_all();
  deliver(cancel_impl(st, std::move(recs), timeout), out, ec);
}

}  // namespace

// start_consuming(): hands the inbox to the callbacks until told to stop.
// What a callback throws goes through; the channel's own errors are
// delivered (thrown, or in *ec).
consuming_end detail::consume_loop(channel& self, duration time_limit, std::error_code* ec) {
  std::optional<consuming_end> out;
  if (!self.handle_) return deliver(detail::no_channel(), out, ec);
  auto st = self.handle_->st;
  if (st->io->on_io_thread()) return deliver(detail::refused_on_io_thread(), out, ec);
  const bool limited = time_limit > duration::zero();
  const auto deadline = std::chrono::steady_clock::now() + (limited ? time_limit : duration{});
  std::unique_lock lk(st->m);
  const std::uint64_t generation = st->stop_generation;
  for (;;) {
    if (st->stop_generation != generation) {
      out = consuming_end::stopped;
      break;
    }
    if (st->failure) {
      st->inbox.clear();
      error_info why = st->failure;
      lk.unlock();
      return deliver(std::move(why), out, ec);
    }
    if (!st->inbox.empty()) {
      detail::delivery d = std::move(st->inbox.front());
      st->inbox.pop_front();
      --d.from->queued;
      const bool wake = d.from->pump_waiting;
      d.from->pump_waiting = false;
      lk.unlock();
      if (wake) {
        auto rec = d.from;
        asio::post(st->io->io, [rec] { rec->space.cancel(); });
      }
      d.from->callback(self, d.msg);
      lk.lock();
      continue;
    }
    if (st->consumers.empty()) {
      out = consuming_end::no_consumers;
      break;
    }
    if (!limited) {
      st->cv.wait(lk);
    } else if (st->cv.wait_until(lk, deadline) == std::cv_status::timeout && st->inbox.empty() &&
               st->stop_generation == generation && !st->failure && !st->consumers.empty()) {
      out = consuming_end::time_limit;
      break;
    }
  }
  lk.unlock();
  return deliver(error_info{}, out, ec);
}

std::string channel::basic_consume(std::string_view queue, consume_callback callback,
                                   const consume_options& o, duration timeout) {
  return basic_consume_impl(handle_, queue, std::move(callback), o, timeout, nullptr);
}
std::string channel::basic_consume(std::string_view queue, consume_callback callback,
                                   const consume_options& o, duration timeout,
                                   std::error_code& ec) {
  return basic_consume_impl(handle_, queue, std::move(callback), o, timeout, &ec);
}

void channel::basic_cancel(std::string_view consumer_tag, duration timeout) {
  basic_cancel_impl(handle_, consumer_tag, timeout, nullptr);
}
void channel::basic_cancel(std::string_view consumer_tag, duration timeout, std::error_code& ec) {
  basic_cancel_impl(handle_, consumer_tag, timeout, &ec);
}

void channel::stop_consuming(duration timeout) { stop_consuming_impl(handle_, timeout, nullptr); }
void channel::stop_consuming(duration timeout, std::error_code& ec) {
  stop_consuming_impl(handle_, timeout, &ec);
}

consuming_end channel::start_consuming(duration time_limit) {
  return detail::consume_loop(*this, time_limit, nullptr);
}
consuming_end channel::start_consuming(duration time_limit, std::error_code& ec) {
  return detail::consume_loop(*this, time_limit, &ec);
}

// ---- publishing -----------------------------------------------------------------

publish_outcome channel::publish(std::string_view exchange, std::string_view routing_key,
                                 std::string_view body, const basic_properties& properties,
                                 publish_flags flags, duration timeout) {
  return on_channel<publish_outcome>(
      handle_, timeout, nullptr, [=, &properties](warren::channel& c) {
        return c.publish(exchange, routing_key, body, properties, flags);
      });
}
publish_outcome channel::publish(std::string_view exchange, std::string_view routing_key,
                                 std::string_view body, const basic_properties& properties,
                                 publish_flags flags, duration timeout, std::error_code& ec) {
  return on_channel<publish_outcome>(handle_, timeout, &ec, [=, &properties](warren::channel& c) {
    return c.publish(exchange, routing_key, body, properties, flags);
  });
}
publish_outcome channel::publish(std::string_view exchange, std::string_view routing_key,
                                 std::string_view body, publish_flags flags, duration timeout) {
  return on_channel<publish_outcome>(handle_, timeout, nullptr, [=](warren::channel& c) {
    return c.publish(exchange, routing_key, body, flags);
  });
}
publish_outcome channel::publish(std::string_view exchange, std::string_view routing_key,
                                 std::string_view body, publish_flags flags, duration timeout,
                                 std::error_code& ec) {
  return on_channel<publish_outcome>(handle_, timeout, &ec, [=](warren::channel& c) {
    return c.publish(exchange, routing_key, body, flags);
  });
}

std::uint64_t channel::publish_pipelined(std::string_view exchange, std::string_view routing_key,
                                         std::string_view body, const basic_properties& properties,
                                         publish_flags flags, duration timeout) {
  return on_channel<std::uint64_t>(handle_, timeout, nullptr, [=, &properties](warren::channel& c) {
    return c.publish_pipelined(exchange, routing_key, body, properties, flags);
  });
}
std::uint64_t channel::publish_pipelined(std::string_view exchange, std::string_view routing_key,
                                         std::string_view body, const basic_properties& properties,
                                         publish_flags flags, duration timeout,
                                         std::error_code& ec) {
  return on_channel<std::uint64_t>(handle_, timeout, &ec, [=, &properties](warren::channel& c) {
    return c.publish_pipelined(exchange, routing_key, body, properties, flags);
  });
}
std::uint64_t channel::publish_pipelined(std::string_view exchange, std::string_view routing_key,
                                         std::string_view body, publish_flags flags,
                                         duration timeout) {
  return on_channel<std::uint64_t>(handle_, timeout, nullptr, [=](warren::channel& c) {
    return c.publish_pipelined(exchange, routing_key, body, flags);
  });
}
std::uint64_t channel::publish_pipelined(std::string_view exchange, std::string_view routing_key,
                                         std::string_view body, publish_flags flags,
                                         duration timeout, std::error_code& ec) {
  return on_channel<std::uint64_t>(handle_, timeout, &ec, [=](warren::channel& c) {
    return c.publish_pipelined(exchange, routing_key, body, flags);
  });
}

confirm_summary channel::wait_for_confirms(duration timeout) {
  return on_channel<confirm_summary>(handle_, timeout, nullptr,
                                     [](warren::channel& c) { return c.wait_for_confirms(); });
}
confirm_summary channel::wait_for_confirms(duration timeout, std::error_code& ec) {
  return on_channel<confirm_summary>(handle_, timeout, &ec,
                                     [](warren::channel& c) { return c.wait_for_confirms(); });
}

returned_message channel::next_return(duration timeout) {
  return on_channel<returned_message>(handle_, timeout, nullptr,
                                      [](warren::channel& c) { return c.next_return(); });
}
returned_message channel::next_return(duration timeout, std::error_code& ec) {
  return on_channel<returned_message>(handle_, timeout, &ec,
                                      [](warren::channel& c) { return c.next_return(); });
}

std::uint64_t channel::returns_dropped() const {
  return ask_channel(handle_, [](const warren::channel& c) { return c.returns_dropped(); });
}

void channel::confirm_select(std::size_t window, duration timeout) {
  on_channel<void>(handle_, timeout, nullptr,
                   [window](warren::channel& c) { return c.confirm_select(window); });
}
void channel::confirm_select(std::size_t window, duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec,
                   [window](warren::channel& c) { return c.confirm_select(window); });
}
bool channel::in_confirm_mode() const {
  return ask_channel(handle_, [](const warren::channel& c) { return c.in_confirm_mode(); });
}
std::uint64_t channel::unconfirmed() const {
  return ask_channel(handle_, [](const warren::channel& c) { return c.unconfirmed(); });
}

void channel::reopen(duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [](warren::channel& c) { return c.reopen(); });
}
void channel::reopen(duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [](warren::channel& c) { return c.reopen(); });
}
void channel::tx_select(duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [](warren::channel& c) { return c.tx_select(); });
}
void channel::tx_select(duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [](warren::channel& c) { return c.tx_select(); });
}
void channel::tx_commit(duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [](warren::channel& c) { return c.tx_commit(); });
}
void channel::tx_commit(duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [](warren::channel& c) { return c.tx_commit(); });
}
void channel::tx_rollback(duration timeout) {
  on_channel<void>(handle_, timeout, nullptr, [](warren::channel& c) { return c.tx_rollback(); });
}
void channel::tx_rollback(duration timeout, std::error_code& ec) {
  on_channel<void>(handle_, timeout, &ec, [](warren::channel& c) { return c.tx_rollback(); });
}

// ---- rpc_client ----------------------------------------------------------------

namespace {

message rpc_call(const std::shared_ptr<detail::rpc_holder>& h, std::string_view exchange,
                 std::string_view routing_key, std::string_view body,
                 const basic_properties& properties, duration timeout, std::error_code* ec) {
  std::optional<message> out;
  if (!h) return deliver(detail::make_error(errc::channel_closed, "no RPC client"), out, ec);
  detail::rpc_holder* raw = h.get();
  // The RPC client keeps the deadline itself: a reply that comes after it is
  // dropped when it comes.
  error_info failure = h->io->call<message>(
      [=, &properties] { return raw->rpc.call(exchange, routing_key, body, properties, timeout); },
      duration::zero(), out);
  return deliver(std::move(failure), out, ec);
}

const basic_properties no_properties;

}  // namespace

message rpc_client::call(std::string_view exchange, std::string_view routing_key,
                         std::string_view body, duration timeout) {
  return rpc_call(handle_, exchange, routing_key, body, no_properties, timeout, nullptr);
}
message rpc_client::call(std::string_view exchange, std::string_view routing_key,
                         std::string_view body, duration timeout, std::error_code& ec) {
  return rpc_call(handle_, exchange, routing_key, body, no_properties, timeout, &ec);
}
message rpc_client::call(std::string_view exchange, std::string_view routing_key,
                         std::string_view body, const basic_properties& properties,
                         duration timeout) {
  return rpc_call(handle_, exchange, routing_key, body, properties, timeout, nullptr);
}
message rpc_client::call(std::string_view exchange, std::string_view routing_key,
                         std::string_view body, const basic_properties& properties,
                         duration timeout, std::error_code& ec) {
  return rpc_call(handle_, exchange, routing_key, body, properties, timeout, &ec);
}

namespace {

void rpc_close(const std::shared_ptr<detail::rpc_holder>& h, duration timeout,
               std::error_code* ec) {
  std::optional<std::monostate> out;
  if (!h) {
    out.emplace();
    deliver(error_info{}, out, ec);
    return;
  }
  detail::rpc_holder* raw = h.get();
  error_info failure = h->io->call<void>([raw] { return raw->rpc.close(); }, timeout, out);
  deliver(std::move(failure), out, ec);
}

}  // namespace

void rpc_client::close(duration timeout) { rpc_close(handle_, timeout, nullptr); }
void rpc_client::close(duration timeout, std::error_code& ec) { rpc_close(handle_, timeout, &ec); }

std::uint64_t rpc_client::late_replies() const {
  if (!handle_) return 0;
  auto* raw = handle_.get();
  return raw->io->query([raw] { return raw->rpc.late_replies(); });
}

}  // namespace warren::blocking
