// warren-perf: RabbitMQ PerfTest's workloads and report, on warren.
//
// Every producer and consumer has its own connection, as in PerfTest; all of
// them, the reporter and the signal handler run on one io_context driven by
// one thread. On a small machine that leaves the other cores to the broker,
// needs no locks or atomics on the per-message path, and makes the process's
// CPU time the cost of the client itself; one warren connection moves several
// hundred thousand messages a second on one core, more than a broker on the
// same machine takes.

#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tools/perf/latency.hpp"
#include "tools/perf/measure.hpp"
#include "tools/perf/options.hpp"
#include "tools/redact.hpp"
#include "warren/client/connection.hpp"
#include "warren/client/timeout.hpp"
#include "warren/client/uri.hpp"
#include "warren/codec/bytes.hpp"

namespace warren::perf {
namespace {

using asio::use_awaitable;
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

// "warren-perf: TEXT" on stderr, any password in TEXT hidden: errors can
// echo what was typed.
void complain(std::string_view text) {
  const std::string line = "warren-perf: " + tools::redact_passwords(text) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

// An exception's text; warren::error's what() repeats its code's message.
std::string reason(const std::exception& e) {
  if (const auto* w = dynamic_cast<const error*>(&e)) return w->info().describe();
  return e.what();
}

// What --recover learned of one message, by its sequence number.
enum class fate : std::uint8_t { none, in_flight, sent, acked, nacked, returned, unknown, failed };

struct producer {
  connection conn;
  channel ch;
  bool done = false;
  std::uint32_t index = 0;
  // What this producer published and saw settled, for the count of failed
  // publishes if its connection dies.
  std::uint64_t sent = 0, settled = 0;
  // --recover: the next sequence number, the publishing coroutines still
  // running, and each message's fate.
  std::uint64_t next = 0;
  int lanes = 0;
  std::vector<fate> fates;
  std::uint64_t generation = 0;  // channel reopens so far
};

// --recover: the consumers of one queue (the -u queue, or each consumer's
// own): how often each producer's messages arrived.
struct receipt_group {
  std::vector<std::vector<std::uint8_t>> seen;  // [producer][sequence], saturating
  std::uint64_t acked_seen = 0;  // distinct messages both confirmed and received
};

struct consumer_slot {
  connection conn;
  channel ch;
  consumer stream;
  std::uint64_t received = 0;
  std::size_t group = 0;
  bool done = false;
};

// --recover: a run stops waiting for confirmed messages to arrive once no
// delivery came for this long after the producers finished.
constexpr std::uint64_t drain_patience_ns = 10'000'000'000;

struct counters {
  std::uint64_t sent = 0, confirmed = 0, nacked = 0, received = 0;
};

class run {
 public:
  run(asio::io_context& io, options o)
      : io_(io),
        o_(std::move(o)),
        wake_(io),
        interval_timer_(io),
        limit_timer_(io),
        taken_timer_(io) {}

  asio::awaitable<int> main() {
    try {
      co_await setup();
    } catch (const std::exception& e) {
      complain("setup failed: " + reason(e));
      co_return 2;
    }
    asio::signal_set signals(io_, SIGINT, SIGTERM);
    signals.async_wait([this](std::error_code ec, int) {
      if (!ec) stop("interrupted");
    });

    t0_ = now_ns();
    last_report_ = t0_;
    cpu0_ = cpu_now();
    for (auto& p : producers_) {
      if (o_.recover)
        start_lanes(p);
      else
        asio::co_spawn(io_, produce(p), asio::detached);
      // Unroutable mandatory messages come back; left unread they would
      // fill the returns queue and pause the connection.
      if (o_.mandatory) asio::co_spawn(io_, drain_returns(p), asio::detached);
    }
    for (auto& c : consumers_) asio::co_spawn(io_, consume(c), asio::detached);
    asio::co_spawn(io_, report_intervals(), asio::detached);
    if (o_.time_limit > 0) {
      limit_timer_.expires_after(
          std::chrono::nanoseconds(static_cast<std::int64_t>(o_.time_limit * 1e9)));
      limit_timer_.async_wait([this](std::error_code ec) {
        if (ec) return;
        // --recover: the consumers go on until every confirmed message came.
        if (recovering_run()) {
          halted_ = true;
          wake();
        } else {
          stop("time limit");
        }
      });
    }

    while (!stopping_ && !finished()) {
      // --recover looks at the consumers' progress now and then.
      if (recovering_run())
        wake_.expires_after(std::chrono::milliseconds(200));
      else
        wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(tuple_awaitable);
    }
    const std::uint64_t end = now_ns();
    if (!stopping_) stop(halted_ ? "time limit" : "done");
    // Producers still running settle what they have in flight (each within
    // 5 s), so the summary accounts for every publish.
    const std::uint64_t settle_until = now_ns() + 10'000'000'000ull;
    while (now_ns() < settle_until &&
           !std::all_of(producers_.begin(), producers_.end(), [](const producer& p) { return p.done; })) {
      wake_.expires_after(std::chrono::milliseconds(20));
      co_await wake_.async_wait(tuple_awaitable);
    }
    if (send_end_ == 0) send_end_ = end;
    if (producers_end_ == 0) producers_end_ = end;
    if (receive_end_ == 0 || !consumers_finished()) receive_end_ = end;
    // Ctrl-C from here on ends the wait for the queue count (the closes
    // that follow are bounded by the library).
    signals.cancel();
    signals.async_wait([this](std::error_code ec, int) {
      if (ec) return;
      interrupted_wait_ = true;
      taken_timer_.cancel();
    });
    limit_timer_.cancel();
    interval_timer_.cancel();

    // Rates end when the broker holds every message sent, not when the
    // socket took the bytes.
    if (o_.taken && !producers_.empty()) {
      try {
        co_await wait_taken();
      } catch (const std::exception& e) {
        complain("waiting for the queue count failed: " + reason(e));
      }
    }
    signals.clear();
    const cpu_times cpu = cpu_now() - cpu0_;
    if (o_.recover) missing_ = count_missing();
    report_interval(true);
    summary(cpu);

    for (auto& p : producers_) co_await close_quietly(p.conn);
    for (auto& c : consumers_) co_await close_quietly(c.conn);
    co_await close_quietly(setup_conn_);
    co_return failed_run_ || missing_ != 0 ? 1 : 0;
  }

 private:
  // A connection being recovered is closed too: that ends its recovery.
  static asio::awaitable<void> close_quietly(connection& c) {
    if (!c || (!c.is_open() && !c.recovering())) co_return;
    try {
      co_await c.close();
    } catch (const std::exception&) {
    }
  }

  bool producers_finished() const {
    for (const auto& p : producers_)
      if (!p.done) return false;
    return true;
  }
  bool consumers_finished() const {
    if (shared_target_ != 0 && totals_.received >= shared_target_) return true;
    for (const auto& c : consumers_)
      if (!c.done) return false;
    return true;
  }
  // --recover with producers: the run accounts for every message sent.
  bool recovering_run() const { return o_.recover && !producers_.empty(); }

  bool finished() const {
    if (recovering_run()) return producers_finished() && drained();
    const bool producers_bounded = producers_.empty() || o_.producer_count != 0;
    const bool consumers_bounded =
        consumers_.empty() || consumer_limit_ != 0 || shared_target_ != 0;
    if (!producers_bounded || !consumers_bounded) return false;
    return producers_finished() && consumers_finished();
  }

  // --recover: every confirmed message has reached every queue's consumers,
  // or none arrived for drain_patience_ns.
  bool drained() const {
    if (consumers_.empty()) return true;
    bool all = true;
    for (const auto& g : groups_) all = all && g.acked_seen >= totals_.confirmed;
    if (all) return true;
    const std::uint64_t quiet_since = std::max(last_delivery_, producers_end_);
    return now_ns() - quiet_since > drain_patience_ns;
  }

  // A producer or consumer failed for good: the run ends and exits 1.
  void failed(const char* who, const std::exception& e) {
    if (stopping_) return;
    complain(std::string(who) + " failed: " + reason(e));
    failed_run_ = true;
    stop("connection failed");
  }

  void stop(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    stop_reason_ = why;
    wake_.cancel();
    // Consumers waiting in next() end when their connection closes.
    for (auto& c : consumers_)
      if (!c.done) asio::co_spawn(io_, close_quietly(c.conn), asio::detached);
  }

  void wake() { wake_.cancel(); }

  asio::awaitable<connection> open_connection(const std::string& role, bool consumer = false) {
    connect_options co;
    const std::string name = o_.id.empty() ? "warren-perf " + role : "warren-perf " + o_.id + " " + role;
    co.connection_name = name;
    if (o_.recover) {
      co.recovery.enabled = true;
      co.recovery.initial_backoff = std::chrono::milliseconds(100);
      co.recovery.max_backoff = std::chrono::milliseconds(2000);
      co.recovery.republish_unconfirmed = o_.republish;
    }
    if (consumer) {
      co.receive_batch_bytes = o_.receive_batch_bytes;
      co.receive_batch_wait = std::chrono::microseconds(o_.receive_batch_wait_us);
    }
    auto pending = connect(o_.uris, co);
    connection c = co_await std::move(pending);
    note_fallback(c);
    if (o_.recover) asio::co_spawn(io_, report_notices(c, name), asio::detached);
    co_return c;
  }

  // --recover: a line on stderr when a connection is lost, recovered or given
  // up; ends when the connection is closed.
  asio::awaitable<void> report_notices(connection c, std::string name) {
    for (;;) {
      connection_notice n;
      try {
        n = co_await c.next_notice();
      } catch (const std::exception&) {
        co_return;
      }
      if (n.type == connection_event_type::lost) {
        complain(name + ": connection lost (" + n.reason + ")");
      } else if (n.type == connection_event_type::recovered) {
        ++recoveries_;
        complain(name + ": recovered on " + n.endpoint);
      } else if (n.type == connection_event_type::gave_up) {
        complain(name + ": recovery gave up (" + n.reason + ")");
      } else if (n.type == connection_event_type::replay_failed) {
        complain(name + ": could not declare again (" + n.reason + ")");
      }
    }
  }

  // With several URIs, say once per endpoint when connections land past the
  // first one: the brokers before it did not answer.
  void note_fallback(const connection& c) {
    if (o_.uris.size() < 2) return;
    const std::string reached = c.endpoint();
    connection_params first;
    if (!parse_uri(o_.uris.front(), first) && to_uri(first, true) == reached) return;
    if (std::find(fallbacks_.begin(), fallbacks_.end(), reached) != fallbacks_.end()) return;
    fallbacks_.push_back(reached);
    complain("connected to " + reached + ", not to the first URI given");
  }

  asio::awaitable<void> setup() {
    std::random_device rd;
    char tag[32];
    std::snprintf(tag, sizeof tag, "%08x", rd());
    run_id_ = tag;
    if (o_.exchange.empty() && o_.queue.empty() && o_.consumers > 0 && o_.producers > 0)
      throw std::runtime_error("the default exchange (-e \"\") needs a named queue (-u)");
    routing_key_ = !o_.routing_key.empty() ? o_.routing_key
                   : !o_.queue.empty()     ? o_.queue
                                           : "warren-perf-" + run_id_;

    run_tag_ = static_cast<std::uint16_t>(rd());
    setup_conn_ = co_await open_connection("setup");
    setup_ch_ = co_await setup_conn_.open_channel();
    if (!o_.exchange.empty() && o_.exchange.rfind("amq.", 0) != 0)
      co_await setup_ch_.exchange_declare(o_.exchange, {.type = o_.exchange_type});
    if (!o_.queue.empty()) {
      // An existing queue is used as it is, whatever it was declared with.
      bool exists = true;
      try {
        auto r = co_await setup_ch_.queue_declare(o_.queue, {.passive = true});
        baseline_ = r.message_count;
      } catch (const error&) {
        exists = false;
      }
      if (!exists) {
        setup_ch_ = co_await setup_conn_.open_channel();
        field_table quorum;
        quorum.set("x-queue-type", "quorum");
        auto r = co_await setup_ch_.queue_declare(
            o_.queue, {.durable = o_.persistent || o_.quorum_queue,
                       .auto_delete = o_.auto_delete,
                       .arguments = o_.quorum_queue ? &quorum : nullptr});
        baseline_ = r.message_count;
      }
      if (!o_.exchange.empty()) co_await setup_ch_.queue_bind(o_.queue, o_.exchange, routing_key_);
    }

    if (o_.persistent) properties_.delivery_mode = 2;
    flags_.mandatory = o_.mandatory;
    for (int i = 0; i < o_.producers; ++i) {
      producer p;
      p.conn = co_await open_connection("producer " + std::to_string(i));
      p.index = static_cast<std::uint32_t>(i);
      p.ch = co_await p.conn.open_channel();
      if (o_.confirm > 0) co_await p.ch.confirm_select(static_cast<std::size_t>(o_.confirm));
      producers_.push_back(std::move(p));
    }

    consumer_limit_ = o_.consumer_count;
    // --recover counts by sequence number instead: duplicates and losses
    // would make a count of deliveries end the run too early or never.
    if (consumer_limit_ == 0 && o_.producer_count != 0 && o_.producers > 0 && !o_.recover) {
      const std::uint64_t all = o_.producer_count * static_cast<std::uint64_t>(o_.producers);
      if (o_.queue.empty())
        consumer_limit_ = all;  // every consumer's own queue gets every message
      else
        shared_target_ = all;
    }
    for (int i = 0; i < o_.consumers; ++i) {
      consumer_slot c;
      c.conn = co_await open_connection("consumer " + std::to_string(i), true);
      c.group = o_.queue.empty() ? static_cast<std::size_t>(i) : 0;
      c.ch = co_await c.conn.open_channel();
      std::string queue = o_.queue;
      if (queue.empty()) {
        auto r = co_await c.ch.queue_declare("", {.exclusive = true, .auto_delete = true});
        queue = r.queue;
        co_await c.ch.queue_bind(queue, o_.exchange, routing_key_);
      }
      c.stream = co_await c.ch.consume(queue, {.no_ack = o_.auto_ack, .prefetch = o_.prefetch});
      consumers_.push_back(std::move(c));
    }
    if (o_.recover) {
      groups_.resize(o_.queue.empty() ? consumers_.size() : 1);
      for (auto& g : groups_) g.seen.resize(producers_.size());
    }
  }

  asio::awaitable<void> produce(producer& p) {
    std::string body(o_.size, '\0');
    for (std::size_t i = 12; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
    const bool confirms = o_.confirm > 0;
    const auto window = static_cast<std::uint64_t>(confirms ? o_.confirm : 0);
    // Publish times by sequence number, for confirm latency.
    std::size_t ring_size = 1;
    while (ring_size < window + 2) ring_size <<= 1;
    std::vector<std::uint64_t> ring(confirms ? ring_size : 0);
    const std::uint64_t mask = ring_size - 1;
    std::uint64_t last_seq = 0;  // highest sequence number published
    std::uint64_t tracked = 1;   // lowest whose confirm is not yet counted
    std::uint64_t tally_epoch = 0;
    // Let the connection's writer run every so often: a publish that needs
    // not wait completes without suspending.
    const std::uint64_t yield_every = std::max<std::uint64_t>(1, (64u << 10) / (o_.size + 64));
    std::uint64_t yield_in = yield_every;
    std::uint64_t t = 0;
    int fresh_for = 1;
    bool waited = false;
    // Whether this coroutine was suspended since settle() last ran: acks are
    // only read while it is, so only then can more publishes be settled.
    bool resumed = false;
    const double period_ns = o_.rate > 0 ? 1e9 / o_.rate : 0;
    asio::steady_timer pace(io_);
    prepared_publish prepared;
    try {
      // Exchange, routing key and properties never change: encode them once.
      if (o_.prepared)
        prepared = p.ch.prepare_publish(o_.exchange, routing_key_, properties_, flags_);
      for (std::uint64_t i = 0; !stopping_ && (o_.producer_count == 0 || i < o_.producer_count);
           ++i) {
        if (period_ns > 0) {
          // Ahead of schedule by more than half a millisecond: sleep. Less is
          // not worth a timer per message; the rate holds over any interval.
          const auto due = t0_ + static_cast<std::uint64_t>(static_cast<double>(i) * period_ns);
          const std::uint64_t now = now_ns();
          if (due > now + 500000) {
            pace.expires_after(std::chrono::nanoseconds(due - now));
            co_await pace.async_wait(tuple_awaitable);
            resumed = true;
            if (stopping_) break;
          }
        }
        // The send time is read afresh every 16 messages (and after any
        // wait): a clock read costs as much as a publish, and 16 publishes
        // take about a microsecond, the resolution latencies are reported in.
        if (period_ns > 0 || --fresh_for == 0 || waited) {
          t = now_ns();
          fresh_for = 16;
        }
        auto* stamp = reinterpret_cast<std::uint8_t*>(body.data());
        detail::store32(stamp, static_cast<std::uint32_t>(i));
        detail::store64(stamp + 4, t);
        std::uint64_t seq = 0;
        waited = false;
        if (!o_.prepared) {
          // It waited for the window if acks came meanwhile: one more
          // unconfirmed publish is what no wait leaves.
          const std::uint64_t before = confirms ? p.ch.unconfirmed() : 0;
          seq =
              co_await p.ch.publish_pipelined(o_.exchange, routing_key_, body, properties_, flags_);
          waited = confirms && p.ch.unconfirmed() != before + 1;
        } else if (!p.ch.try_publish(prepared, body, &seq)) {
          waited = true;
          seq = co_await p.ch.publish_pipelined(prepared, body);
        }
        ++totals_.sent;
        ++p.sent;
        if (confirms) {
          if (waited) t = now_ns();
          ring[seq & mask] = t;
          last_seq = seq;
          if (waited || resumed) {
            resumed = false;
            settle(p, last_seq, tracked, ring, mask);
          }
          // Nacks are only known from the channel's tallies, which can be
          // read without waiting when nothing is outstanding.
          if (tally_epoch != epoch_ && p.ch.unconfirmed() == 0) {
            tally_epoch = epoch_;
            const confirm_summary s = co_await p.ch.wait_for_confirms();
            count_nacks(s);
          }
        }
        if (--yield_in == 0) {
          yield_in = yield_every;
          co_await asio::post(io_, use_awaitable);
          resumed = true;
        }
      }
      send_end_ = std::max(send_end_, now_ns());
      if (confirms) {
        // Stopped early (another's failure, the clock, Ctrl-C), what is in
        // flight is settled within 5 s, or counted as failed below.
        auto settling = p.ch.wait_for_confirms();
        confirm_summary s;
        if (stopping_) {
          auto bounded = with_timeout(std::move(settling), std::chrono::seconds(5));
          s = co_await std::move(bounded);
        } else {
          s = co_await std::move(settling);
        }
        settle(p, last_seq, tracked, ring, mask);
        count_nacks(s);
      }
    } catch (const std::exception& e) {
      // Every publish whose confirm had not been seen failed with the
      // connection (without confirms nothing is known of them).
      if (confirms) failed_ += p.sent - p.settled;
      failed("producer", e);
    }
    producers_end_ = std::max(producers_end_, now_ns());
    p.done = true;
    wake();
  }

  // --recover: -c N publishers per producer (1 without confirms), each
  // awaiting its publish's outcome; the producer is done when all are.
  void start_lanes(producer& p) {
    p.lanes = o_.confirm > 0 ? static_cast<int>(o_.confirm) : 1;
    for (int i = 0; i < p.lanes; ++i) asio::co_spawn(io_, publish_lane(p), asio::detached);
  }

  asio::awaitable<void> publish_lane(producer& p) {
    std::string body(o_.size, '\0');
    for (std::size_t i = min_size_recover; i < body.size(); ++i)
      body[i] = static_cast<char>('a' + i % 26);
    auto* stamp = reinterpret_cast<std::uint8_t*>(body.data());
    detail::store16(stamp + 12, run_tag_);
    detail::store16(stamp + 14, static_cast<std::uint16_t>(p.index));
    const double period_ns = o_.rate > 0 ? 1e9 / o_.rate : 0;
    asio::steady_timer pace(io_);
    std::uint64_t current = 0;
    bool in_flight = false;
    try {
      while (!stopping_ && !halted_ && (o_.producer_count == 0 || p.next < o_.producer_count)) {
        const std::uint64_t i = p.next++;
        if (period_ns > 0) {
          const auto due = t0_ + static_cast<std::uint64_t>(static_cast<double>(i) * period_ns);
          const std::uint64_t now = now_ns();
          if (due > now + 500000) {
            pace.expires_after(std::chrono::nanoseconds(due - now));
            co_await pace.async_wait(tuple_awaitable);
          }
        }
        if (i >= p.fates.size()) p.fates.resize(std::max<std::size_t>(1024, i * 2));
        const std::uint64_t t = now_ns();
        detail::store32(stamp, static_cast<std::uint32_t>(i));
        detail::store64(stamp + 4, t);
        current = i;
        in_flight = true;
        p.fates[i] = fate::in_flight;
        ++totals_.sent;
        const std::uint64_t generation = p.generation;
        publish_outcome r =
            co_await p.ch.publish(o_.exchange, routing_key_, body, properties_, flags_);
        in_flight = false;
        settle_one(p, i, r, t);
        // RabbitMQ 3.10 nacks every publish on a channel whose first publish
        // reached a quorum queue without a leader (just after a failover):
        // a nacked producer reopens its channel, once for all its lanes.
        if (r.status == publish_status::nacked && generation == p.generation) {
          ++p.generation;
          ++reopens_;
          co_await p.ch.reopen();
        }
      }
    } catch (const std::exception& e) {
      if (in_flight) {
        p.fates[current] = fate::failed;
        ++failed_;
      }
      failed("producer", e);
    }
    if (--p.lanes == 0) {
      send_end_ = std::max(send_end_, now_ns());
      producers_end_ = std::max(producers_end_, now_ns());
      p.done = true;
      wake();
    }
  }

  // --recover: one publish's outcome, by its sequence number.
  void settle_one(producer& p, std::uint64_t i, const publish_outcome& r, std::uint64_t sent_at) {
    if (r.republished) ++republished_;
    switch (r.status) {
      case publish_status::acked:
        p.fates[i] = fate::acked;
        ++totals_.confirmed;
        confirm_latency_.add(now_ns() - sent_at);
        for (auto& g : groups_) {
          const auto& seen = g.seen[p.index];
          if (i < seen.size() && seen[i] != 0) ++g.acked_seen;
        }
        break;
      case publish_status::nacked:
        p.fates[i] = fate::nacked;
        ++totals_.nacked;
        break;
      case publish_status::returned:
        p.fates[i] = fate::returned;
        ++returned_;
        break;
      case publish_status::unknown:
        p.fates[i] = fate::unknown;
        ++unknown_;
        break;
      case publish_status::sent:
        p.fates[i] = fate::sent;
        break;
    }
  }

  // --recover: a delivery, by the producer and sequence number in its body.
  void count_receipt(const consumer_slot& c, const message& m) {
    const auto* stamp = reinterpret_cast<const std::uint8_t*>(m.body.data());
    if (m.body.size() < min_size_recover || detail::load16(stamp + 12) != run_tag_ ||
        detail::load16(stamp + 14) >= producers_.size()) {
      ++foreign_;  // not this run's
      return;
    }
    const std::uint32_t from = detail::load16(stamp + 14);
    const std::uint64_t i = detail::load32(stamp);
    auto& g = groups_[c.group];
    auto& seen = g.seen[from];
    if (i >= seen.size()) seen.resize(std::max<std::size_t>(1024, i * 2));
    if (seen[i] != 0) {
      ++duplicates_;
    } else {
      const auto& fates = producers_[from].fates;
      if (i < fates.size() && fates[i] == fate::acked) ++g.acked_seen;
    }
    if (seen[i] != 255) ++seen[i];
  }

  // --recover: confirmed messages some queue's consumers never received.
  std::uint64_t count_missing() const {
    if (consumers_.empty()) return 0;
    std::uint64_t missing = 0;
    for (const auto& g : groups_) {
      for (const auto& p : producers_) {
        const auto& seen = g.seen[p.index];
        for (std::size_t i = 0; i < p.fates.size(); ++i)
          if (p.fates[i] == fate::acked && (i >= seen.size() || seen[i] == 0)) ++missing;
      }
    }
    return missing;
  }

  asio::awaitable<void> drain_returns(producer& p) {
    try {
      for (;;) {
        returned_message r = co_await p.ch.next_return();
        ++returned_;
      }
    } catch (const std::exception&) {
    }
  }

  void settle(producer& p, std::uint64_t last_seq, std::uint64_t& tracked,
              const std::vector<std::uint64_t>& ring, std::uint64_t mask) {
    // Everything below the oldest unconfirmed publish is settled.
    const std::uint64_t settled_end = last_seq + 1 - p.ch.unconfirmed();
    if (tracked >= settled_end) return;
    const std::uint64_t now = now_ns();
    totals_.confirmed += settled_end - tracked;
    p.settled += settled_end - tracked;
    for (; tracked < settled_end; ++tracked) confirm_latency_.add(now - ring[tracked & mask]);
  }

  void count_nacks(const confirm_summary& s) {
    // settle() counted every settled publish as confirmed.
    totals_.nacked += s.nacked;
    totals_.confirmed -= std::min(totals_.confirmed, s.nacked);
  }

  asio::awaitable<void> consume(consumer_slot& c) {
    std::uint64_t unacked = 0;
    std::uint64_t last_tag = 0;
    const std::uint64_t every = o_.multi_ack_every;
    std::uint64_t now = 0;
    int fresh_for = 1;
    // One message, read into again and again: its storage circulates with
    // the stream's, so nothing is allocated per delivery.
    message m;
    try {
      while (!stopping_) {
        if (consumer_limit_ != 0 && c.received >= consumer_limit_) break;
        if (shared_target_ != 0 && totals_.received >= shared_target_) break;
        // What one read brought in is taken without a coroutine per message;
        // only an empty buffer waits.
        bool waited = false;
        if (!c.stream.try_next(m)) {
          if (!co_await c.stream.next(m)) break;
          waited = true;
        }
        // As for send times: the clock is read afresh after a wait for a
        // delivery and every 16 deliveries taken from the buffer.
        if (waited || --fresh_for == 0) {
          now = now_ns();
          fresh_for = 16;
        }
        if (m.body.size() >= 12) {
          const auto* stamp = reinterpret_cast<const std::uint8_t*>(m.body.data());
          const std::uint64_t sent = detail::load64(stamp + 4);
          if (sent != 0 && sent <= now) consumer_latency_.add(now - sent);
        }
        ++c.received;
        ++totals_.received;
        receive_end_ = now;
        if (o_.recover) {
          count_receipt(c, m);
          last_delivery_ = now;
        }
        if (!o_.auto_ack) {
          last_tag = m.delivery_tag;
          if (every > 1) {
            if (++unacked >= every) {
              c.ch.ack(last_tag, true);
              unacked = 0;
            }
          } else if (!c.ch.ack(last_tag)) {
            ++stale_acks_;  // delivered before a recovery: the broker sends it again
          }
        }
      }
      if (unacked != 0) c.ch.ack(last_tag, true);
    } catch (const std::exception& e) {
      failed("consumer", e);
    }
    c.done = true;
    wake();
  }

  // Polls the -u queue until it holds every message sent that was neither
  // nacked nor returned. Gives up (no taken rate) when the count stands still
  // for 10 s or on Ctrl-C: something else is taking from the queue.
  asio::awaitable<void> wait_taken() {
    const std::uint64_t landed = totals_.sent - std::min(totals_.sent, totals_.nacked + returned_);
    const std::uint64_t want = baseline_ + landed;
    constexpr auto patience = std::chrono::seconds(10);
    std::uint32_t last = 0;
    auto moved = std::chrono::steady_clock::now();
    while (!interrupted_wait_) {
      auto r = co_await setup_ch_.queue_declare(o_.queue, {.passive = true});
      if (r.message_count >= want) {
        taken_end_ = now_ns();
        co_return;
      }
      const auto t = std::chrono::steady_clock::now();
      if (r.message_count != last) {
        last = r.message_count;
        moved = t;
      } else if (t - moved >= patience) {
        break;
      }
      taken_timer_.expires_after(std::chrono::microseconds(500));
      co_await taken_timer_.async_wait(tuple_awaitable);
    }
    std::fprintf(stderr,
                 "warren-perf: the queue holds %" PRIu32 " of the %" PRIu64
                 " messages expected; no taken rate\n",
                 last, want);
  }

  asio::awaitable<void> report_intervals() {
    const auto step = std::chrono::nanoseconds(static_cast<std::int64_t>(o_.interval * 1e9));
    auto next = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t0_)) + step;
    while (!stopping_ && !finished()) {
      interval_timer_.expires_at(next);
      auto [ec] = co_await interval_timer_.async_wait(tuple_awaitable);
      if (ec || stopping_) break;
      report_interval(false);
      next += step;
    }
  }

  static std::string triple(const percentiles& p) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64, p[0],
                  p[1], p[2], p[3], p[4]);
    return buf;
  }
  static std::string json_array(const percentiles& p) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]",
                  p[0], p[1], p[2], p[3], p[4]);
    return buf;
  }

  // One interval line; `last` reports the partial interval at the end (only
  // if anything happened in it) so the histograms hold every sample.
  void report_interval(bool last) {
    const std::uint64_t now = now_ns();
    const double secs = static_cast<double>(now - last_report_) / 1e9;
    const counters d{totals_.sent - reported_.sent, totals_.confirmed - reported_.confirmed,
                     totals_.nacked - reported_.nacked, totals_.received - reported_.received};
    const bool any = d.sent || d.confirmed || d.nacked || d.received ||
                     !consumer_latency_.empty() || !confirm_latency_.empty();
    const percentiles cl = consumer_latency_.summarise();
    const percentiles fl = confirm_latency_.summarise();
    consumer_all_.add_all(consumer_latency_.samples());
    confirm_all_.add_all(confirm_latency_.samples());
    consumer_latency_.clear();
    confirm_latency_.clear();
    reported_ = totals_;
    last_report_ = now;
    ++epoch_;
    // The run's last, partial interval is reported only if it is long
    // enough for its rates to mean something.
    if (last && (!any || secs < 0.1 * o_.interval)) return;
    const double t = static_cast<double>(now - t0_) / 1e9;
    auto rate = [&](std::uint64_t n) { return secs > 0 ? static_cast<double>(n) / secs : 0.0; };
    if (o_.json) {
      std::printf(
          "{\"type\":\"interval\",\"time\":%.3f,\"sent\":%.0f,\"confirmed\":%.0f,"
          "\"nacked\":%.0f,\"received\":%.0f,\"consumer_latency_us\":%s,"
          "\"confirm_latency_us\":%s}\n",
          t, rate(d.sent), rate(d.confirmed), rate(d.nacked), rate(d.received),
          json_array(cl).c_str(), json_array(fl).c_str());
    } else {
      std::printf(
          "time %.3f s, sent: %.0f msg/s, confirmed: %.0f msg/s, nacked: %.0f msg/s, "
          "received: %.0f msg/s, min/median/75th/95th/99th consumer latency: %s \xC2\xB5s, "
          "confirm latency: %s \xC2\xB5s\n",
          t, rate(d.sent), rate(d.confirmed), rate(d.nacked), rate(d.received), triple(cl).c_str(),
          triple(fl).c_str());
    }
    std::fflush(stdout);
  }

  void summary(const cpu_times& cpu) {
    auto secs = [&](std::uint64_t end) {
      return end > t0_ ? static_cast<double>(end - t0_) / 1e9 : 0.0;
    };
    const double send_s = secs(send_end_);
    const double producers_s = secs(producers_end_);
    const double receive_s = secs(receive_end_);
    const double taken_s = taken_end_ != 0 ? secs(taken_end_) : producers_s;
    auto rate = [](std::uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
    const std::uint64_t moved = std::max(totals_.sent, totals_.received);
    const double cpu_us = moved != 0 ? cpu.total() * 1e6 / static_cast<double>(moved) : 0.0;
    const percentiles cl = consumer_all_.summarise();
    const percentiles fl = confirm_all_.summarise();
    if (o_.json) {
      std::printf(
          "{\"type\":\"summary\",\"client\":\"warren\",\"size\":%zu,\"producers\":%d,"
          "\"consumers\":%d,\"sent\":%" PRIu64 ",\"confirmed\":%" PRIu64 ",\"nacked\":%" PRIu64
          ",\"received\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"unknown\":%" PRIu64
          ",\"republished\":%" PRIu64 ",\"missing\":%" PRIu64 ",\"duplicates\":%" PRIu64
          ",\"recoveries\":%" PRIu64 ",\"reopens\":%" PRIu64
          ",\"send_s\":%.6f,\"confirm_s\":%.6f,\"taken_s\":%.6f,"
          "\"receive_s\":%.6f,\"cpu_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,\"sending_rate\":%.1f,"
          "\"receiving_rate\":%.1f,"
          "\"taken_rate\":%.1f,\"consumer_latency_us\":%s,\"confirm_latency_us\":%s,"
          "\"stopped_by\":\"%s\"}\n",
          o_.size, o_.producers, o_.consumers, totals_.sent, totals_.confirmed, totals_.nacked,
          totals_.received, failed_, unknown_, republished_, missing_, duplicates_, recoveries_,
          reopens_, send_s, producers_s, taken_s, receive_s, cpu.total(), cpu.user, cpu.sys,
          rate(totals_.sent, send_s), rate(totals_.received, receive_s),
          rate(totals_.sent, taken_s), json_array(cl).c_str(), json_array(fl).c_str(),
          stop_reason_);
    } else {
      std::printf("sending rate avg: %.0f msg/s\n", rate(totals_.sent, send_s));
      std::printf("receiving rate avg: %.0f msg/s\n", rate(totals_.received, receive_s));
      if (taken_end_ != 0)
        std::printf("taken rate avg: %.0f msg/s (the queue held every message after %.3f s)\n",
                    rate(totals_.sent, taken_s), taken_s);
      if (!consumers_.empty())
        std::printf("consumer latency min/median/75th/95th/99th %s \xC2\xB5s\n",
                    triple(cl).c_str());
      if (o_.confirm > 0)
        std::printf("confirm latency min/median/75th/95th/99th %s \xC2\xB5s\n", triple(fl).c_str());
      if (o_.mandatory) std::printf("returned (unroutable): %" PRIu64 "\n", returned_);
      if (!producers_.empty())
        std::printf("published: %" PRIu64 ", confirmed: %" PRIu64 ", nacked: %" PRIu64
                    ", failed: %" PRIu64 "\n",
                    totals_.sent, totals_.confirmed, totals_.nacked, failed_);
      if (o_.recover) {
        std::printf("unknown (unconfirmed at a loss): %" PRIu64 ", republished: %" PRIu64
                    ", recoveries: %" PRIu64 ", channels reopened after a nack: %" PRIu64 "\n",
                    unknown_, republished_, recoveries_, reopens_);
        std::printf("received: %" PRIu64 ", missing (confirmed, never received): %" PRIu64
                    ", duplicates: %" PRIu64 ", stale acks: %" PRIu64 "\n",
                    totals_.received, missing_, duplicates_, stale_acks_);
        if (foreign_ != 0) std::printf("not this run's: %" PRIu64 "\n", foreign_);
      }
      std::printf("client CPU: %.3f s user + %.3f s system, %.3f \xC2\xB5s/msg\n", cpu.user,
                  cpu.sys, cpu_us);
    }
    std::fflush(stdout);
  }

  asio::io_context& io_;
  options o_;
  asio::steady_timer wake_;
  asio::steady_timer interval_timer_;
  asio::steady_timer limit_timer_;
  asio::steady_timer taken_timer_;
  std::string run_id_;
  std::string routing_key_;
  basic_properties properties_;
  publish_flags flags_;
  connection setup_conn_;
  channel setup_ch_;
  std::vector<std::string> fallbacks_;  // endpoints note_fallback has named
  std::uint64_t baseline_ = 0;
  std::vector<producer> producers_;
  std::vector<consumer_slot> consumers_;
  std::uint64_t consumer_limit_ = 0;
  std::uint64_t shared_target_ = 0;

  counters totals_;
  counters reported_;
  latency_samples consumer_latency_;
  latency_samples confirm_latency_;
  latency_histogram consumer_all_;
  latency_histogram confirm_all_;
  std::uint64_t epoch_ = 0;
  std::uint64_t returned_ = 0;
  std::uint64_t failed_ = 0;  // published, then lost with their connection unconfirmed
  bool failed_run_ = false;
  // --recover
  std::uint16_t run_tag_ = 0;  // in every body: tells this run's messages from others
  std::vector<receipt_group> groups_;
  bool halted_ = false;        // the time limit stopped the producers
  std::uint64_t unknown_ = 0, republished_ = 0, duplicates_ = 0, foreign_ = 0;
  std::uint64_t stale_acks_ = 0, recoveries_ = 0, missing_ = 0, reopens_ = 0;
  std::uint64_t last_delivery_ = 0;

  bool stopping_ = false;
  const char* stop_reason_ = "";
  std::uint64_t t0_ = 0;
  std::uint64_t last_report_ = 0;
  cpu_times cpu0_;
  std::uint64_t send_end_ = 0;
  std::uint64_t producers_end_ = 0;
  std::uint64_t receive_end_ = 0;
  std::uint64_t taken_end_ = 0;
  bool interrupted_wait_ = false;
};

}  // namespace
}  // namespace warren::perf

int main(int argc, char** argv) {
  using namespace warren::perf;
  std::vector<std::string> args(argv + 1, argv + argc);
  options o;
  bool help = false;
  std::string error;
  if (!parse_options(args, o, help, error)) {
    complain(error);
    std::fputs(usage_text(), stderr);
    return 2;
  }
  if (help) {
    std::fputs(usage_text(), stdout);
    return 0;
  }
  asio::io_context io(1);
  run r(io, std::move(o));
  int status = 1;
  asio::co_spawn(io, r.main(), [&](std::exception_ptr e, int s) {
    status = s;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        complain(reason(x));
      }
      status = 1;
    }
  });
  io.run();
  return status;
}
